//! Capabilities moderators may grant a protection (`protections grant|revoke`),
//! within what the operator allows (`protections.NAME.grantable`), kept in
//! account data; and the query grants the operator gives in the config.

use std::collections::BTreeMap;

use gleipnir_runtime::{CapabilitySet, Plugin, capability};
use serde_json::{Value, json};

use super::layers::with_entry;
use super::matrix::Matrix;
use super::protections::Protections;

/// Account data: capabilities moderators granted, by protection.
pub(crate) const GRANTS: &str = "org.gleipnir.protection_grants";

/// `protections grant|revoke NAME CAPABILITY`.
pub(crate) async fn grant(
    m: &Matrix,
    p: &mut Protections,
    grantable: &BTreeMap<String, CapabilitySet>,
    name: &str,
    capability_name: &str,
    grant: bool,
) -> String {
    // Read first: a failed read must not become "nothing stored" and be written back.
    let stored = match m.account(GRANTS).await {
        Ok(stored) => stored,
        Err(e) => return format!("Cannot read the stored grants ({e:#}). Nothing changed."),
    };
    let Some(plugin) = p.plugins.get(name) else {
        return format!("No protection named `{name}` is loaded.");
    };
    let cap = match capability::parse(capability_name) {
        Ok(c) => c,
        Err(e) => return format!("{e}. Nothing changed."),
    };
    let operator = p.operator_granted(name);
    let mut mine = p.moderator_grants.get(name).copied().unwrap_or_default();
    if grant {
        if operator.contains(cap) || mine.contains(cap) {
            return format!("{name} already has `{capability_name}`.");
        }
        if !grantable.get(name).copied().unwrap_or_default().contains(cap) {
            return format!(
                "The operator does not let moderators grant `{capability_name}` to {name} \
                     (protections.{name}.grantable in the config). Nothing changed."
            );
        }
        if !plugin.declared().contains(cap) {
            return format!("{name} does not declare `{capability_name}`, so it could not use it. Nothing changed.");
        }
        mine.insert(cap);
    } else {
        if !mine.contains(cap) {
            return if operator.contains(cap) {
                format!(
                    "`{capability_name}` is granted to {name} by the operator (protections.{name}.grants in the config); \
                         only the config can take it back. Nothing changed."
                )
            } else {
                format!("{name} does not have `{capability_name}`. Nothing changed.")
            };
        }
        mine.remove(cap);
    }
    p.moderator_grants.insert(name.to_owned(), mine);
    let granted = p.granted(name);
    if let Some(instance) = p.enabled.get_mut(name) {
        instance.lock().set_granted(granted);
    }
    // Only this protection's entry changes: what is stored for others
    // (even grants the config no longer allows) stays as it is.
    let entry = json!(mine.iter().map(capability::name).collect::<Vec<_>>());
    let saved = match with_entry(stored, GRANTS, name, entry) {
        Ok(content) => match m.set_account(GRANTS, content).await {
            Ok(()) => String::new(),
            Err(e) => format!(" (live, but saving failed: {e:#}; it will not survive a restart)"),
        },
        Err(e) => format!(" (live, but not saved: {e})"),
    };
    let verb = if grant { "granted to" } else { "revoked from" };
    format!(
        "`{capability_name}` {verb} {name}{saved}. It may now use: {}.",
        p.granted(name).intersection(plugin_declared(p, name))
    )
}

/// Reads the grants moderators gave; those the config no longer allows are left out.
pub(crate) async fn load_grants(
    m: &Matrix,
    p: &mut Protections,
    grantable: &BTreeMap<String, CapabilitySet>,
) -> Vec<String> {
    p.moderator_grants.clear();
    let mut dropped = Vec::new();
    let content = match m.account(GRANTS).await {
        Ok(content) => content,
        Err(e) => {
            // Fewer powers than granted, never more: said, and `restart` reads again.
            dropped.push(format!("every grant moderators gave (cannot read {GRANTS}: {e:#})"));
            None
        }
    };
    let Some(Value::Object(map)) = content else { return dropped };
    for (name, caps) in map {
        let allowed = grantable.get(&name).copied().unwrap_or_default();
        let mut set = CapabilitySet::EMPTY;
        for cap in caps.as_array().into_iter().flatten() {
            match cap.as_str().map(capability::parse) {
                Some(Ok(c)) if allowed.contains(c) => set.insert(c),
                _ => dropped.push(format!("{name}: {cap}")),
            }
        }
        p.moderator_grants.insert(name, set);
    }
    dropped
}

fn plugin_declared(p: &Protections, name: &str) -> CapabilitySet {
    p.plugins.get(name).map(Plugin::declared).unwrap_or_default()
}
