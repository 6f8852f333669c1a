//! [`UnitMap`]: values per unit (asset, partition key), stored per asset so
//! that a lookup takes two `&str`s and allocates nothing, and an asset's
//! partitions can be fetched once and then looked up by key alone. Status
//! over hundreds of thousands of partitions is mostly such lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A unit of materialization: an asset and one of its partition keys
/// (`""` when the asset is unpartitioned).
pub type Unit = (String, String);

/// The hasher of the engine's hot maps: keys are short trusted strings
/// (asset names, partition keys), hashed hundreds of thousands of times per
/// status, where std's SipHash showed in profiles.
type Fast = foldhash::fast::RandomState;

/// A `HashMap` with the [`Fast`] hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, Fast>;

/// A `HashSet` with the [`Fast`] hasher.
pub(crate) type FastSet<T> = HashSet<T, Fast>;

/// One asset's values by partition key. Keys are shared (see
/// [`SharedTexts`]): hundreds of assets have the same 365 keys.
pub type KeyMap<V> = HashMap<Arc<str>, V, Fast>;

/// One shared copy of each distinct text (partition keys, run ids, code
/// versions) among hundreds of thousands of records.
#[derive(Debug, Default)]
pub struct SharedTexts {
    texts: HashSet<Arc<str>, Fast>,
}

impl SharedTexts {
    /// The shared copy of `text`.
    pub fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(held) = self.texts.get(text) {
            return Arc::clone(held);
        }
        let held: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&held));
        held
    }
}

/// A map from (asset, partition key) to `V`.
#[derive(Debug, Clone)]
pub struct UnitMap<V> {
    by_asset: HashMap<String, KeyMap<V>, Fast>,
    len: usize,
}

impl<V> Default for UnitMap<V> {
    fn default() -> Self {
        UnitMap {
            by_asset: HashMap::default(),
            len: 0,
        }
    }
}

impl<V> UnitMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of one unit.
    pub fn get(&self, asset: &str, key: &str) -> Option<&V> {
        self.by_asset.get(asset)?.get(key)
    }

    /// The value of one unit given as a pair.
    pub fn get_unit(&self, unit: &Unit) -> Option<&V> {
        self.get(&unit.0, &unit.1)
    }

    /// Whether the unit has a value.
    pub fn contains(&self, asset: &str, key: &str) -> bool {
        self.get(asset, key).is_some()
    }

    /// Every partition of one asset that has a value, by key.
    pub fn of(&self, asset: &str) -> Option<&KeyMap<V>> {
        self.by_asset.get(asset)
    }

    /// Sets the value of a unit, returning the previous one.
    pub fn insert(&mut self, asset: &str, key: impl Into<Arc<str>>, value: V) -> Option<V> {
        let inner = match self.by_asset.get_mut(asset) {
            Some(inner) => inner,
            None => self.by_asset.entry(asset.to_owned()).or_default(),
        };
        let previous = inner.insert(key.into(), value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no units.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every (asset, key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &V)> {
        self.by_asset.iter().flat_map(|(asset, inner)| {
            inner
                .iter()
                .map(move |(key, v)| (asset.as_str(), key.as_ref(), v))
        })
    }
}

impl<V> FromIterator<(Unit, V)> for UnitMap<V> {
    fn from_iter<I: IntoIterator<Item = (Unit, V)>>(iter: I) -> Self {
        let mut map = UnitMap::new();
        for ((asset, key), v) in iter {
            map.insert(&asset, key, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_asset_and_key_and_counts_distinct_units() {
        let mut m: UnitMap<u32> = [
            (("a".to_owned(), "2024-01-01".to_owned()), 1),
            (("a".to_owned(), "2024-01-02".to_owned()), 2),
            (("b".to_owned(), String::new()), 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("a", "2024-01-02"), Some(&2));
        assert_eq!(m.get("b", ""), Some(&3));
        assert_eq!(m.get("b", "2024-01-01"), None);
        assert_eq!(m.get("c", ""), None);
        assert_eq!(m.insert("a", "2024-01-01".to_owned(), 10), Some(1));
        assert_eq!(m.len(), 3);
        m.insert("c", String::new(), 4);
        assert_eq!(m.len(), 4);
        assert_eq!(m.of("a").map(KeyMap::len), Some(2));
        let mut shared = SharedTexts::default();
        let (x, y) = (shared.get("2024-01-01"), shared.get("2024-01-01"));
        assert!(Arc::ptr_eq(&x, &y));
        assert!(!Arc::ptr_eq(&x, &shared.get("2024-01-02")));
        let mut all: Vec<(&str, &str, &u32)> = m.iter().collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("a", "2024-01-01", &10),
                ("a", "2024-01-02", &2),
                ("b", "", &3),
                ("c", "", &4)
            ]
        );
    }
}
