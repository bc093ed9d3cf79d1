//! End-to-end: the `gleipnir` binary against a real Synapse on loopback.
//! One test binary, so the tests run in parallel.

mod antispam;
mod catalogue;
mod commands;
mod common;
mod flooding;
mod live;
mod policy;
mod protections;
mod reports;
mod resilience;
mod restarts;
mod safe_mode;
mod spaces;
