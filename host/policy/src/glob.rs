//! Matrix globs: `*` matches any run of characters (also none), `?` exactly
//! one character, everything else itself; the whole entity must match
//! (anchored at both ends). There is no escape and no character class.

/// A glob entity from a policy rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: Box<str>,
}

impl Glob {
    /// `None` when `pattern` has no wildcard (then it is a literal).
    pub fn new(pattern: &str) -> Option<Glob> {
        is_glob(pattern).then(|| Glob { pattern: pattern.into() })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn matches(&self, text: &str) -> bool {
        matches_text(&self.pattern, text)
    }

    pub fn key(&self) -> &str {
        key(&self.pattern)
    }
}

/// Whether the glob `pattern` matches all of `text`.
pub fn matches_text(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes())
}

/// The longest run of characters without a wildcard: every text the glob
/// matches contains it, so it can index the glob. Empty for `*`, `??`.
pub fn key(pattern: &str) -> &str {
    pattern.split(['*', '?']).max_by_key(|piece| piece.len()).unwrap_or("")
}

/// Whether `text` holds a wildcard.
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Length of the UTF-8 character starting with `byte`.
fn char_len(byte: u8) -> usize {
    match byte {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Wildcard matching in linear time for typical patterns: on a mismatch,
/// only the last `*` is retried one character further.
fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Pattern position after the last `*`, and where in the text it resumes.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    t += char_len(text[t]);
                    p += 1;
                    continue;
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((after, from)) => {
                let next = from + char_len(text[from]);
                star = Some((after, next));
                p = after;
                t = next;
            }
            None => return false,
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len() && t == text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn wildcards_as_the_spec_says() {
        let cases = [
            ("@*:evil.com", "@spam:evil.com", true),
            ("@*:evil.com", "@spam:evil.com.au", false),
            ("@*:evil.com", "@spam:notevil.com", false),
            ("*.evil.com", "a.b.evil.com", true),
            ("*.evil.com", "evil.com", false),
            ("evil.co?", "evil.com", true),
            ("evil.co?", "evil.co", false),
            ("evil.co?", "evil.comm", false),
            ("*", "", true),
            ("*", "anything at all", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abcabc", true),
            ("a*b*c", "acb", false),
            ("*aab", "aaab", true),
            ("@sp?m*:*", "@spæm1:x", true),
            ("?", "é", true),
            ("??", "é", false),
            ("@*:*", "@a:b", true),
            ("@*:*", "#a:b", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob(pattern).matches(text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn a_literal_is_not_a_glob() {
        assert!(Glob::new("@user:server").is_none());
        assert!(is_glob("@u*"));
    }

    #[test]
    fn the_key_is_the_longest_literal_piece() {
        assert_eq!(glob("@*:evil.example").key(), ":evil.example");
        assert_eq!(glob("@spammer*:*").key(), "@spammer");
        assert_eq!(glob("*").key(), "");
        assert_eq!(glob("??").key(), "");
    }
}
