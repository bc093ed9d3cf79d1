//! What a component imports from the host, checked against what this host
//! offers, so that a plugin built for a newer host is refused naming the
//! functions it needs instead of with a bare link error.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::WIT_PACKAGE;

/// The functions of `gleipnir:protection/host@0.1.0` this host offers: every
/// one of `wit/0.1.0` (a test checks they agree).
const HOST_0_1_0: &[&str] = &[
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

/// What `gleipnir:protection/host@0.2.0` adds to 0.1.0's functions.
const ADDED_IN_0_2_0: &[&str] = &["members", "account-created"];

/// Whether contract `version`'s host interface has `function`; `None` for a
/// version this host does not speak.
fn offers(version: &str, function: &str) -> Option<bool> {
    match version {
        "0.1.0" => Some(HOST_0_1_0.contains(&function)),
        "0.2.0" => Some(HOST_0_1_0.contains(&function) || ADDED_IN_0_2_0.contains(&function)),
        _ => None,
    }
}

/// The host functions `component` imports that this host does not offer,
/// each as `interface#function` (a whole interface of a version this host
/// does not speak as `interface`); empty when it imports nothing missing.
pub(crate) fn missing(engine: &Engine, component: &Component) -> Vec<String> {
    let host = format!("{WIT_PACKAGE}/host@");
    let mut missing = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
        if !name.starts_with(WIT_PACKAGE) {
            continue;
        }
        let host_version = name.strip_prefix(&host).filter(|v| offers(v, "").is_some());
        let types_version = name.strip_prefix(&format!("{WIT_PACKAGE}/types@")).filter(|v| offers(v, "").is_some());
        match (host_version, types_version) {
            (Some(version), _) => {
                for (function, _) in instance.exports(engine) {
                    if offers(version, function) != Some(true) {
                        missing.push(format!("{name}#{function}"));
                    }
                }
            }
            (None, Some(_)) => {}
            (None, None) => missing.push(name.to_owned()),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `name: func(` of the `host` interface in a contract's WIT.
    fn declared(wit: &str) -> Vec<String> {
        let host = wit.split("interface host {").nth(1).expect("a host interface").split("\n}").next().unwrap();
        let mut names: Vec<String> =
            host.lines().filter_map(|line| line.trim().split_once(": func(")).map(|(n, _)| n.to_owned()).collect();
        names.sort();
        names
    }

    /// Every function some version offers, kept where `version` offers it.
    fn offered(version: &str) -> Vec<String> {
        let all = HOST_0_1_0.iter().chain(ADDED_IN_0_2_0);
        let mut names: Vec<String> =
            all.filter(|f| offers(version, f) == Some(true)).map(|f| (*f).to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_lists_are_the_contracts_host_interfaces() {
        assert_eq!(offered("0.1.0"), declared(include_str!("../../../wit/0.1.0/protection.wit")));
        assert_eq!(offered("0.2.0"), declared(include_str!("../../../wit/0.2.0/protection.wit")));
        for version in crate::WIT_VERSIONS {
            assert!(offers(version, "log").is_some(), "no host functions listed for {version}");
        }
        assert_eq!(offers("9.0.0", "log"), None);
    }
}
