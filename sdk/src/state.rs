//! State carried across a hot swap, tagged with its format, so the next
//! version of a protection knows what it is reading and says what it drops.
//!
//! ```
//! use gleipnir_sdk::state;
//! let saved = state::tagged("counter-v2", b"41");
//! match state::untag(&saved) {
//!     (Some("counter-v2"), body) => assert_eq!(body, b"41"),
//!     (Some(other), _) => panic!("a newer format: {other}"),
//!     (None, _) => panic!("state from before formats were tagged"),
//! }
//! ```

/// Marks the start of a tagged snapshot: no text a protection wrote before
/// tagging began starts with it.
const MAGIC: &[u8] = b"\x00gleipnir-state\x00";

/// `body` tagged with `format` (a name and version, e.g. `flooding-v2`).
pub fn tagged(format: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + format.len() + 1 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The format and the body of a snapshot; no format for state written
/// without [`tagged`] (by an earlier version of the protection).
pub fn untag(state: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(rest) = state.strip_prefix(MAGIC) else { return (None, state) };
    let Some(end) = rest.iter().position(|b| *b == b'\n') else { return (None, state) };
    match std::str::from_utf8(&rest[..end]) {
        Ok(format) => (Some(format), &rest[end + 1..]),
        Err(_) => (None, state),
    }
}

/// The body of a snapshot in one of `formats`; otherwise an error naming
/// what was found, for [`Protection::restore`](crate::Protection::restore)
/// to return (the host says it, and the protection starts without the state).
pub fn expect<'a>(state: &'a [u8], formats: &[&str]) -> Result<(&'a str, &'a [u8]), String> {
    match untag(state) {
        (Some(format), body) if formats.contains(&format) => Ok((format, body)),
        (Some(format), _) => {
            Err(format!("state in format `{format}`, which this version cannot read (it reads {})", formats.join(", ")))
        }
        (None, _) => {
            Err(format!("state without a format tag, which this version cannot read (it reads {})", formats.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_state_reads_back_and_an_untagged_one_is_named() {
        let saved = tagged("x-v1", b"body\nwith lines");
        assert_eq!(untag(&saved), (Some("x-v1"), &b"body\nwith lines"[..]));
        assert_eq!(untag(b"x-v1\nold"), (None, &b"x-v1\nold"[..]));
        assert_eq!(expect(&saved, &["x-v0", "x-v1"]), Ok(("x-v1", &b"body\nwith lines"[..])));
        assert!(expect(&saved, &["x-v2"]).unwrap_err().contains("`x-v1`"));
        assert!(expect(b"raw", &["x-v2"]).unwrap_err().contains("without a format tag"));
    }
}
