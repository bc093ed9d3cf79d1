//! What a component imports from the host, checked against what this host
//! offers, so that a plugin built for a newer host is refused naming the
//! functions it needs instead of with a bare link error.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::{WIT_PACKAGE, WIT_VERSION};

/// The functions of `gleipnir:protection/host@0.1.0` this host offers: every
/// one of `wit/0.1.0` (a test checks they agree).
pub(crate) const HOST_FUNCTIONS: &[&str] = &[
    "log",
    "now-ms",
    "bot-user-id",
    "membership-of",
    "joined-at",
    "power-level",
    "required-levels",
    "kv-get",
    "kv-set",
    "kv-delete",
    "message-count",
    "protected-rooms",
    "members-matching",
    "history",
];

/// The host functions `component` imports that this host does not offer,
/// each as `interface#function` (a whole interface of another version as
/// `interface`); empty when it imports nothing missing from the contract.
pub(crate) fn missing(engine: &Engine, component: &Component) -> Vec<String> {
    let ours = format!("{WIT_PACKAGE}/host@{WIT_VERSION}");
    let mut missing = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
        if !name.starts_with(WIT_PACKAGE) {
            continue;
        }
        if name != ours {
            missing.push(name.to_owned());
            continue;
        }
        for (function, _) in instance.exports(engine) {
            if !HOST_FUNCTIONS.contains(&function) {
                missing.push(format!("{name}#{function}"));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `name: func(` of the `host` interface in `wit/0.1.0`.
    fn declared() -> Vec<String> {
        let wit = include_str!("../../../wit/0.1.0/protection.wit");
        let host = wit.split("interface host {").nth(1).expect("a host interface").split("\n}").next().unwrap();
        host.lines().filter_map(|line| line.trim().split_once(": func(")).map(|(name, _)| name.to_owned()).collect()
    }

    #[test]
    fn the_list_is_the_contracts_host_interface() {
        let mut declared = declared();
        let mut offered: Vec<String> = HOST_FUNCTIONS.iter().map(|f| (*f).to_owned()).collect();
        declared.sort();
        offered.sort();
        assert_eq!(offered, declared);
    }
}
