//! A component for this host's contract version that imports a host
//! function the host does not offer (as a plugin built for a newer host
//! would): the host must refuse it naming the function, not with a bare
//! link error.

wit_bindgen::generate!({
    inline: r#"
        package gleipnir:protection@0.1.0;

        interface host {
            bot-user-id: func() -> string;
            shiny-new: func() -> u64;
        }

        interface protection {
            describe: func() -> string;
        }

        world plugin {
            import host;
            export protection;
        }
    "#,
});

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Newer;

impl exports::gleipnir::protection::protection::Guest for Newer {
    fn describe() -> String {
        format!("{} {}", gleipnir::protection::host::bot_user_id(), gleipnir::protection::host::shiny_new())
    }
}

#[cfg(target_arch = "wasm32")]
export!(Newer);
