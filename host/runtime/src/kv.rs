//! The small key-value store each protection gets, bounded so a protection
//! cannot grow the host's memory without limit.

use std::collections::BTreeMap;

use crate::KvError;

/// Bounds of one protection's store.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    pub max_key_bytes: u32,
    pub max_value_bytes: u32,
    /// Keys plus values, in bytes.
    pub max_total_bytes: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits { max_key_bytes: 256, max_value_bytes: 64 * 1024, max_total_bytes: 1024 * 1024 }
    }
}

#[derive(Debug, Default, Clone)]
pub struct KvStore {
    entries: BTreeMap<String, Vec<u8>>,
    total: u64,
    limits: KvLimits,
}

impl KvStore {
    pub fn new(limits: KvLimits) -> Self {
        KvStore { entries: BTreeMap::new(), total: 0, limits }
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        if key.len() > self.limits.max_key_bytes as usize {
            return Err(KvError::KeyTooLong(self.limits.max_key_bytes));
        }
        if value.len() > self.limits.max_value_bytes as usize {
            return Err(KvError::ValueTooLarge(self.limits.max_value_bytes));
        }
        let old = self.entries.get(&key).map_or(0, |v| (key.len() + v.len()) as u64);
        let new = (key.len() + value.len()) as u64;
        if self.total - old + new > self.limits.max_total_bytes {
            return Err(KvError::QuotaExceeded(self.limits.max_total_bytes));
        }
        self.total = self.total - old + new;
        self.entries.insert(key, value);
        Ok(())
    }

    pub fn delete(&mut self, key: &str) {
        if let Some(v) = self.entries.remove(key) {
            self.total -= (key.len() + v.len()) as u64;
        }
    }

    /// Bytes used by keys and values.
    pub fn used_bytes(&self) -> u64 {
        self.total
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_keys_and_values_and_frees_on_overwrite() {
        let mut kv = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8, max_total_bytes: 12 });
        assert_eq!(kv.set("aaaaa".into(), vec![]), Err(KvError::KeyTooLong(4)));
        assert_eq!(kv.set("a".into(), vec![0; 9]), Err(KvError::ValueTooLarge(8)));
        kv.set("a".into(), vec![0; 8]).unwrap();
        assert_eq!(kv.set("b".into(), vec![0; 8]), Err(KvError::QuotaExceeded(12)));
        kv.set("a".into(), vec![0; 2]).unwrap();
        kv.set("b".into(), vec![0; 8]).unwrap();
        assert_eq!(kv.used_bytes(), 12);
        kv.delete("b");
        assert_eq!(kv.used_bytes(), 3);
        assert_eq!(kv.get("a"), Some(&[0u8, 0][..]));
    }
}
