//! dncflow: keeps NICE CXone Do-Not-Call lists correct and proves it.
//!
//! The library holds the domain (normalization, de-duplication, shards, manifests, accounting), and the edges the
//! Lambda functions and the operator CLI share.

pub mod adapters;
pub mod dedupe;
pub mod hours;
pub mod input;
pub mod local;
pub mod logs;
pub mod metrics;
pub mod operate;
pub mod phone;
pub mod provision;
pub mod redact;
pub mod registry;
pub mod run;
pub mod steps;
