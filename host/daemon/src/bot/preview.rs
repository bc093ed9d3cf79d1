//! `protections preview NAME`: what a protection would have done over the
//! recent history of the protected rooms. A fresh instance (with the
//! operator's grants and the moderators' settings) reads each room's last
//! events, oldest first, with its clock set to each event's time; its
//! actions are collected and reported. Nothing is carried out, and the
//! running instance (if any) is not touched.

use std::fmt::Write;
use std::sync::Arc;

use gleipnir_runtime::host::StateQueries;
use gleipnir_runtime::{Clock, event};

use super::Bot;
use super::history::Backwards;
use super::say;

/// Lines of actions shown before "… and N more".
const SHOWN: usize = 30;

impl Bot {
    pub(crate) async fn preview(&mut self, name: &str, limit: u32) -> String {
        let Some(plugin) = self.protections.plugins.get(name).cloned() else {
            return format!("No protection named `{name}` is loaded.");
        };
        if self.protected.is_empty() {
            return "No protected rooms to preview over.".to_owned();
        }
        let clock = Arc::new(StateQueries {
            bot: self.matrix.bot_user.clone(),
            clock: Clock::manual(0),
            rooms: self.rooms.clone(),
        });
        let granted = self.protections.granted(name);
        let mut instance = match super::sandboxed(|| plugin.instantiate(clock.clone(), granted)) {
            Ok(i) => i,
            Err(e) => return format!("Could not start {name} for a preview: {e}"),
        };
        instance.set_query_grants(self.protections.query_grants(name));
        let overrides = match self.protections.enabled.get(name) {
            Some(live) => live.overrides().to_vec(),
            None => {
                let moderator = match super::commands::saved_settings(&self.matrix, &self.protections, name).await {
                    Ok(saved) => saved.values,
                    Err(e) => return format!("Could not preview {name}: {e}."),
                };
                let (file, _) = super::layers::file_values(
                    name,
                    self.protections.layers.file.get(name),
                    &plugin.descriptor().settings,
                );
                super::layers::merge(file, &moderator)
            }
        };
        if let Err(e) = super::sandboxed(|| instance.configure(&overrides)) {
            return format!("{name} refuses its settings: {e}");
        }

        let mut actions = Vec::new();
        let mut refused = Vec::new();
        let mut faults = Vec::new();
        let mut seen = 0;
        // Who sent each event read, to say whose messages a redaction removes.
        let mut senders = std::collections::HashMap::new();
        for room in self.protected.rooms() {
            let events = match self.recent_events(&room, limit).await {
                Ok(e) => e,
                Err(e) => {
                    faults.push(format!("{room}: cannot read the history: {e}"));
                    continue;
                }
            };
            for json in events {
                let Ok(Some(mut event)) = event::from_json(&json, Some(&room), &|r, u| self.rooms.membership(r, u))
                else {
                    continue;
                };
                if event.sender == self.matrix.bot_user || !instance.plugin().wants(event::class(&event.kind)) {
                    continue;
                }
                seen += 1;
                senders.insert(event.event_id.clone(), event.sender.clone());
                event.received_ts = event.origin_ts;
                clock.clock.set(event.origin_ts);
                match super::sandboxed(|| instance.handle(&event)) {
                    Ok(outcome) => {
                        actions.extend(outcome.actions.iter().cloned());
                        refused.extend(outcome.refused.iter().map(|r| (r.action.clone(), r.why.clone())));
                    }
                    Err(fault) => {
                        faults.push(format!("{}: {fault}", event.event_id));
                        if fault.kills_instance() && super::sandboxed(|| instance.restart()).is_err() {
                            break;
                        }
                    }
                }
            }
        }

        let mut out = format!(
            "Preview of {name} over the last {limit} event(s) of {} protected room(s) ({seen} it would have seen). Nothing was done.",
            self.protected.len()
        );
        let sender_of = |event: &str| senders.get(event).cloned();
        let room_name = |room: &str| say::room(super::matrix::room_name(&self.rooms, room), room);
        if actions.is_empty() {
            out.push_str("\nIt would have done nothing.");
        } else {
            let members = say::members(&actions, &sender_of);
            let _ = write!(out, "\nIt would have carried out {} action(s), about {members} member(s):", actions.len());
            for line in say::actions(&actions, &sender_of, &room_name, SHOWN) {
                let _ = write!(out, "\n- {line}");
            }
        }
        if !refused.is_empty() {
            let _ = write!(out, "\nRefused (outside its grants): {}", refused.len());
            let mut whys: Vec<String> = refused.iter().map(|(_, why)| why.clone()).collect();
            whys.dedup();
            let acts: Vec<_> = refused.into_iter().map(|(a, _)| a).collect();
            for line in say::actions(&acts, &sender_of, &room_name, 5) {
                let _ = write!(out, "\n- {line}");
            }
            for why in whys.iter().take(3) {
                let _ = write!(out, "\n  ({why})");
            }
        }
        for f in faults.iter().take(5) {
            let _ = write!(out, "\nFault: {f}");
        }
        out
    }

    /// The last `limit` events of a room, oldest first, as client-format JSON.
    async fn recent_events(&self, room: &str, limit: u32) -> Result<Vec<String>, String> {
        let mut pages = Backwards::new(room, (limit as usize).div_ceil(100).max(1))?;
        let mut events = Vec::new();
        while events.len() < limit as usize {
            let wanted = (limit as usize - events.len()).min(100) as u32;
            let Some(chunk) = pages.next(&self.matrix.client, wanted).await? else { break };
            events.extend(chunk.iter().map(|e| e.json().get().to_owned()));
        }
        events.reverse();
        Ok(events)
    }
}
