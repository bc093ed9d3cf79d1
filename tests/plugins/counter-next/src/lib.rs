//! `counter`, version 2: the same protection as `tests/plugins/counter`,
//! with one setting dropped and one added, to test hot swaps.

gleipnir_sdk::settings! {
    pub struct Config {
        /// A label the report carries.
        label: String = "counter".to_owned();
        /// A setting version 1 did not have.
        fresh: u32 = 7, min 0, max 100;
    }
}

include!("../../counter/src/common.rs");
