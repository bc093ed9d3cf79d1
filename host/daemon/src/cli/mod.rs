//! The command-line subcommands.

pub(crate) mod plugin;
