//! Management-room commands: text in, a typed [`Command`] or a one-line
//! error with the closest match out. Pure: no Matrix, no I/O.

use std::fmt;

/// A room as a moderator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoomRef {
    Id(String),
    Alias(String),
}

impl fmt::Display for RoomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomRef::Id(s) | RoomRef::Alias(s) => f.write_str(s),
        }
    }
}

/// What `redact` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedactTarget {
    User(String),
    Event { room: RoomRef, event_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigOp {
    Set,
    Add,
    Remove,
    Reset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Help {
        topic: Option<String>,
    },
    Status,
    Rooms,
    RoomsAdd(RoomRef),
    RoomsRemove(RoomRef),
    Protections,
    Enable(String),
    Disable(String),
    Show(String),
    Config {
        op: ConfigOp,
        protection: String,
        key: String,
        value: Option<String>,
    },
    /// `entity` is a user, or (with a list) a glob, room or server; `room`
    /// may name a protected room or a watched list.
    Ban {
        entity: String,
        room: Option<RoomRef>,
        reason: Option<String>,
    },
    Unban {
        entity: String,
        room: Option<RoomRef>,
    },
    Takedown {
        entity: String,
        list: String,
        reason: Option<String>,
    },
    /// `import ROOM LIST`: the room's bans and server-ACL denials as rules.
    Import {
        room: RoomRef,
        list: String,
    },
    ListCreate {
        shortcode: String,
        alias_localpart: String,
    },
    Recover(usize),
    Restart,
    SafeMode,
    Preview {
        name: String,
        limit: u32,
    },
    Kick {
        user: String,
        room: Option<RoomRef>,
        reason: Option<String>,
    },
    /// `kick --glob PATTERN [ROOM] [reason]`: every joined member the glob matches.
    KickGlob {
        pattern: String,
        room: Option<RoomRef>,
        reason: Option<String>,
    },
    Redact {
        target: RedactTarget,
        limit: Option<u32>,
        room: Option<RoomRef>,
    },
    Watch(RoomRef),
    Unwatch(RoomRef),
    Rules {
        matching: Option<String>,
    },
    /// `audit [USER|ROOM|PROTECTION] [--limit N]`: the audit trail, newest first.
    Audit {
        about: Option<String>,
        limit: u32,
    },
    /// `NAME [COMMAND ARGS…]`: one of a loaded protection's own commands
    /// (no command: its help). Arguments as typed, except that a matrix.to
    /// link is given as the id it links to.
    Protection {
        name: String,
        command: Option<String>,
        args: Vec<String>,
    },
    /// `plugins`: the component files and what became of each.
    Plugins,
    /// `plugins reload NAME`: compile NAME's file again and swap it in.
    Reload(String),
    /// `protections grant|revoke NAME CAPABILITY`.
    Grant {
        name: String,
        capability: String,
        grant: bool,
    },
}

/// A command and whether the moderator said `--no-confirm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) command: Command,
    pub(crate) no_confirm: bool,
}

/// Why a command could not be read; `Display` is the one-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `protections preview NAME` without `--limit`: events per room.
const DEFAULT_PREVIEW: u32 = 100;

/// Every command word (first and second), for suggestions and help.
pub(crate) const COMMANDS: &[(&str, &str)] = &[
    ("help", "help [command]: what the commands are"),
    ("status", "status: protected rooms, protections, uptime, sync lag"),
    ("rooms", "rooms | rooms add ROOM | rooms remove ROOM: the protected rooms (a space brings its rooms)"),
    (
        "protections",
        "protections | protections enable|disable|show NAME | protections preview NAME [--limit N] | protections config set|add|remove|reset NAME KEY [VALUE] | protections grant|revoke NAME CAPABILITY",
    ),
    ("plugins", "plugins | plugins reload NAME: the plugin files (version, hash, status); load NAME's file again"),
    (
        "ban",
        "ban USER [ROOM] [reason]: ban in one room or every protected room | ban ENTITY LIST [reason]: add a ban rule to a policy list",
    ),
    (
        "unban",
        "unban USER [ROOM]: unban in one room or every protected room; if rules in lists I can edit match, shows what it removes and asks first",
    ),
    ("takedown", "takedown ENTITY LIST [reason]: add a takedown rule (hashed, MSC4205, unless a glob)"),
    ("list", "list create SHORTCODE ALIAS_LOCALPART: create a policy list and watch it"),
    (
        "import",
        "import ROOM LIST: write the room's bans (and the servers its ACL denies) into a policy list, after a preview",
    ),
    ("recover", "recover N: apply recovery option N from `status` (after a preview)"),
    ("restart", "restart: read stored state again and start (leaves safe mode when nothing is wrong)"),
    ("safe", "safe mode: stop protecting and applying policy until `restart`"),
    (
        "kick",
        "kick USER [ROOM] [reason]: kick from one room or every protected room | kick --glob @PATTERN:server [ROOM] [reason]: every joined member the glob matches (moderators and the bot left out)",
    ),
    ("redact", "redact USER|EVENT_PERMALINK [--limit N] [--room ROOM]: remove messages"),
    ("watch", "watch LIST: follow a policy list (alias, ID or matrix.to link); its rules apply"),
    ("unwatch", "unwatch LIST: stop following a policy list"),
    (
        "rules",
        "rules | rules matching ENTITY | rules matching members: the watched lists, the rules matching a user, room or server, or the members of protected rooms a rule matches",
    ),
    (
        "audit",
        "audit [USER|ROOM|PROTECTION] [--limit N]: what the bot did (carried out, refused or failed) and who decided it, newest first",
    ),
];

/// The text after the prefix or mention, if the message is addressed to the bot.
///
/// Accepted: `PREFIX cmd`, `@bot:server cmd`, `@bot:server: cmd`, `Display Name: cmd`.
pub(crate) fn addressed<'a>(
    body: &'a str,
    prefix: &str,
    bot_user: &str,
    display_name: Option<&str>,
) -> Option<&'a str> {
    let body = body.trim_start();
    let mut names = vec![prefix, bot_user];
    if let Some(d) = display_name.filter(|d| !d.is_empty()) {
        names.push(d);
    }
    for name in names {
        if let Some(rest) = body.strip_prefix(name) {
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            // `!gleipnirx` is not `!gleipnir`.
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return Some(rest.trim());
            }
        }
    }
    None
}

/// The short form `!COMMAND …`: the text after a leading `!` followed by a
/// word. Whether the word is one of ours is for [`names_a_command`] to say.
pub(crate) fn short_form(body: &str) -> Option<&str> {
    let rest = body.trim_start().strip_prefix('!')?;
    rest.starts_with(|c: char| !c.is_whitespace() && c != '!').then(|| rest.trim())
}

/// Whether `text` starts with a command word of ours: a built-in command
/// or a loaded protection's name.
pub(crate) fn names_a_command(text: &str, loaded: &[&str]) -> bool {
    let Some(first) = text.split_whitespace().next() else { return false };
    let first = first.to_ascii_lowercase();
    COMMANDS.iter().any(|(name, _)| *name == first) || loaded.contains(&first.as_str())
}

/// Splits on whitespace; "double quotes" group words.
fn tokenize(text: &str) -> Result<Vec<String>, ParseError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    tokens.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if in_quotes {
        return Err(ParseError("a \" is not closed".to_owned()));
    }
    if started {
        tokens.push(current);
    }
    Ok(tokens)
}

/// Reads a command (the text after the prefix or mention).
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with(text, &[])
}

/// Reads a command; `protections` are the names of the loaded protections,
/// whose own commands are `NAME COMMAND ARGS…` (a built-in command of the
/// same name wins).
pub(crate) fn parse_with(text: &str, loaded: &[&str]) -> Result<Parsed, ParseError> {
    let mut tokens = tokenize(text)?;
    let no_confirm = tokens.iter().any(|t| t == "--no-confirm");
    tokens.retain(|t| t != "--no-confirm");
    let words: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let Some((&first, rest)) = words.split_first() else {
        return Ok(Parsed { command: Command::Help { topic: None }, no_confirm });
    };
    let command = match first.to_ascii_lowercase().as_str() {
        "help" => Command::Help { topic: rest.first().map(|t| (*t).to_owned()) },
        "status" => {
            none_left("status", rest)?;
            Command::Status
        }
        "rooms" => match rest {
            [] => Command::Rooms,
            ["add", room] => Command::RoomsAdd(room_ref(room)?),
            ["remove", room] => Command::RoomsRemove(room_ref(room)?),
            [sub, ..] if !matches!(*sub, "add" | "remove") => {
                return Err(unknown_sub("rooms", sub, &["add", "remove"]));
            }
            _ => return Err(usage("rooms")),
        },
        "protections" => protections(rest)?,
        "kick" if rest.first() == Some(&"--glob") => {
            let [_, pattern, more @ ..] = rest else { return Err(usage("kick")) };
            if !gleipnir_policy::glob::is_glob(pattern) || !pattern.starts_with('@') {
                return Err(ParseError(format!(
                    "`{pattern}` is not a user glob (like @spam*:example.org; `*` any run, `?` one character)"
                )));
            }
            let (room, reason_words) = match more.first() {
                Some(r) if looks_like_room(r) => (Some(room_ref(r)?), &more[1..]),
                _ => (None, more),
            };
            let reason = (!reason_words.is_empty()).then(|| reason_words.join(" "));
            Command::KickGlob { pattern: (*pattern).to_owned(), room, reason }
        }
        "ban" | "kick" => {
            let [target, more @ ..] = rest else { return Err(usage(first)) };
            let (room, reason_words) = match more.first() {
                Some(r) if looks_like_room(r) => (Some(room_ref(r)?), &more[1..]),
                _ => (None, more),
            };
            let reason = (!reason_words.is_empty()).then(|| reason_words.join(" "));
            if first == "ban" {
                Command::Ban { entity: policy_entity(target)?, room, reason }
            } else {
                Command::Kick { user: user_ref(target)?, room, reason }
            }
        }
        "unban" => match rest {
            [entity] => Command::Unban { entity: policy_entity(entity)?, room: None },
            [entity, room] => Command::Unban { entity: policy_entity(entity)?, room: Some(room_ref(room)?) },
            _ => return Err(usage("unban")),
        },
        "recover" => match rest {
            [n] => Command::Recover(
                n.parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ParseError(format!("`{n}` is not an option number")))?,
            ),
            _ => return Err(usage("recover")),
        },
        "restart" => {
            none_left("restart", rest)?;
            Command::Restart
        }
        "safe" => match rest {
            ["mode"] => Command::SafeMode,
            _ => return Err(usage("safe")),
        },
        "import" => match rest {
            [room, list] => Command::Import { room: room_ref(room)?, list: (*list).to_owned() },
            _ => return Err(usage("import")),
        },
        "takedown" => {
            let [entity, list, reason @ ..] = rest else { return Err(usage("takedown")) };
            let reason = (!reason.is_empty()).then(|| reason.join(" "));
            Command::Takedown { entity: policy_entity(entity)?, list: (*list).to_owned(), reason }
        }
        "list" => match rest {
            ["create", shortcode, localpart] => {
                let code_ok = !shortcode.is_empty()
                    && shortcode.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
                if !code_ok {
                    return Err(ParseError(format!(
                        "`{shortcode}` is not a shortcode (lower-case letters, digits, - and _)"
                    )));
                }
                let local_ok = !localpart.is_empty()
                    && localpart.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.=/".contains(c));
                if !local_ok {
                    return Err(ParseError(format!(
                        "`{localpart}` is not an alias localpart (lower-case letters, digits, - _ . = /)"
                    )));
                }
                Command::ListCreate { shortcode: (*shortcode).to_owned(), alias_localpart: (*localpart).to_owned() }
            }
            [sub, ..] if *sub != "create" => return Err(unknown_sub("list", sub, &["create"])),
            _ => return Err(usage("list")),
        },
        "redact" => redact(rest)?,
        "watch" | "unwatch" => {
            let [room] = rest else { return Err(usage(first)) };
            if first == "watch" { Command::Watch(room_ref(room)?) } else { Command::Unwatch(room_ref(room)?) }
        }
        "plugins" => match rest {
            [] => Command::Plugins,
            ["reload", name] => Command::Reload(name_ref(name)?),
            [sub, ..] if *sub != "reload" => return Err(unknown_sub("plugins", sub, &["reload"])),
            _ => return Err(usage("plugins")),
        },
        "audit" => audit(rest)?,
        "rules" => match rest {
            [] => Command::Rules { matching: None },
            ["matching", entity] => Command::Rules { matching: Some(entity_ref(entity)) },
            _ => return Err(usage("rules")),
        },
        other if loaded.contains(&other) => Command::Protection {
            name: other.to_owned(),
            command: rest.first().map(|c| c.to_ascii_lowercase()),
            args: rest.iter().skip(1).map(|word| permalink_path(word).unwrap_or_else(|| (*word).to_owned())).collect(),
        },
        other => return Err(unknown(other, loaded)),
    };
    Ok(Parsed { command, no_confirm })
}

const SUBCOMMANDS: &[&str] = &["enable", "disable", "show", "preview", "config", "grant", "revoke"];

fn protections(rest: &[&str]) -> Result<Command, ParseError> {
    Ok(match rest {
        [] => Command::Protections,
        ["enable", name] => Command::Enable(name_ref(name)?),
        ["disable", name] => Command::Disable(name_ref(name)?),
        ["show", name] => Command::Show(name_ref(name)?),
        ["preview", name] => Command::Preview { name: name_ref(name)?, limit: DEFAULT_PREVIEW },
        ["preview", name, "--limit", n] => Command::Preview {
            name: name_ref(name)?,
            limit: n
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ParseError(format!("--limit `{n}` must be a number from 1 to 1000")))?,
        },
        ["config", op_word, name, key, value @ ..] => {
            let op = match *op_word {
                "set" => ConfigOp::Set,
                "add" => ConfigOp::Add,
                "remove" => ConfigOp::Remove,
                "reset" => ConfigOp::Reset,
                other => return Err(unknown_sub("protections config", other, &["set", "add", "remove", "reset"])),
            };
            let value = (!value.is_empty()).then(|| value.join(" "));
            match (op, &value) {
                (ConfigOp::Reset, Some(_)) => {
                    return Err(ParseError("`protections config reset NAME KEY` takes no value".to_owned()));
                }
                (ConfigOp::Set | ConfigOp::Add | ConfigOp::Remove, None) => {
                    return Err(ParseError(format!(
                        "`protections config {op_word} NAME KEY VALUE`: the value is missing"
                    )));
                }
                _ => {}
            }
            Command::Config { op, protection: name_ref(name)?, key: (*key).to_owned(), value }
        }
        [verb @ ("grant" | "revoke"), name, capability] => {
            Command::Grant { name: name_ref(name)?, capability: (*capability).to_owned(), grant: *verb == "grant" }
        }
        [sub, ..] if !SUBCOMMANDS.contains(sub) => return Err(unknown_sub("protections", sub, SUBCOMMANDS)),
        _ => return Err(usage("protections")),
    })
}

/// How many audit entries `audit` shows unless told.
pub(crate) const DEFAULT_AUDIT: u32 = 20;

fn audit(rest: &[&str]) -> Result<Command, ParseError> {
    let mut about = None;
    let mut limit = DEFAULT_AUDIT;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--limit" => {
                let n = rest.get(i + 1).ok_or_else(|| ParseError("--limit needs a number".to_owned()))?;
                limit = n
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ParseError(format!("--limit `{n}` must be a number from 1 to 500")))?;
                i += 2;
            }
            word if about.is_none() => {
                about = Some(entity_ref(word));
                i += 1;
            }
            _ => return Err(usage("audit")),
        }
    }
    Ok(Command::Audit { about, limit })
}

fn redact(rest: &[&str]) -> Result<Command, ParseError> {
    let mut target = None;
    let mut limit = None;
    let mut room = None;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--limit" => {
                let n = rest.get(i + 1).ok_or_else(|| ParseError("--limit needs a number".to_owned()))?;
                limit = Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| ParseError(format!("--limit `{n}` must be a number from 1 to 10000")))?,
                );
                i += 2;
            }
            "--room" => {
                let r = rest.get(i + 1).ok_or_else(|| ParseError("--room needs a room".to_owned()))?;
                room = Some(room_ref(r)?);
                i += 2;
            }
            word if target.is_none() => {
                target = Some(match event_permalink(word) {
                    Some((room, event_id)) => RedactTarget::Event { room, event_id },
                    None => RedactTarget::User(user_ref(word)?),
                });
                i += 1;
            }
            word => return Err(ParseError(format!("unexpected `{word}`; {}", help_line("redact")))),
        }
    }
    let target = target.ok_or_else(|| usage("redact"))?;
    Ok(Command::Redact { target, limit, room })
}

fn none_left(command: &str, rest: &[&str]) -> Result<(), ParseError> {
    match rest.first() {
        None => Ok(()),
        Some(word) => Err(ParseError(format!("`{command}` takes nothing after it (got `{word}`)"))),
    }
}

fn help_line(command: &str) -> &'static str {
    COMMANDS.iter().find(|(name, _)| *name == command).map_or("", |(_, line)| line)
}

fn usage(command: &str) -> ParseError {
    ParseError(format!("usage: {}", help_line(command)))
}

fn unknown(word: &str, protections: &[&str]) -> ParseError {
    let names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).chain(protections.iter().copied()).collect();
    match closest(word, &names) {
        Some(best) => ParseError(format!("unknown command `{word}`; did you mean `{best}`? (`help` lists them all)")),
        None => ParseError(format!("unknown command `{word}`; `help` lists them all")),
    }
}

fn unknown_sub(command: &str, word: &str, options: &[&str]) -> ParseError {
    match closest(word, options) {
        Some(best) => ParseError(format!("unknown `{command} {word}`; did you mean `{command} {best}`?")),
        None => ParseError(format!("unknown `{command} {word}`; expected one of: {}", options.join(", "))),
    }
}

mod refs;

use refs::*;
pub(crate) use refs::{closest, room_ref, via_servers};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
