//! Management-room commands: `parse` reads them; `bot::commands` runs them.

pub(crate) mod parse;
