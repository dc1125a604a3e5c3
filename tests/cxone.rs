//! The CXone boundary against real HTTP servers: the clients of both dialects fault by fault, credentials from
//! Secrets Manager, declarative provisioning. One test binary (each links the AWS SDK: fewer binaries, faster builds).

#[path = "cxone/client.rs"]
mod client;
#[path = "cxone/provision.rs"]
mod provision;
#[path = "cxone/secrets_manager.rs"]
mod secrets_manager;
