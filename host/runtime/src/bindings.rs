//! The one place that runs `bindgen!`, once per contract version this host
//! speaks. The newest version's types are the runtime's own (re-exported
//! from `lib.rs`); older versions are reached only through `adapt.rs` and
//! `world.rs`.

/// Contract 0.2.0 (`wit/0.2.0`): the runtime's types.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.2.0",
        world: "plugin",
        additional_derives: [PartialEq],
    });
}

/// Contract 0.1.0 (`wit/0.1.0`, frozen): components built for it run
/// through the adapter.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.1.0",
        world: "plugin",
        additional_derives: [PartialEq],
    });
}
