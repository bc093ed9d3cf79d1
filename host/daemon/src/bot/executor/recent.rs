//! A bounded map of recent event ids, for the executor's dedupe.

use std::collections::{HashMap, VecDeque};

/// A bounded map of recent event ids: the oldest are forgotten first.
pub(super) struct Recent<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<V> Recent<V> {
    const CAPACITY: usize = 50_000;

    /// Inserts unless present; false when it was.
    pub(super) fn insert(&mut self, id: String, value: V) -> bool {
        if self.map.contains_key(&id) {
            return false;
        }
        if self.order.len() == Self::CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.map.insert(id, value);
        true
    }

    pub(super) fn get(&self, id: &str) -> Option<&V> {
        self.map.get(id)
    }

    /// Forgets `id` (its place in the order goes when it comes up).
    pub(super) fn remove(&mut self, id: &str) {
        self.map.remove(id);
    }
}
