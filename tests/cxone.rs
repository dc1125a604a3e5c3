//! The CXone boundary against real HTTP servers: the clients of both dialects fault by fault, credentials from
//! Secrets Manager, declarative provisioning. One test binary (each links the AWS SDK: fewer binaries, faster builds).

#[path = "cxone/admin_variants.rs"]
mod admin_variants;
#[path = "cxone/client.rs"]
mod client;
#[path = "cxone/doctor.rs"]
mod doctor;
#[path = "cxone/provision.rs"]
mod provision;
#[path = "cxone/published.rs"]
mod published;
#[path = "cxone/secrets_manager.rs"]
mod secrets_manager;
