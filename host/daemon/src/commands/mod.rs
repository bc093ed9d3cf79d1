//! Management-room commands. `parse` reads them; running them needs the
//! Matrix connection, which is not built yet (see the Matrix-side issue),
//! so the parser is only exercised by its tests until then.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod parse;
