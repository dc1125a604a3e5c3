//! dncflow: keeps NICE CXone Do-Not-Call lists correct and proves it.
//!
//! The library holds the domain (normalization, de-duplication, shards, manifests, accounting), and the edges the
//! Lambda functions and the operator CLI share.

pub mod check;
pub mod cxone;
pub mod dedupe;
pub mod events;
pub mod hours;
pub mod input;
pub mod lambda;
pub mod metrics;
pub mod normalize;
pub mod orchestrate;
pub mod phone;
pub mod pipeline;
pub mod provision;
pub mod redact;
pub mod registry;
pub mod run;
pub mod stages;
pub mod store;
