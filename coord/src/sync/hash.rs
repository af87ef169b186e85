//! A fingerprint of the live synced state, so that an instance can tell
//! whether what it applied matches the database (or another instance)
//! without comparing entries one by one.
//!
//! Drift detection only, not security: FNV-1a is fast and stable across
//! platforms and releases, and trivially forgeable.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::Entry;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit fingerprint of live state. Shown and serialised as 16 hex
/// digits, because JavaScript dashboards cannot hold a u64 as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateHash(pub u64);

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for StateHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Hashes the live entries among `entries` (tombstones are skipped, so a
/// deleted key and one never written hash alike), in key order whatever
/// order they come in. The database side ([`super::StateStore::state_hash`])
/// uses this same function, so an instance hashing the map it applied gets
/// the same value as the store when both hold the same state.
///
/// Defined over a canonical text: for each live entry, in byte order of
/// keys, the JSON array `[key, status, value]` with object members sorted
/// by name and no whitespace, followed by a newline; FNV-1a 64 of the
/// UTF-8 bytes. Versions, times and authors are left out: two instances
/// that applied the same content agree even if they learned of it in a
/// different way.
pub fn state_hash<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> StateHash {
    let mut live: Vec<&Entry> = entries.into_iter().filter(|e| !e.deleted).collect();
    live.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    let mut hash = FNV_OFFSET;
    let mut line = String::new();
    for entry in live {
        line.clear();
        line.push('[');
        push_string(&mut line, entry.key.as_str());
        line.push(',');
        push_string(&mut line, &entry.status);
        line.push(',');
        push_canonical(&mut line, &entry.value);
        line.push_str("]\n");
        hash = fnv1a(hash, line.as_bytes());
    }
    StateHash(hash)
}

/// FNV-1a 64, continued from `hash` over `bytes`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Writes JSON with object members sorted by name, so the text does not
/// depend on insertion order or on serde_json's map features.
fn push_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, name);
                out.push(':');
                push_canonical(out, item);
            }
            out.push('}');
        }
    }
}

fn push_string(out: &mut String, s: &str) {
    // Serialising a plain string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sync::StateKey;

    fn entry(key: &str, value: Value, status: &str, deleted: bool) -> Entry {
        Entry {
            key: StateKey::new(key).unwrap(),
            value,
            status: status.into(),
            version: 1,
            updated_at: 0,
            updated_by: "x".into(),
            deleted,
        }
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        // Empty input hashes to the offset basis.
        assert_eq!(state_hash([]).0, FNV_OFFSET);
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        let mut out = String::new();
        push_canonical(
            &mut out,
            &json!({"b": [1, 2.5, null], "a": {"d": true, "c": "x"}}),
        );
        assert_eq!(out, r#"{"a":{"c":"x","d":true},"b":[1,2.5,null]}"#);
    }

    #[test]
    fn order_and_metadata_do_not_matter_but_content_does() {
        let a = entry("a", json!({"x": 1, "y": 2}), "enabled", false);
        let b = entry("b", json!([1]), "disabled", false);
        let mut b2 = b.clone();
        b2.version = 9;
        b2.updated_by = "other".into();
        let tomb = entry("c", json!(null), "enabled", true);
        let h = state_hash([&a, &b]);
        assert_eq!(h, state_hash([&b2, &tomb, &a]));
        let mut a2 = a.clone();
        a2.status = "disabled".into();
        assert_ne!(h, state_hash([&a2, &b]));
        assert_ne!(h, state_hash([&a]));
        assert_eq!(h.to_string().len(), 16);
        assert_eq!(serde_json::to_value(h).unwrap(), json!(h.to_string()));
    }
}
