//! The command-line subcommands.

pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod new;
pub(crate) mod plugin;
pub(crate) mod run;
