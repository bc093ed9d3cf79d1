//! Contract tests of `counter-next` (version 2 of `counter`).

use super::*;

pub(super) fn covered() {}

#[test]
fn is_version_two_of_counter() {
    let p = load(plugins::COUNTER_NEXT);
    assert_eq!((p.name(), p.descriptor().version.as_str()), ("counter", "2.0.0"));
    let keys: Vec<&str> = p.descriptor().settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["label", "fresh"]);
}
