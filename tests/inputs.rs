//! Inputs: the normalizer against libphonenumber (differential and property tests), hostile files.

#[path = "inputs/bad_input.rs"]
mod bad_input;
#[path = "inputs/differential.rs"]
mod differential;
