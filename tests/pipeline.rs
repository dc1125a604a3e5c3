//! The mission's steps as library functions over a local directory or S3 (moto) and the simulator: normalize from
//! S3, the whole run as `dncctl run` drives it (both dialects), the check stage with its local knowledge, the lease
//! asking Step Functions about its holder, and operating a stack's executions (`dncctl runs`, `rerun`, `redrive`).

#[path = "pipeline/check_stage.rs"]
mod check_stage;
#[path = "pipeline/evidence_lock.rs"]
mod evidence_lock;
#[path = "pipeline/lease_takeover.rs"]
mod lease_takeover;
#[path = "pipeline/local_run.rs"]
mod local_run;
#[path = "pipeline/normalize_stage.rs"]
mod normalize_stage;
#[path = "pipeline/operate.rs"]
mod operate;
#[path = "pipeline/promise.rs"]
mod promise;
#[path = "pipeline/received.rs"]
mod received;
#[path = "pipeline/s3_input.rs"]
mod s3_input;
