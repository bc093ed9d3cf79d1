//! One policy rule, read from one state event of a policy room.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::glob::{self, Glob};

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    User,
    Room,
    Server,
}

impl EntityKind {
    pub const ALL: [EntityKind; 3] = [EntityKind::User, EntityKind::Room, EntityKind::Server];

    pub fn name(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Room => "room",
            EntityKind::Server => "server",
        }
    }

    /// The kind an entity looks like: `@user:server`, `!room` or `#alias`, else a server.
    pub fn of(entity: &str) -> EntityKind {
        match entity.as_bytes().first() {
            Some(b'@') => EntityKind::User,
            Some(b'!' | b'#') => EntityKind::Room,
            _ => EntityKind::Server,
        }
    }

    /// The current (stable) event type for this kind's rules.
    pub fn event_type(self) -> &'static str {
        match self {
            EntityKind::User => "m.policy.rule.user",
            EntityKind::Room => "m.policy.rule.room",
            EntityKind::Server => "m.policy.rule.server",
        }
    }
}

/// Which generation of event type a rule came in. For one state key, a
/// newer generation wins over an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Generation {
    /// `m.policy.rule.*`: the spec's.
    Stable = 0,
    /// `m.room.rule.*`: the spec's first draft.
    Room = 1,
    /// `org.matrix.mjolnir.rule.*`: Mjolnir's before the spec.
    Mjolnir = 2,
}

/// `(kind, generation)` for a rule event type; `None` for any other type.
pub fn rule_type(event_type: &str) -> Option<(EntityKind, Generation)> {
    let (generation, kind) = if let Some(k) = event_type.strip_prefix("m.policy.rule.") {
        (Generation::Stable, k)
    } else if let Some(k) = event_type.strip_prefix("m.room.rule.") {
        (Generation::Room, k)
    } else if let Some(k) = event_type.strip_prefix("org.matrix.mjolnir.rule.") {
        (Generation::Mjolnir, k)
    } else {
        return None;
    };
    let kind = match kind {
        "user" => EntityKind::User,
        "room" => EntityKind::Room,
        "server" => EntityKind::Server,
        _ => return None,
    };
    Some((kind, generation))
}

/// What a rule asks for. Only bans and takedowns are acted on; anything else
/// is kept (to show it) and never acted on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recommendation {
    Ban,
    Takedown,
    /// Boxed twice: a thin pointer keeps every rule 8 bytes smaller.
    Other(Box<String>),
}

impl Recommendation {
    pub fn parse(text: &str) -> Recommendation {
        match text {
            "m.ban" | "org.matrix.mjolnir.ban" => Recommendation::Ban,
            "m.takedown" | "org.matrix.msc4204.takedown" => Recommendation::Takedown,
            other => Recommendation::Other(Box::new(other.to_owned())),
        }
    }

    /// Whether the bot bans (or denies) what the rule matches.
    pub fn acts(&self) -> bool {
        matches!(self, Recommendation::Ban | Recommendation::Takedown)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Recommendation::Ban => "m.ban",
            Recommendation::Takedown => "m.takedown",
            Recommendation::Other(s) => s.as_str(),
        }
    }

    /// The string written into a rule Gleipnir publishes: what every peer
    /// reads. MSC4204 is not merged, and Meowlnir and Mjolnir ignore
    /// `m.takedown`; matrix-protection-suite writes the unstable name too.
    pub fn published(&self) -> &str {
        match self {
            Recommendation::Takedown => "org.matrix.msc4204.takedown",
            other => other.as_str(),
        }
    }
}

/// The entity a rule names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entity {
    Literal(Box<str>),
    Glob(Glob),
    /// MSC4205: only the sha256 of the entity is published. (Boxed: inline,
    /// it would make every entity 16 bytes larger.)
    Hashed(Box<[u8; 32]>),
}

impl Entity {
    /// A literal or a glob, from the entity text.
    pub fn from_text(text: &str) -> Entity {
        match Glob::new(text) {
            Some(glob) => Entity::Glob(glob),
            None => Entity::Literal(text.into()),
        }
    }

    pub fn as_ref(&self) -> EntityRef<'_> {
        match self {
            Entity::Literal(l) => EntityRef::Literal(l),
            Entity::Glob(g) => EntityRef::Glob(g.as_str()),
            Entity::Hashed(h) => EntityRef::Hashed(h),
        }
    }

    pub fn matches(&self, kind: EntityKind, text: &str) -> bool {
        self.as_ref().matches(kind, text)
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// The entity a rule names, borrowed from the rule (which holds its state
/// key and its entity in one allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityRef<'a> {
    Literal(&'a str),
    /// The pattern.
    Glob(&'a str),
    Hashed(&'a [u8; 32]),
}

impl EntityRef<'_> {
    pub fn matches(self, kind: EntityKind, text: &str) -> bool {
        match self {
            EntityRef::Literal(l) if kind == EntityKind::Server => l.eq_ignore_ascii_case(text),
            EntityRef::Literal(l) => l == text,
            EntityRef::Glob(g) if kind == EntityKind::Server => glob::matches_text(g, &text.to_ascii_lowercase()),
            EntityRef::Glob(g) => glob::matches_text(g, text),
            // Peers hash a server name as it appears (`Banned.Example.com`);
            // the lower-cased name matches too, as literal names do in any case.
            EntityRef::Hashed(h) if kind == EntityKind::Server => {
                sha256(text) == *h || sha256(&text.to_ascii_lowercase()) == *h
            }
            EntityRef::Hashed(h) => sha256(text) == *h,
        }
    }

    pub fn to_owned(self) -> Entity {
        match self {
            EntityRef::Literal(l) => Entity::Literal(l.into()),
            EntityRef::Glob(g) => Entity::from_text(g),
            EntityRef::Hashed(h) => Entity::Hashed(Box::new(*h)),
        }
    }
}

impl fmt::Display for EntityRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityRef::Literal(text) | EntityRef::Glob(text) => f.write_str(text),
            EntityRef::Hashed(h) => write!(f, "sha256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)),
        }
    }
}

pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The base64 (unpadded) sha256 of an entity, as MSC4205 publishes it.
pub fn sha256_base64(text: &str) -> String {
    hash_base64(&sha256(text))
}

/// The event type a rule was found under.
pub fn event_type(rule: &Rule) -> String {
    let kind = rule.kind.name();
    match rule.generation {
        Generation::Stable => format!("m.policy.rule.{kind}"),
        Generation::Room => format!("m.room.rule.{kind}"),
        Generation::Mjolnir => format!("org.matrix.mjolnir.rule.{kind}"),
    }
}

/// A hash as the contract hands it to protections (base64, unpadded).
pub fn hash_base64(hash: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
}

/// The sha256 of an entity as MSC4205 publishes it: standard base64,
/// padded (44 characters). matrix-protection-suite compares the string
/// exactly and Meowlnir refuses any other length.
pub fn sha256_published(entity: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha256(entity))
}

/// One rule in effect. Held behind an `Arc` by the list's slot for it
/// and by the index, so every field counts a hundred thousand times: the
/// state key and the entity share one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The policy room it is in.
    pub list: Arc<str>,
    pub kind: EntityKind,
    pub generation: Generation,
    pub recommendation: Recommendation,
    /// Shared by the rules of a list that give the same reason (see `list`).
    pub reason: Arc<str>,
    /// The state key, then the entity's text (none for a hashed rule).
    text: Box<str>,
    /// A hashed rule's hash.
    hash: Option<Box<[u8; 32]>>,
    key_len: u32,
    form: Form,
}

/// How a rule names its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Literal,
    Glob,
    Hashed,
}

impl Rule {
    pub fn new(
        list: Arc<str>,
        kind: EntityKind,
        generation: Generation,
        state_key: &str,
        entity: EntityRef<'_>,
        recommendation: Recommendation,
        reason: Arc<str>,
    ) -> Rule {
        let (named, form, hash) = match entity {
            EntityRef::Literal(text) => (text, Form::Literal, None),
            EntityRef::Glob(text) => (text, Form::Glob, None),
            EntityRef::Hashed(hash) => ("", Form::Hashed, Some(Box::new(*hash))),
        };
        // A state key longer than 4 GiB cannot come in an event.
        let key_len = u32::try_from(state_key.len()).expect("a state key shorter than 4 GiB");
        let mut text = String::with_capacity(state_key.len() + named.len());
        text.push_str(state_key);
        text.push_str(named);
        Rule { list, kind, generation, recommendation, reason, text: text.into_boxed_str(), hash, key_len, form }
    }

    pub fn state_key(&self) -> &str {
        &self.text[..self.key_len as usize]
    }

    pub fn entity(&self) -> EntityRef<'_> {
        let named = &self.text[self.key_len as usize..];
        match (self.form, &self.hash) {
            (Form::Hashed, Some(hash)) => EntityRef::Hashed(hash),
            (Form::Glob, _) => EntityRef::Glob(named),
            // `new` gives a hashed rule its hash; no other rule has one.
            (Form::Literal | Form::Hashed, _) => EntityRef::Literal(named),
        }
    }

    /// Same meaning (entity, recommendation, reason), wherever it came from.
    pub fn same_meaning(&self, other: &Rule) -> bool {
        self.entity() == other.entity() && self.recommendation == other.recommendation && self.reason == other.reason
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ({})", self.kind.name(), self.entity(), self.recommendation.as_str(), self.list)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// What one rule event's content says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Rule(Rule),
    /// `{}` (a removed or redacted rule).
    Empty,
    /// Not a usable rule; the reason. Treated like a removal.
    Invalid(String),
}

/// The fields of a rule's content, each read as raw JSON: a field of the
/// wrong type reads as absent, as in `parse_value`, without building a
/// `Value` for every rule of a 100,000-rule list.
#[derive(serde::Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    entity: Option<&'a RawValue>,
    #[serde(borrow, default)]
    recommendation: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    hashes: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "org.matrix.msc4205.hashes")]
    unstable_hashes: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct Hashes<'a> {
    #[serde(borrow, default)]
    sha256: Option<&'a RawValue>,
}

/// A JSON string's text; `None` for anything else.
fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?.get();
    match serde_json::from_str::<&str>(raw) {
        Ok(text) => Some(Cow::Borrowed(text)),
        // Escapes need an owned string; anything but a string is absent.
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// Reads a rule event. `None` when the type is not a rule type.
pub fn parse(list: &Arc<str>, event_type: &str, state_key: &str, content: &str) -> Option<Content> {
    let (kind, generation) = rule_type(event_type)?;
    Some(parse_keyed(&Place { list, kind, generation, state_key }, content))
}

/// Where a rule event stands: its list, the kind and generation its type
/// says, and its state key.
pub(crate) struct Place<'a> {
    pub(crate) list: &'a Arc<str>,
    pub(crate) kind: EntityKind,
    pub(crate) generation: Generation,
    pub(crate) state_key: &'a str,
}

/// Reads a rule event of a known type.
pub(crate) fn parse_keyed(place: &Place<'_>, content: &str) -> Content {
    // `{}` (whitespace aside) is a removed rule.
    if content.bytes().filter(|b| !b.is_ascii_whitespace()).eq(*b"{}") {
        return Content::Empty;
    }
    // Anything the field reader does not take (not an object, a field
    // twice, not JSON) goes the slow way, which says why.
    let object = content.trim_start().starts_with('{');
    let Some(fields) = object.then(|| serde_json::from_str::<Fields<'_>>(content).ok()).flatten() else {
        return parse_value(place, content);
    };
    let Some(recommendation) = text(fields.recommendation) else {
        return Content::Invalid("no recommendation".to_owned());
    };
    let hash = [fields.hashes, fields.unstable_hashes].into_iter().flatten().find_map(|h| {
        match serde_json::from_str::<Hashes<'_>>(h.get()) {
            Ok(hashes) => text(hashes.sha256),
            // A field twice: the last one counts, as in a `Value`.
            Err(_) => {
                serde_json::from_str::<Value>(h.get()).ok()?.get("sha256")?.as_str().map(|s| Cow::Owned(s.to_owned()))
            }
        }
    });
    let entity = text(fields.entity).filter(|e| !e.is_empty());
    let reason = text(fields.reason).unwrap_or_default();
    rule(place, Recommendation::parse(&recommendation), entity.as_deref(), hash.as_deref(), &reason)
}

/// The rule from its fields, once read.
fn rule(
    place: &Place<'_>,
    recommendation: Recommendation,
    entity: Option<&str>,
    hash: Option<&str>,
    reason: &str,
) -> Content {
    let Place { list, kind, generation, state_key } = *place;
    let lowered;
    let decoded;
    let entity = match (entity, hash) {
        (Some(e), _) => {
            let e = if kind == EntityKind::Server {
                lowered = e.to_ascii_lowercase();
                &lowered
            } else {
                e
            };
            if glob::is_glob(e) { EntityRef::Glob(e) } else { EntityRef::Literal(e) }
        }
        (None, Some(hash)) => match decode_hash(hash) {
            Some(h) => {
                decoded = h;
                EntityRef::Hashed(&decoded)
            }
            None => return Content::Invalid(format!("`{hash}` is not a base64 sha256")),
        },
        (None, None) => return Content::Invalid("no entity".to_owned()),
    };
    Content::Rule(Rule::new(list.clone(), kind, generation, state_key, entity, recommendation, Arc::from(reason)))
}

/// Reads a rule's content through a `Value`: the way for content the field
/// reader does not take.
fn parse_value(place: &Place<'_>, content: &str) -> Content {
    let value: Value = match serde_json::from_str(content) {
        Ok(v) => v,
        Err(e) => return Content::Invalid(format!("not JSON: {e}")),
    };
    let Some(object) = value.as_object() else { return Content::Invalid("not an object".to_owned()) };
    if object.is_empty() {
        return Content::Empty;
    }
    let recommendation = match object.get("recommendation") {
        Some(Value::String(r)) => Recommendation::parse(r),
        _ => return Content::Invalid("no recommendation".to_owned()),
    };
    // Optional fields of the wrong type read as absent: an entity that is not
    // text, a hash field that holds no sha256 text.
    let hash = ["hashes", "org.matrix.msc4205.hashes"]
        .iter()
        .find_map(|key| object.get(*key).and_then(|h| h.get("sha256")).and_then(Value::as_str));
    let entity = object.get("entity").and_then(Value::as_str).filter(|e| !e.is_empty());
    let reason = object.get("reason").and_then(Value::as_str).unwrap_or_default();
    rule(place, recommendation, entity, hash, reason)
}

/// The 32 bytes of a base64 sha256 (standard or URL-safe, padded or not).
pub fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let trimmed = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    bytes.try_into().ok()
}

/// The state key a new rule gets: the padded base64 of the sha256 of the
/// entity followed by the published recommendation, as Draupnir
/// (matrix-protection-suite) and Meowlnir name new rules, so a ban both
/// bots write to one list is one rule, and the same ban written twice
/// replaces itself. For a hashed rule the plaintext entity is hashed, as
/// matrix-protection-suite does: the key reveals no more than the hash.
pub fn state_key_for(entity: &str, recommendation: &Recommendation) -> String {
    let mut text = String::with_capacity(entity.len() + 32);
    text.push_str(entity);
    text.push_str(recommendation.published());
    base64::engine::general_purpose::STANDARD.encode(sha256(&text))
}

/// A rule to write into a policy room.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub event_type: &'static str,
    pub state_key: String,
    pub content: Value,
}

/// The event a new rule is written as, in the form every peer reads: the
/// stable event type (`m.policy.rule.*`), the published recommendation,
/// and for a hashed rule (`hashed`; never a glob) only the MSC4205 hash
/// under its unstable key, padded.
pub fn publish(entity: &str, recommendation: &Recommendation, reason: &str, hashed: bool) -> Published {
    let kind = EntityKind::of(entity);
    let content = if hashed && !crate::glob::is_glob(entity) {
        serde_json::json!({
            "recommendation": recommendation.published(),
            "reason": reason,
            "org.matrix.msc4205.hashes": {"sha256": sha256_published(entity)},
        })
    } else {
        serde_json::json!({"entity": entity, "recommendation": recommendation.published(), "reason": reason})
    };
    Published { event_type: kind.event_type(), state_key: state_key_for(entity, recommendation), content }
}

#[cfg(test)]
mod tests;
