//! Text for protections: durations said the way people say them, and
//! text compared the way people read it: folded so that look-alike letters,
//! invisible characters, accents, styled alphabets and case do not hide a
//! word (`fold`), whole-word phrases, HTML read as rendered, and globs.

use std::time::Duration;

mod fold;

pub use fold::{contains_phrase, fold, strip_html};

/// Whether `text` matches `pattern`, where `*` is any run of characters and
/// `?` one character (as policy rules and server lists write them).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `d` in the largest whole unit: "30 minutes", "1 hour", "45 seconds",
/// "2 days". A duration that is no whole number of a larger unit is said in
/// the next smaller one ("90 seconds").
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s >= 60 && s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("*.evil.example", "matrix.evil.example"));
        assert!(!glob("*.evil.example", "evil.example"));
        assert!(glob("evil?.example", "evil1.example"));
        assert!(glob("*", ""));
        assert!(!glob("good.example", "good.example.evil"));
        assert!(glob("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn durations_are_said_in_their_largest_whole_unit() {
        let said = |s| duration(Duration::from_secs(s));
        assert_eq!(said(30 * 60), "30 minutes");
        assert_eq!(said(3600), "1 hour");
        assert_eq!(said(90), "90 seconds");
        assert_eq!(said(2 * 86_400), "2 days");
        assert_eq!(said(1), "1 second");
        assert_eq!(said(0), "0 seconds");
    }
}
