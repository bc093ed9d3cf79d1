//! `counter`, version 1: see `common.rs`.

gleipnir_sdk::settings! {
    pub struct Config {
        /// A label the report carries.
        label: String = "counter".to_owned();
        /// A setting version 2 no longer has.
        old_only: bool = false;
    }
}

include!("common.rs");
