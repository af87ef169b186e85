//! The key space by prefix, from a bounded sample: `SCAN` until
//! [`SampleOptions::max_keys`] keys or the time budget, `MEMORY USAGE` of
//! each sampled key (pipelined, [`MEMORY_BATCH`] a round trip), keys
//! grouped by their text up to the first separator, and keys and bytes
//! extrapolated to the node's `DBSIZE`. A page must say it is a sample
//! ([`KeyspaceSample::is_sample`]): `SCAN` order follows Redis's hash
//! table, which is close to random but not a guarantee, and a prefix with
//! a few huge keys may be missed or over-counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{RedisError, Value};
use serde::Serialize;

use super::slowlog::printable;

/// `MEMORY USAGE` commands per pipeline.
pub const MEMORY_BATCH: usize = 100;

/// Longest prefix shown, in characters.
pub const MAX_PREFIX_CHARS: usize = 64;

/// How much of the key space one read samples.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Most keys measured per node.
    pub max_keys: usize,
    /// `COUNT` of each `SCAN` (how many hash-table slots Redis looks at
    /// per call, not an exact number of keys).
    pub scan_count: usize,
    /// Time after which no further `SCAN` or `MEMORY USAGE` batch starts
    /// on a node (one batch in flight may end after it).
    pub budget: Duration,
    /// A key's prefix is its text up to the first of this byte.
    pub separator: u8,
    /// Groups listed by size; the rest is summed as "other".
    pub top: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            max_keys: 1000,
            scan_count: 250,
            budget: Duration::from_millis(250),
            separator: b':',
            top: 20,
        }
    }
}

/// What a group of keys is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupKind {
    /// Keys starting with `prefix` and the separator.
    Prefix,
    /// Keys without the separator.
    NoSeparator,
    /// Every group beyond the top ones.
    Other,
}

/// One prefix's share of the key space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixGroup {
    /// The prefix, printable and cut to [`MAX_PREFIX_CHARS`]; empty for
    /// [`GroupKind::NoSeparator`] and [`GroupKind::Other`].
    pub prefix: String,
    pub kind: GroupKind,
    /// Keys of the sample in the group.
    pub sampled_keys: u64,
    /// Their `MEMORY USAGE` summed.
    pub sampled_bytes: u64,
    /// Keys extrapolated to the node's (or the cluster's) size.
    pub estimated_keys: u64,
    /// Bytes extrapolated likewise.
    pub estimated_bytes: u64,
}

/// One node's key space, sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyspaceSample {
    /// `DBSIZE` when the sample began.
    pub db_keys: u64,
    /// Keys measured.
    pub sampled: u64,
    /// True unless every key was measured: figures are estimates.
    pub is_sample: bool,
    /// The time budget ran out before the key limit was reached.
    pub budget_exhausted: bool,
    /// The biggest groups by estimated bytes, then "other".
    pub groups: Vec<PrefixGroup>,
}

/// The keys and bytes seen per group on one node, before trimming.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub db_keys: u64,
    pub sampled: u64,
    /// Every key of the node was measured.
    pub complete: bool,
    pub budget_exhausted: bool,
    /// (kind, prefix) → (keys, bytes).
    groups: HashMap<(GroupKind, String), (u64, u64)>,
}

impl Tally {
    /// Counts `key` of `bytes` in its group.
    pub fn add(&mut self, key: &[u8], bytes: u64, separator: u8) {
        let group = match key.iter().position(|&b| b == separator) {
            Some(end) => (
                GroupKind::Prefix,
                printable(&key[..end], MAX_PREFIX_CHARS).0,
            ),
            None => (GroupKind::NoSeparator, String::new()),
        };
        let entry = self.groups.entry(group).or_default();
        entry.0 += 1;
        entry.1 += bytes;
        self.sampled += 1;
    }

    /// How many keys of the node one sampled key stands for.
    fn factor(&self) -> f64 {
        if self.sampled == 0 || self.complete {
            1.0
        } else {
            self.db_keys as f64 / self.sampled as f64
        }
    }

    /// Each group with its estimates.
    fn estimated(&self) -> impl Iterator<Item = PrefixGroup> + '_ {
        let factor = self.factor();
        self.groups
            .iter()
            .map(move |((kind, prefix), &(keys, bytes))| PrefixGroup {
                prefix: prefix.clone(),
                kind: *kind,
                sampled_keys: keys,
                sampled_bytes: bytes,
                estimated_keys: scale(keys, factor),
                estimated_bytes: scale(bytes, factor),
            })
    }

    /// The sample as a node shows it: the `top` groups and "other".
    pub fn sample(&self, top: usize) -> KeyspaceSample {
        KeyspaceSample {
            db_keys: self.db_keys,
            sampled: self.sampled,
            is_sample: !self.complete,
            budget_exhausted: self.budget_exhausted,
            groups: trim(self.estimated().collect(), top),
        }
    }
}

fn scale(n: u64, factor: f64) -> u64 {
    (n as f64 * factor).round() as u64
}

/// The groups of several nodes (a cluster's masters) added up, each
/// node's estimate to its own size, then trimmed to `top`.
pub(crate) fn merged(tallies: &[&Tally], top: usize) -> Vec<PrefixGroup> {
    let mut sum: HashMap<(GroupKind, String), PrefixGroup> = HashMap::new();
    for group in tallies.iter().flat_map(|t| t.estimated()) {
        let entry = sum
            .entry((group.kind, group.prefix.clone()))
            .or_insert(PrefixGroup {
                sampled_keys: 0,
                sampled_bytes: 0,
                estimated_keys: 0,
                estimated_bytes: 0,
                ..group.clone()
            });
        entry.sampled_keys += group.sampled_keys;
        entry.sampled_bytes += group.sampled_bytes;
        entry.estimated_keys += group.estimated_keys;
        entry.estimated_bytes += group.estimated_bytes;
    }
    trim(sum.into_values().collect(), top)
}

/// Biggest first (estimated bytes, then keys, then prefix); beyond `top`,
/// one "other" group.
fn trim(mut groups: Vec<PrefixGroup>, top: usize) -> Vec<PrefixGroup> {
    groups.sort_by(|a, b| {
        b.estimated_bytes
            .cmp(&a.estimated_bytes)
            .then(b.estimated_keys.cmp(&a.estimated_keys))
            .then_with(|| (a.kind, &a.prefix).cmp(&(b.kind, &b.prefix)))
    });
    if groups.len() <= top {
        return groups;
    }
    let rest = groups.split_off(top);
    let mut other = PrefixGroup {
        prefix: String::new(),
        kind: GroupKind::Other,
        sampled_keys: 0,
        sampled_bytes: 0,
        estimated_keys: 0,
        estimated_bytes: 0,
    };
    for group in rest {
        other.sampled_keys += group.sampled_keys;
        other.sampled_bytes += group.sampled_bytes;
        other.estimated_keys += group.estimated_keys;
        other.estimated_bytes += group.estimated_bytes;
    }
    groups.push(other);
    groups
}

/// Samples the key space of the node `conn` reaches (its current
/// database): one `DBSIZE`, `SCAN`s until `max_keys` keys or the budget,
/// and `MEMORY USAGE` of each key in pipelines of [`MEMORY_BATCH`]. A key
/// gone in between is left out. A refused command fails the sample.
pub(crate) async fn sample<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    options: &SampleOptions,
) -> Result<Tally, RedisError> {
    let started = Instant::now();
    let over_budget = || started.elapsed() >= options.budget;
    let db_keys: u64 = redis::cmd("DBSIZE").query_async(conn).await?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor: u64 = 0;
    let mut walked = false;
    let mut budget_exhausted = false;
    while keys.len() < options.max_keys {
        if over_budget() {
            budget_exhausted = true;
            break;
        }
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(options.scan_count.max(1))
            .query_async(conn)
            .await?;
        let room = options.max_keys - keys.len();
        keys.extend(batch.into_iter().take(room));
        if next == 0 {
            walked = true;
            break;
        }
        cursor = next;
    }
    // SCAN may return a key twice (a rehash during the walk).
    keys.sort_unstable();
    keys.dedup();
    let mut tally = Tally {
        db_keys,
        ..Tally::default()
    };
    let mut measured_all = true;
    for (i, chunk) in keys.chunks(MEMORY_BATCH).enumerate() {
        if i > 0 && over_budget() {
            budget_exhausted = true;
            measured_all = false;
            break;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for key in chunk {
            pipe.cmd("MEMORY").arg("USAGE").arg(key.as_slice());
        }
        let answers: Vec<Value> = pipe.query_async(conn).await?;
        for (key, answer) in chunk.iter().zip(answers) {
            match answer {
                Value::Int(bytes) => {
                    tally.add(key, u64::try_from(bytes).unwrap_or(0), options.separator)
                }
                Value::ServerError(e) => return Err(e.into()),
                // Gone since the scan.
                _ => {}
            }
        }
    }
    tally.complete = walked && measured_all;
    tally.budget_exhausted = budget_exhausted;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(keys: &[(&str, u64)], db_keys: u64, complete: bool) -> Tally {
        let mut t = Tally {
            db_keys,
            ..Tally::default()
        };
        for (key, bytes) in keys {
            t.add(key.as_bytes(), *bytes, b':');
        }
        t.complete = complete;
        t
    }

    #[test]
    fn keys_are_grouped_by_prefix_and_extrapolated() {
        let t = tally(
            &[
                ("svc-a:1", 1000),
                ("svc-a:2", 3000),
                ("svc-b:1:x", 10),
                ("svc-b:{q}:2", 30),
                ("plain", 5),
            ],
            50,
            false,
        );
        let s = t.sample(20);
        assert!(s.is_sample);
        assert_eq!((s.db_keys, s.sampled), (50, 5));
        let a = &s.groups[0];
        assert_eq!((a.prefix.as_str(), a.kind), ("svc-a", GroupKind::Prefix));
        assert_eq!((a.sampled_keys, a.sampled_bytes), (2, 4000));
        assert_eq!((a.estimated_keys, a.estimated_bytes), (20, 40_000));
        let b = &s.groups[1];
        assert_eq!(
            (b.prefix.as_str(), b.estimated_keys, b.estimated_bytes),
            ("svc-b", 20, 400)
        );
        let plain = &s.groups[2];
        assert_eq!(
            (plain.kind, plain.estimated_keys),
            (GroupKind::NoSeparator, 10)
        );
        let keys: u64 = s.groups.iter().map(|g| g.estimated_keys).sum();
        assert_eq!(keys, 50);
    }

    #[test]
    fn a_complete_walk_is_exact_and_beyond_top_is_other() {
        let keys: Vec<(String, u64)> = (0..30).map(|i| (format!("p{i:02}:k"), 100 + i)).collect();
        let refs: Vec<(&str, u64)> = keys.iter().map(|(k, b)| (k.as_str(), *b)).collect();
        let s = tally(&refs, 30, true).sample(20);
        assert!(!s.is_sample);
        assert_eq!(s.groups.len(), 21);
        assert_eq!(s.groups[0].prefix, "p29");
        let other = s.groups.last().expect("other");
        assert_eq!(other.kind, GroupKind::Other);
        assert_eq!(other.estimated_keys, 10);
        assert_eq!(other.estimated_bytes, (100..110).sum::<u64>());
    }

    #[test]
    fn nodes_add_up_each_to_its_own_size() {
        let one = tally(&[("a:1", 10), ("b:1", 10)], 20, false);
        let two = tally(&[("a:1", 10)], 5, false);
        let groups = merged(&[&one, &two], 20);
        assert_eq!(groups[0].prefix, "a");
        assert_eq!(
            (groups[0].estimated_keys, groups[0].estimated_bytes),
            (15, 150)
        );
        assert_eq!(groups[0].sampled_keys, 2);
        assert_eq!(
            (groups[1].prefix.as_str(), groups[1].estimated_keys),
            ("b", 10)
        );
    }

    #[test]
    fn hostile_prefixes_are_printable_and_bounded() {
        let long = format!("{}:k", "z".repeat(500));
        let t = tally(&[("\u{1b}[2J:k", 1), (long.as_str(), 1)], 2, true);
        let s = t.sample(20);
        assert!(s.groups.iter().any(|g| g.prefix == "\\x1b[2J"));
        assert!(
            s.groups
                .iter()
                .all(|g| g.prefix.chars().count() <= MAX_PREFIX_CHARS)
        );
        let empty = Tally::default().sample(20);
        assert!(empty.groups.is_empty() && empty.is_sample);
    }
}
