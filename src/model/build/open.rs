//! The open sessions, by (tenant, session identity): a hash table whose
//! slot for a key can be fetched ahead of use.
//!
//! The merging thread looks up the open session of every request it
//! models. With a `HashMap` that probe missed the cache twice (control
//! bytes, then the bucket) and took half of `add_prepared`'s samples in
//! `perf`, and a `HashMap` cannot say where a key lives before it is looked
//! up. Here a key's place is worked out from the key alone (the session
//! identity is a hash the reader threads made already, mixed with the
//! tenant id), so the modeller can ask for it a few requests ahead
//! ([`OpenSessions::prefetch`]). Linear probing at most half full keeps
//! most keys in the slot they hash to; removal shifts the keys after a
//! hole back, so no tombstones build up.

use super::tenant::Open;
use crate::capture::prefetch;

/// (tenant id, session identity hash)
pub(super) type Key = (u32, u64);

const MIN_BITS: u32 = 10;

pub(super) struct OpenSessions {
    slots: Vec<Option<(Key, Open)>>,
    /// `slots.len()` is `1 << bits`.
    bits: u32,
    len: usize,
}

impl Default for OpenSessions {
    fn default() -> Self {
        OpenSessions::with_bits(MIN_BITS)
    }
}

impl OpenSessions {
    fn with_bits(bits: u32) -> Self {
        OpenSessions {
            slots: std::iter::repeat_with(|| None).take(1 << bits).collect(),
            bits,
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a key starts probing at. The identity is a hash already;
    /// the tenant is mixed in so that one client seen under many tenants
    /// (a monitor calling every tenant's health check) does not pile its
    /// keys onto one run of slots.
    fn home(&self, k: Key) -> usize {
        let h = k.1 ^ u64::from(k.0).wrapping_mul(0xff51_afd7_ed55_8ccd);
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize
    }

    fn find(&self, k: Key) -> Option<usize> {
        let mut i = self.home(k);
        loop {
            match &self.slots[i] {
                None => return None,
                Some((key, _)) if *key == k => return Some(i),
                Some(_) => i = (i + 1) & self.mask(),
            }
        }
    }

    /// Asks the CPU to fetch where `k` lives.
    pub fn prefetch(&self, k: Key) {
        prefetch(std::ptr::from_ref(&self.slots[self.home(k)]).cast());
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn contains_key(&self, k: Key) -> bool {
        self.find(k).is_some()
    }

    pub fn get(&self, k: Key) -> Option<&Open> {
        self.find(k)
            .and_then(|i| self.slots[i].as_ref().map(|(_, o)| o))
    }

    pub fn get_mut(&mut self, k: Key) -> Option<&mut Open> {
        self.find(k)
            .and_then(|i| self.slots[i].as_mut().map(|(_, o)| o))
    }

    /// Inserts or replaces; returns the session replaced.
    pub fn insert(&mut self, k: Key, open: Open) -> Option<Open> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut i = self.home(k);
        loop {
            match &mut self.slots[i] {
                slot @ None => {
                    *slot = Some((k, open));
                    self.len += 1;
                    return None;
                }
                Some((key, old)) if *key == k => return Some(std::mem::replace(old, open)),
                Some(_) => i = (i + 1) & self.mask(),
            }
        }
    }

    pub fn remove(&mut self, k: Key) -> Option<Open> {
        let mut hole = self.find(k)?;
        let (_, open) = self.slots[hole].take()?;
        self.len -= 1;
        // Keys after the hole whose probe passed through it move back into
        // it, so every key stays reachable from its home without gaps.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some((key, _)) = &self.slots[j] else {
                break;
            };
            let home = self.home(*key);
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        Some(open)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Open)> {
        self.slots.iter().flatten().map(|(k, o)| (k, o))
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, OpenSessions::with_bits(self.bits + 1));
        for (k, o) in old.slots.into_iter().flatten() {
            self.insert(k, o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use std::collections::HashMap;

    fn open(n: u32) -> Open {
        Open {
            last_start: Timestamp::default(),
            last_end: Timestamp::default(),
            last_endpoint: n,
            node: n,
            steps: n,
            truncated: false,
        }
    }

    /// Random inserts, replacements and removals, checked against a
    /// `HashMap`, with enough keys that the table grows several times and
    /// runs of occupied slots form for removals to shift.
    #[test]
    fn behaves_like_a_hash_map() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = OpenSessions::default();
        let mut m: HashMap<Key, u32> = HashMap::new();
        for round in 0..200_000u32 {
            let k = (
                rng.random_range(0..4u32),
                rng.random_range(0..6_000u64) * 0x1_0000_0001,
            );
            match rng.random_range(0..10) {
                0..=4 => {
                    let had = t.insert(k, open(round)).map(|o| o.steps);
                    assert_eq!(had, m.insert(k, round), "insert {k:?}");
                }
                5..=7 => {
                    let had = t.remove(k).map(|o| o.steps);
                    assert_eq!(had, m.remove(&k), "remove {k:?}");
                }
                _ => {
                    assert_eq!(t.get(k).map(|o| o.steps), m.get(&k).copied(), "get {k:?}");
                    assert_eq!(t.contains_key(k), m.contains_key(&k));
                }
            }
            assert_eq!(t.len(), m.len());
        }
        assert!(t.bits > MIN_BITS, "the table grew");
        let mut all: Vec<(Key, u32)> = t.iter().map(|(k, o)| (*k, o.steps)).collect();
        let mut want: Vec<(Key, u32)> = m.into_iter().collect();
        all.sort_unstable();
        want.sort_unstable();
        assert_eq!(all, want);
    }

    /// Keys that share a home slot stay reachable as the others around
    /// them are removed.
    #[test]
    fn keys_sharing_a_slot_survive_removals_around_them() {
        let mut t = OpenSessions::default();
        let home = t.home((0, 0));
        let keys: Vec<Key> = (0..4u32)
            .flat_map(|tid| (0..200_000u64).map(move |s| (tid, s)))
            .filter(|&k| t.home(k) == home)
            .take(40)
            .collect();
        assert_eq!(keys.len(), 40);
        for (n, &k) in keys.iter().enumerate() {
            t.insert(k, open(n as u32));
        }
        for n in (0..40).step_by(3) {
            assert_eq!(t.remove(keys[n]).map(|o| o.steps), Some(n as u32));
        }
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(
                t.get_mut(k).map(|o| o.steps),
                (n % 3 != 0).then_some(n as u32),
                "key {k:?}"
            );
        }
    }

    /// One identity under many tenants is spread over the table.
    #[test]
    fn one_client_under_many_tenants_is_spread_out() {
        let t = OpenSessions::default();
        let homes: std::collections::HashSet<usize> =
            (0..100).map(|tid| t.home((tid, 42))).collect();
        assert!(homes.len() > 90, "{} distinct slots", homes.len());
    }
}
