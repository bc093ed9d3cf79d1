//! `protections enable|disable|show|config` and `trust`/`untrust`.

use std::fmt::Write;

use gleipnir_runtime::settings;

use super::super::{Bot, account};
use crate::parse::{self, ConfigOp};

/// What moderators saved for one protection, and the values that no longer fit.
pub(crate) type SavedSettings = (Vec<(String, gleipnir_runtime::SettingValue)>, Vec<crate::state::Problem>);

impl Bot {
    pub(crate) async fn set_enabled(&mut self, name: &str, on: bool) -> String {
        if !self.protections.plugins.contains_key(name) {
            let names: Vec<&str> = self.protections.plugins.keys().map(String::as_str).collect();
            return match parse::closest(name, &names) {
                Some(best) => format!("No protection named `{name}`; did you mean `{best}`?"),
                None => format!("No protection named `{name}`. Loaded: {}", names.join(", ")),
            };
        }
        // Enabling (again) lifts a quarantine.
        let lifted = on && self.protections.health.get_mut(name).is_some_and(super::super::health::Health::clear);
        if on == self.protections.enabled.contains_key(name) {
            if lifted {
                return format!("{name} is enabled; its quarantine is lifted.");
            }
            return format!("{name} is already {}.", if on { "enabled" } else { "disabled" });
        }
        if on {
            let (moderator, problems) = match self.saved_settings(name).await {
                Ok(saved) => saved,
                Err(e) => return format!("Could not enable {name}: {e}. Nothing changed; try again."),
            };
            if let Err(e) = self.protections.enable(name) {
                return format!("Could not enable {name}: {e:#}");
            }
            let configured = self.protections.configure_enabled(name, moderator);
            if let Some(e) = configured.refused {
                tracing::warn!(protection = name, "saved settings refused: {e}");
                self.matrix
                    .notify(&format!("{name} refuses its saved settings ({e}): it runs with its defaults."))
                    .await;
            }
            for problem in problems {
                self.matrix.notify(&format!("{problem}: using the default instead.")).await;
            }
            for problem in configured.file_problems {
                self.matrix.notify(&format!("Ignored from the settings file: {problem}.")).await;
            }
        } else {
            self.protections.enabled.remove(name);
        }
        let names: Vec<String> = self.protections.enabled.keys().cloned().collect();
        if let Err(e) = self.matrix.set_account(account::ENABLED_PROTECTIONS, account::enabled_content(&names)).await {
            return format!("{name} is {} for now, but saving failed: {e:#}", if on { "enabled" } else { "disabled" });
        }
        let granted = self.protections.granted(name);
        let declared = self.protections.plugins[name].declared();
        let mut reply = format!("{name} {}.", if on { "enabled" } else { "disabled" });
        if on && declared.intersection(granted) != declared {
            let _ = write!(reply, " It declares {declared}; the operator grants {granted}: the rest will be refused.");
        }
        reply
    }

    pub(crate) fn show(&self, name: &str) -> String {
        let Some(plugin) = self.protections.plugins.get(name) else { return format!("No protection named `{name}`.") };
        let d = plugin.descriptor();
        let mut out = format!("{} {}: {}\n", d.name, d.version, d.summary);
        let instance = self.protections.enabled.get(name);
        let (overrides, _) = self.protections.effective(name, plugin);
        for spec in &d.settings {
            let value = match instance.and_then(|i| i.settings().iter().find(|s| s.key == spec.key)) {
                Some(s) => settings::format_value(&s.value),
                None => match overrides.iter().find(|(k, _)| *k == spec.key) {
                    Some((_, v)) => settings::format_value(v),
                    None => settings::format_value(&spec.default),
                },
            };
            let source = self.protections.source(name, &spec.key);
            let _ = writeln!(
                out,
                "- {} = {value} ({source}; {}, default {})",
                spec.key,
                settings::format_kind(&spec.kind),
                settings::format_value(&spec.default)
            );
        }
        out
    }

    pub(crate) async fn configure(&mut self, op: ConfigOp, name: &str, key: &str, value: Option<String>) -> String {
        let Some(instance) = self.protections.enabled.get_mut(name) else {
            return format!("{name} is not enabled; enable it first with `protections enable {name}`.");
        };
        let specs = instance.plugin().descriptor().settings.clone();
        let spec = match settings::find(&specs, key) {
            Ok(s) => s,
            Err(e) => return format!("{e}. Nothing changed."),
        };
        let mut overrides = self.protections.layers.moderator.get(name).cloned().unwrap_or_default();
        let old = instance
            .settings()
            .iter()
            .find(|s| s.key == key)
            .map(|s| settings::format_value(&s.value))
            .unwrap_or_default();
        match op {
            ConfigOp::Reset => overrides.retain(|(k, _)| k != key),
            ConfigOp::Set => {
                let text = value.unwrap_or_default();
                match settings::parse_value(spec, &text) {
                    Ok(v) => {
                        overrides.retain(|(k, _)| k != key);
                        overrides.push((key.to_owned(), v));
                    }
                    Err(e) => return format!("{e}. Nothing changed."),
                }
            }
            ConfigOp::Add | ConfigOp::Remove => {
                let edit = if op == ConfigOp::Add { settings::ListEdit::Add } else { settings::ListEdit::Remove };
                let current = instance.settings().iter().find(|s| s.key == key).map(|s| s.value.clone());
                let Some(current) = current else { return format!("{name} has no setting `{key}`. Nothing changed.") };
                match settings::edit_list(spec, &current, edit, &value.unwrap_or_default()) {
                    Ok(v) => {
                        overrides.retain(|(k, _)| k != key);
                        overrides.push((key.to_owned(), v));
                    }
                    Err(e) => return format!("{e}. Nothing changed."),
                }
            }
        }
        let plugin = instance.plugin().clone();
        let (file, _) = super::super::layers::file_values(
            name,
            self.protections.layers.file.get(name),
            &plugin.descriptor().settings,
        );
        let effective = super::super::layers::merge(file, &overrides);
        let instance = self.protections.enabled.get_mut(name).expect("checked above");
        if let Err(e) = super::super::sandboxed(|| instance.configure(&effective)) {
            return format!("{e}. The previous settings stay.");
        }
        let new = instance
            .settings()
            .iter()
            .find(|s| s.key == key)
            .map(|s| settings::format_value(&s.value))
            .unwrap_or_default();
        // Persist what moderators set, as text, per protection.
        self.protections.layers.moderator.insert(name.to_owned(), overrides);
        let persisted = match self.save_moderator_settings(name).await {
            Ok(()) => "",
            Err(_) => " (live, but saving failed: it will not survive a restart)",
        };
        format!("{name}.{key}: {old} → {new}{persisted}")
    }

    /// `trust USER` / `untrust USER`: least-authority's `trusted` and `gated`
    /// settings, changed through the same path as `protections config`.
    pub(crate) async fn trust(&mut self, user: &str, trust: bool) -> String {
        const NAME: &str = "least-authority";
        let Some(instance) = self.protections.enabled.get(NAME) else {
            return format!("{NAME} is not enabled; `protections enable {NAME}` first. Nothing changed.");
        };
        let listed = |key: &str| {
            instance.settings().iter().any(|s| {
                s.key == key
                    && matches!(&s.value, gleipnir_runtime::SettingValue::UserIds(u) if u.iter().any(|u| u == user))
            })
        };
        let (trusted, gated) = (listed("trusted"), listed("gated"));
        let edits: &[(ConfigOp, &str, bool)] = if trust {
            &[(ConfigOp::Remove, "gated", gated), (ConfigOp::Add, "trusted", !trusted)]
        } else {
            &[(ConfigOp::Remove, "trusted", trusted), (ConfigOp::Add, "gated", !gated)]
        };
        for &(op, key, needed) in edits {
            if needed {
                let reply = self.configure(op, NAME, key, Some(user.to_owned())).await;
                if !reply.starts_with(&format!("{NAME}.{key}:")) {
                    return reply;
                }
            }
        }
        if trust {
            format!(
                "{user} is trusted: {NAME} no longer restricts what they post. `untrust {user}` puts the gate back."
            )
        } else {
            format!(
                "{user} is gated: {NAME} restricts their links, media, mentions and formatting whatever their time                  and messages. `trust {user}` lifts it."
            )
        }
    }
}
