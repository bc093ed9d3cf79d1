//! A component that exports `gleipnir:protection/protection@9.0.0`: the host
//! must refuse it and name both versions.

wit_bindgen::generate!({
    inline: r#"
        package gleipnir:protection@9.0.0;

        interface protection {
            describe: func() -> string;
        }

        world plugin {
            export protection;
        }
    "#,
});

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Future;

impl exports::gleipnir::protection::protection::Guest for Future {
    fn describe() -> String {
        "from the future".to_owned()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
