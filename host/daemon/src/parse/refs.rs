//! Words that name things: rooms (ids, aliases, matrix.to links), users,
//! events, policy entities; and the closest known word to a mistyped one.

use super::{ParseError, RoomRef};

/// The option nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(word: &str, options: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let length = word.chars().count();
    options
        .iter()
        .filter_map(|o| {
            let near = 2.max(o.len() / 3);
            // The distance is at least the difference in length: a word that
            // cannot be near is not compared (that takes time in its length
            // times the option's, and anyone may send a long word).
            if length.abs_diff(o.chars().count()) > near && !o.starts_with(word.as_str()) {
                return None;
            }
            let d = distance(&word, o);
            (d <= near || o.starts_with(word.as_str())).then_some((d, *o))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

pub(super) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

pub(super) fn name_ref(name: &str) -> Result<String, ParseError> {
    if gleipnir_runtime::settings::is_kebab(name) {
        Ok(name.to_owned())
    } else {
        Err(ParseError(format!("`{name}` is not a protection name (lower-case, like `flooding`)")))
    }
}

pub(super) fn looks_like_room(word: &str) -> bool {
    word.starts_with('!')
        || word.starts_with('#')
        || word.starts_with("https://matrix.to/#/!")
        || word.starts_with("https://matrix.to/#/#")
}

/// The part of a matrix.to permalink after `#/`, without the query.
/// The `via` servers of a matrix.to permalink (`?via=a&via=b`), which a
/// join needs for a room this homeserver is not in.
pub(crate) fn via_servers(word: &str) -> Vec<String> {
    let Some(rest) = word.strip_prefix("https://matrix.to/#/") else { return Vec::new() };
    let Some((_, query)) = rest.split_once('?') else { return Vec::new() };
    query.split('&').filter_map(|pair| pair.strip_prefix("via=")).map(percent_decode).collect()
}

pub(super) fn permalink_path(word: &str) -> Option<String> {
    let rest = word.strip_prefix("https://matrix.to/#/")?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(percent_decode(path))
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn room_ref(word: &str) -> Result<RoomRef, ParseError> {
    let text = permalink_path(word).unwrap_or_else(|| word.to_owned());
    if text.starts_with('!') && gleipnir_runtime::event::check_room_id(&text).is_ok() {
        Ok(RoomRef::Id(text))
    } else if text.strip_prefix('#').is_some_and(|r| r.contains(':') && !r.starts_with(':')) {
        Ok(RoomRef::Alias(text))
    } else {
        Err(ParseError(format!(
            "`{word}` is not a room (an id like !abc, an alias like #room:server, or a matrix.to link)"
        )))
    }
}

/// What a policy rule can name: a user, a room (id or alias), a server, or a
/// glob of one of them.
pub(super) fn policy_entity(word: &str) -> Result<String, ParseError> {
    let text = entity_ref(word);
    let glob = text.contains(['*', '?']);
    let ok = match text.as_bytes().first() {
        Some(b'@') => glob || gleipnir_runtime::event::check_user_id(&text).is_ok(),
        Some(b'!' | b'#') => text.len() > 1,
        Some(_) => {
            !text.contains(char::is_whitespace)
                && (glob || text.contains(['.', ':']) || text == "localhost")
                && !text.starts_with("http")
        }
        None => false,
    };
    if ok {
        Ok(text)
    } else {
        Err(ParseError(format!(
            "`{word}` is not a user, room or server (e.g. @user:server, #room:server, evil.example, or a glob like @*:evil.example)"
        )))
    }
}

/// A user, room or server as written, with matrix.to links unwrapped.
pub(super) fn entity_ref(word: &str) -> String {
    permalink_path(word).unwrap_or_else(|| word.to_owned())
}

pub(super) fn user_ref(word: &str) -> Result<String, ParseError> {
    let text = permalink_path(word).unwrap_or_else(|| word.to_owned());
    gleipnir_runtime::event::check_user_id(&text)
        .map_err(|_| ParseError(format!("`{word}` is not a user (an id like @user:server, or a matrix.to link)")))?;
    Ok(text)
}

/// `https://matrix.to/#/!room/$event?via=…` → the room and the event.
pub(super) fn event_permalink(word: &str) -> Option<(RoomRef, String)> {
    let path = permalink_path(word)?;
    let (room, event) = path.split_once('/')?;
    if !event.starts_with('$') {
        return None;
    }
    Some((room_ref(room).ok()?, event.to_owned()))
}
