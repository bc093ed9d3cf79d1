//! `protections enable|disable|show|config`, and the commands protections
//! declare themselves (`NAME COMMAND ARGS…`).

use std::fmt::Write;

use gleipnir_runtime::settings;

use super::super::account;
use super::super::layers::{self, Overrides};
use super::super::matrix::Matrix;
use super::super::plan::Op;
use super::super::protected::Protected;
use super::super::protections::Protections;
use crate::parse::{self, ConfigOp};
use crate::state::Problem;
use gleipnir_runtime::Caller;

/// What moderators saved for one protection, and the values that no longer fit.
pub(crate) struct Saved {
    pub(crate) values: Overrides,
    pub(crate) problems: Vec<Problem>,
}

/// The moderators' saved settings could not be read.
#[derive(Debug)]
pub(crate) struct Unreadable(anyhow::Error);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the settings moderators saved cannot be read ({:#})", self.0)
    }
}

/// `protections enable|disable NAME`.
pub(crate) async fn set_enabled(m: &Matrix, p: &mut Protections, name: &str, on: bool) -> String {
    if !p.plugins.contains_key(name) {
        let names: Vec<&str> = p.plugins.keys().map(String::as_str).collect();
        return match parse::closest(name, &names) {
            Some(best) => format!("No protection named `{name}`; did you mean `{best}`?"),
            None => format!("No protection named `{name}`. Loaded: {}", names.join(", ")),
        };
    }
    // Enabling (again) lifts a quarantine.
    let lifted = on && p.health.get_mut(name).is_some_and(super::super::health::Health::clear);
    if on == p.enabled.contains_key(name) {
        if lifted {
            return format!("{name} is enabled; its quarantine is lifted.");
        }
        return format!("{name} is already {}.", if on { "enabled" } else { "disabled" });
    }
    if on {
        let Saved { values: moderator, problems } = match saved_settings(m, p, name).await {
            Ok(saved) => saved,
            Err(e) => return format!("Could not enable {name}: {e}. Nothing changed; try again."),
        };
        if let Err(e) = p.enable(name) {
            return format!("Could not enable {name}: {e:#}");
        }
        let configured = p.configure_enabled(name, moderator);
        if let Some(e) = configured.refused {
            tracing::warn!(protection = name, "saved settings refused: {e}");
            m.notify(&format!("{name} refuses its saved settings ({e}): it runs with its defaults.")).await;
        }
        for problem in problems {
            m.notify(&format!("{problem}: using the default instead.")).await;
        }
        for problem in configured.file_problems {
            m.notify(&format!("Ignored from the settings file: {problem}.")).await;
        }
    } else {
        p.enabled.remove(name);
    }
    let names = p.enabled_names();
    if let Err(e) = m.set_account(account::ENABLED_PROTECTIONS, account::enabled_content(&names)).await {
        return format!("{name} is {} for now, but saving failed: {e:#}", if on { "enabled" } else { "disabled" });
    }
    let granted = p.granted(name);
    let declared = p.plugins[name].declared();
    let mut reply = format!("{name} {}.", if on { "enabled" } else { "disabled" });
    if on && declared.intersection(granted) != declared {
        let _ = write!(reply, " It declares {declared}; the operator grants {granted}: the rest will be refused.");
    }
    reply
}

/// `protections show NAME`.
pub(crate) fn show(p: &Protections, name: &str) -> String {
    let Some(plugin) = p.plugins.get(name) else { return format!("No protection named `{name}`.") };
    let d = plugin.descriptor();
    let mut out = format!("{} {}: {}\n", d.name, d.version, d.summary);
    let in_force = p.enabled.get(name).map(super::super::protections::Slot::settings).unwrap_or_default();
    let (overrides, _) = p.effective(name, plugin);
    for spec in &d.settings {
        let value = match in_force.iter().find(|s| s.key == spec.key) {
            Some(s) => settings::format_value(&s.value),
            None => match overrides.iter().find(|(k, _)| *k == spec.key) {
                Some((_, v)) => settings::format_value(v),
                None => settings::format_value(&spec.default),
            },
        };
        let source = p.source(name, &spec.key);
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

/// `protections config set|add|remove|reset NAME KEY [VALUE]`: the new value, or why
/// nothing changed.
pub(crate) async fn configure(
    m: &Matrix,
    p: &mut Protections,
    op: ConfigOp,
    name: &str,
    key: &str,
    value: Option<String>,
) -> Result<String, String> {
    let Some(instance) = p.enabled.get_mut(name) else {
        return Err(format!("{name} is not enabled; enable it first with `protections enable {name}`."));
    };
    let specs = instance.plugin().descriptor().settings.clone();
    let spec = match settings::find(&specs, key) {
        Ok(s) => s,
        Err(e) => return Err(format!("{e}. Nothing changed.")),
    };
    let mut overrides = p.layers.moderator.get(name).cloned().unwrap_or_default();
    let old =
        instance.settings().iter().find(|s| s.key == key).map(|s| settings::format_value(&s.value)).unwrap_or_default();
    match op {
        ConfigOp::Reset => overrides.retain(|(k, _)| k != key),
        ConfigOp::Set => {
            let text = value.unwrap_or_default();
            match settings::parse_value(spec, &text) {
                Ok(v) => {
                    overrides.retain(|(k, _)| k != key);
                    overrides.push((key.to_owned(), v));
                }
                Err(e) => return Err(format!("{e}. Nothing changed.")),
            }
        }
        ConfigOp::Add | ConfigOp::Remove => {
            let edit = if op == ConfigOp::Add { settings::ListEdit::Add } else { settings::ListEdit::Remove };
            let current = instance.settings().iter().find(|s| s.key == key).map(|s| s.value.clone());
            let Some(current) = current else { return Err(format!("{name} has no setting `{key}`. Nothing changed.")) };
            match settings::edit_list(spec, &current, edit, &value.unwrap_or_default()) {
                Ok(v) => {
                    overrides.retain(|(k, _)| k != key);
                    overrides.push((key.to_owned(), v));
                }
                Err(e) => return Err(format!("{e}. Nothing changed.")),
            }
        }
    }
    let persisted = commit(m, p, name, overrides).await?;
    let instance = p.enabled.get(name).expect("checked above");
    let new =
        instance.settings().iter().find(|s| s.key == key).map(|s| settings::format_value(&s.value)).unwrap_or_default();
    Ok(format!("{name}.{key}: {old} → {new}{persisted}"))
}

/// Puts the moderators' `overrides` of `name` in force (over the file's
/// values) and saves them; on an error the previous settings stay. The
/// suffix to add when saving failed.
async fn commit(m: &Matrix, p: &mut Protections, name: &str, overrides: Overrides) -> Result<&'static str, String> {
    let Some(instance) = p.enabled.get_mut(name) else { return Err(format!("{name} is not enabled")) };
    let plugin = instance.plugin().clone();
    let (file, _) = layers::file_values(name, p.layers.file.get(name), &plugin.descriptor().settings);
    let effective = layers::merge(file, &overrides);
    if let Err(e) = super::super::sandboxed(|| instance.lock().configure(&effective)) {
        return Err(format!("{e}. The previous settings stay."));
    }
    // Persist what moderators set, as text, per protection.
    p.layers.moderator.insert(name.to_owned(), overrides);
    Ok(match layers::save_moderator(m, &p.layers, name).await {
        Ok(()) => "",
        Err(_) => " (live, but saving failed: it will not survive a restart)",
    })
}

/// `NAME COMMAND ARGS…`: one of a protection's own commands. The
/// settings its reply changes are checked and saved like a moderator's
/// `protections config` (all or none); its actions come back as operations
/// for the usual plan (previewed above `confirm_above`). `Err` says why
/// nothing was done.
pub(crate) async fn protection_command(
    m: &Matrix,
    p: &mut Protections,
    protected: &Protected,
    name: &str,
    command: &str,
    args: &[String],
    caller: &Caller,
) -> Result<(String, Vec<Op>), String> {
    let outcome = p.command(name, command, args, caller, protected)?;
    let mut reply = outcome.reply;
    if !outcome.settings.is_empty() {
        let changed = set_values(m, p, name, &outcome.settings)
            .await
            .map_err(|why| format!("{reply}\nBut {name}'s settings were not changed: {why}. Nothing done."))?;
        let _ = write!(reply, "\n{changed}");
    }
    for refusal in &outcome.outcome.refused {
        let action = gleipnir_runtime::json::action(&refusal.action);
        let _ = write!(reply, "\nRefused {action}: {}.", refusal.why);
    }
    let ops = outcome.outcome.actions.into_iter().map(|action| Op::Protection { origin: name.to_owned(), action });
    Ok((reply, ops.collect()))
}

/// Sets several of `name`'s settings at once, as a moderator's layer: each
/// value checked against its spec, then one `configure`; saved. Says what
/// changed.
async fn set_values(
    m: &Matrix,
    p: &mut Protections,
    name: &str,
    values: &[(String, gleipnir_runtime::SettingValue)],
) -> Result<String, String> {
    let Some(instance) = p.enabled.get(name) else { return Err(format!("{name} is not enabled")) };
    let specs = instance.plugin().descriptor().settings.clone();
    let mut overrides = p.layers.moderator.get(name).cloned().unwrap_or_default();
    let mut changes = Vec::new();
    for (key, value) in values {
        let spec = settings::find(&specs, key).map_err(|e| e.to_string())?;
        settings::check_value(spec, value).map_err(|e| e.to_string())?;
        let old = instance.settings().iter().find(|s| s.key == *key).map(|s| settings::format_value(&s.value));
        changes.push(format!("{name}.{key}: {} → {}", old.unwrap_or_default(), settings::format_value(value)));
        overrides.retain(|(k, _)| k != key);
        overrides.push((key.clone(), value.clone()));
    }
    let persisted = commit(m, p, name, overrides).await?;
    Ok(format!("{}{persisted}", changes.join("\n")))
}

/// `protections`: each loaded protection, enabled or not, with its health.
pub(crate) fn list(p: &Protections) -> String {
    let mut out = String::from("Protections:");
    if p.plugins.is_empty() {
        out += " none loaded";
    }
    for (name, plugin) in &p.plugins {
        let now = std::time::Instant::now();
        let health = p.health.get(name);
        let mut state = match p.enabled.get(name) {
            Some(instance) => match (health.and_then(|h| h.quarantined_for(now)), instance.fault()) {
                (Some(left), _) => format!("enabled, QUARANTINED for {} s more", left.as_secs()),
                (None, Some(fault)) => format!("enabled, FAULTED: {fault}"),
                (None, None) => "enabled".to_owned(),
            },
            None => "disabled".to_owned(),
        };
        if let Some(h) = health {
            if h.faults > 0 {
                let _ = write!(state, "; {} fault(s), last: {}", h.faults, h.last_fault.as_deref().unwrap_or(""));
            }
            for (kind, count) in &h.refused {
                let _ = write!(state, "; {count} refused {kind}");
            }
        }
        if p.enabled.contains_key(name) {
            let granted = p.granted(name);
            let missing: Vec<&str> = plugin
                .declared()
                .iter()
                .filter(|c| !granted.contains(*c))
                .map(gleipnir_runtime::capability::name)
                .collect();
            if !missing.is_empty() {
                let _ = write!(
                    state,
                    "; not granted: {} (refused when it asks; grant in [protections.{name}] grants)",
                    missing.join(", ")
                );
            }
        }
        let _ = write!(out, "\n- {name} {} ({state})", plugin.descriptor().version);
    }
    out
}

/// What moderators set for `name`, and the values that no longer fit
/// its spec. An error when the store cannot be read: running (and later
/// saving) without what was stored would lose it.
pub(crate) async fn saved_settings(m: &Matrix, p: &Protections, name: &str) -> Result<Saved, Unreadable> {
    let content = m.account(account::SETTINGS).await.map_err(Unreadable)?;
    // Entries that do not fit the shape are reported at start, not here.
    let (all, _) = crate::state::read_settings(content.as_ref());
    let mut problems = Vec::new();
    let Some(plugin) = p.plugins.get(name) else { return Ok(Saved { values: Vec::new(), problems }) };
    let specs = &plugin.descriptor().settings;
    let mut out = Vec::new();
    for (key, text) in all.get(name).into_iter().flatten() {
        match settings::find(specs, key).and_then(|spec| settings::parse_value(spec, text)) {
            Ok(value) => out.push((key.clone(), value)),
            Err(e) => problems.push(crate::state::setting_problem(name, key, text, e.to_string())),
        }
    }
    Ok(Saved { values: out, problems })
}
