//! Words for moderators: durations said the way people say them.

use std::time::Duration;

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
