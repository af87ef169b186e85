//! The embedded deployment's shared tier: one map in the process.
//!
//! The embedded default runs every "instance" in one process (the demo's
//! simulated ones, or the single real one), so what they share can live in
//! memory, like [`crate::channels::LocalBus`]. SQLite was not chosen: a
//! cache need not survive a restart, and writing every entry to disk would
//! cost the one property a cache is for. With this tier the conformance
//! suite still means something: several [`super::Cache`] handles over one
//! `LocalShared` are several instances, with their own local tiers, their
//! own single-flight and one set of load locks between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::Namespace;
use super::shared::{SharedTier, Stored};
use crate::error::Result;

/// The in-process shared tier. Cheap to clone: clones are the same tier.
#[derive(Clone, Debug, Default)]
pub struct LocalShared {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// (namespace, key) → (text, expires at).
    entries: HashMap<(String, String), (String, Instant)>,
    /// (namespace, key) → (token, expires at).
    locks: HashMap<(String, String), (String, Instant)>,
}

impl LocalShared {
    /// A new, empty tier.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding it; a poisoned map is still
        // a valid map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries held (expired ones included until touched), for tests.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn id(ns: &Namespace, key: &str) -> (String, String) {
    (ns.as_str().to_owned(), key.to_owned())
}

#[async_trait]
impl SharedTier for LocalShared {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Stored>> {
        let now = Instant::now();
        let mut state = self.state();
        let id = id(ns, key);
        match state.entries.get(&id) {
            Some((text, until)) if *until > now => Ok(Some(Stored {
                text: text.clone(),
                ttl_left: *until - now,
            })),
            Some(_) => {
                state.entries.remove(&id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<()> {
        let until = Instant::now() + ttl;
        self.state()
            .entries
            .insert(id(ns, key), (text.to_owned(), until));
        Ok(())
    }

    async fn add(&self, ns: &Namespace, key: &str, text: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut state = self.state();
        let id = id(ns, key);
        if state
            .entries
            .get(&id)
            .is_some_and(|(_, until)| *until > now)
        {
            return Ok(false);
        }
        state.entries.insert(id, (text.to_owned(), now + ttl));
        Ok(true)
    }

    async fn delete(&self, ns: &Namespace, key: &str) -> Result<()> {
        self.state().entries.remove(&id(ns, key));
        Ok(())
    }

    async fn clear(&self, ns: &Namespace) -> Result<u64> {
        let mut state = self.state();
        let before = state.entries.len();
        state.entries.retain(|(n, _), _| n != ns.as_str());
        Ok((before - state.entries.len()) as u64)
    }

    async fn try_lock(
        &self,
        ns: &Namespace,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut state = self.state();
        let id = id(ns, key);
        if state.locks.get(&id).is_some_and(|(_, until)| *until > now) {
            return Ok(false);
        }
        state.locks.insert(id, (token.to_owned(), now + ttl));
        Ok(true)
    }

    async fn unlock(&self, ns: &Namespace, key: &str, token: &str) -> Result<()> {
        let mut state = self.state();
        let id = id(ns, key);
        if state.locks.get(&id).is_some_and(|(t, _)| t == token) {
            state.locks.remove(&id);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
