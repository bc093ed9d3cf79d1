//! The protected rooms: one set, shared by the bot and by the queries
//! protections make (a clone is the same set), so the two never disagree.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Clone, Default)]
pub(crate) struct Protected(Arc<RwLock<BTreeSet<String>>>);

impl Protected {
    /// A set holding `rooms` (for tests and fixtures).
    #[cfg(test)]
    pub(crate) fn of<'a>(rooms: impl IntoIterator<Item = &'a str>) -> Protected {
        Protected(Arc::new(RwLock::new(rooms.into_iter().map(str::to_owned).collect())))
    }

    // A panic while the lock was held cannot leave the set half-changed
    // (every change is one call on a `BTreeSet`): the poison is ignored.
    fn read(&self) -> RwLockReadGuard<'_, BTreeSet<String>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeSet<String>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn contains(&self, room: &str) -> bool {
        self.read().contains(room)
    }

    /// Adds `room`; false when it was protected already.
    pub(crate) fn insert(&self, room: &str) -> bool {
        self.write().insert(room.to_owned())
    }

    /// Removes `room`; false when it was not protected.
    pub(crate) fn remove(&self, room: &str) -> bool {
        self.write().remove(room)
    }

    pub(crate) fn clear(&self) {
        self.write().clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The rooms now, in order.
    pub(crate) fn rooms(&self) -> Vec<String> {
        self.read().iter().cloned().collect()
    }

    /// The first room (in order) for which `f` holds.
    pub(crate) fn find(&self, mut f: impl FnMut(&str) -> bool) -> Option<String> {
        self.read().iter().find(|room| f(room)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_the_same_set() {
        let bot = Protected::default();
        let queries = bot.clone();
        assert!(bot.insert("!b") && bot.insert("!a") && !bot.insert("!a"));
        assert_eq!(queries.rooms(), ["!a", "!b"]);
        assert!(queries.remove("!a") && !bot.contains("!a"));
        assert_eq!(bot.find(|r| r.starts_with("!b")).as_deref(), Some("!b"));
        bot.clear();
        assert!(queries.is_empty());
        assert_eq!(queries.len(), 0);
    }
}
