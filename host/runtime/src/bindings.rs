//! The one place that runs `bindgen!` for the WIT world; every other module
//! uses these types.

wasmtime::component::bindgen!({
    path: "../../wit/0.1.0",
    world: "plugin",
    additional_derives: [PartialEq],
});

/// Contract 0.2.0 is written (`wit/0.2.0/`) but not linked yet: this proves
/// it parses and generates host bindings, so it cannot rot while the host
/// grows into it.
#[cfg(test)]
mod contract_0_2_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.2.0",
        world: "plugin",
    });

    #[test]
    fn contract_0_2_0_generates_host_bindings() {
        use gleipnir::protection::types::{Capability, EventClass, Verdict};
        assert!(matches!(Verdict::Allow, Verdict::Allow));
        let _ = (Capability::Invite, Capability::BlockRoom, EventClass::JoinRule);
    }
}
