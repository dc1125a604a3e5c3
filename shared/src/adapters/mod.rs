//! The edges: everything that talks to something outside the process, behind small traits so the steps can be run
//! against emulators, the local disk or the simulator.
//!
//! - [`store`]: the object store (S3, or a directory for `dncctl run`), the run's publication and the source object.
//! - [`s3_event`]: the S3 / EventBridge notification that starts a run.
//! - [`eventbridge`]: where a published list status is announced.
//! - [`sfn`]: Step Functions, behind [`sfn::Executions`]: the lease step's question about a holder.
//! - [`ftc`]: the FTC's registry download service (SOAP), behind [`ftc::FtcApi`].
//! - [`http`]: what every remote call shares: the backoff, `Retry-After`, status classes, redacted errors.
//! - [`cxone`]: CXone, behind [`cxone::DncApi`]: one request policy and the two dialect clients; credentials from
//!   Secrets Manager.

pub mod cxone;
pub mod eventbridge;
pub mod ftc;
pub mod http;
pub mod s3_event;
pub mod sfn;
pub mod store;
