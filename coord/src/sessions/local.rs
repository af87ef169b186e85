//! Sessions in process: the embedded deployment's store, and the reference
//! the Redis store is tested against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    DEFAULT_MAX_PER_USER, NewSession, Result, Session, SessionList, SessionStore, check_data,
    check_handle, check_user, clamp_limit, handle_of, key_of, new_id, ttl_ms, user_of,
};
use crate::time::now_ms;

/// One user's sessions by key.
type PerUser = HashMap<String, Session>;

/// Sessions in this process; clones share them (two handles stand for two
/// components of one instance, not two instances).
#[derive(Clone, Debug)]
pub struct LocalSessions {
    users: Arc<Mutex<HashMap<String, PerUser>>>,
    max_per_user: usize,
}

impl Default for LocalSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalSessions {
    /// An empty store with [`DEFAULT_MAX_PER_USER`].
    pub fn new() -> Self {
        Self {
            users: Arc::default(),
            max_per_user: DEFAULT_MAX_PER_USER,
        }
    }

    /// Sets the per-user cap (at least 1).
    pub fn with_max_per_user(mut self, cap: usize) -> Self {
        self.max_per_user = cap.max(1);
        self
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, PerUser>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user's sessions with expired ones dropped, made when missing
    /// (for a new session only, so that lookups of made-up users leave
    /// nothing behind).
    fn live<'a>(users: &'a mut HashMap<String, PerUser>, user: &str, now: i64) -> &'a mut PerUser {
        let sessions = users.entry(user.to_owned()).or_default();
        sessions.retain(|_, s| s.expires_at > now);
        sessions
    }

    /// The user's sessions with expired ones dropped, if it has any.
    fn existing<'a>(
        users: &'a mut HashMap<String, PerUser>,
        user: &str,
        now: i64,
    ) -> Option<&'a mut PerUser> {
        let sessions = users.get_mut(user)?;
        sessions.retain(|_, s| s.expires_at > now);
        Some(sessions)
    }
}

#[async_trait]
impl SessionStore for LocalSessions {
    async fn create(&self, user: &str, ttl: Duration, data: &str) -> Result<NewSession> {
        check_data(data)?;
        let ttl = ttl_ms(ttl)?;
        let id = new_id(user)?;
        let key = key_of(&id);
        let now = now_ms();
        let session = Session {
            user: user.to_owned(),
            handle: handle_of(&key),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(ttl),
            data: data.to_owned(),
        };
        let mut users = self.users();
        let sessions = Self::live(&mut users, user, now);
        let mut evicted = 0;
        while sessions.len() >= self.max_per_user {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            sessions.remove(&oldest);
            evicted += 1;
        }
        sessions.insert(key, session.clone());
        Ok(NewSession {
            id,
            session,
            evicted,
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Session>> {
        let Some(user) = user_of(id) else {
            return Ok(None);
        };
        let now = now_ms();
        let users = self.users();
        Ok(users
            .get(&user)
            .and_then(|sessions| sessions.get(&key_of(id)))
            .filter(|s| s.expires_at > now)
            .cloned())
    }

    async fn touch(&self, id: &str, ttl: Duration) -> Result<Option<Session>> {
        let ttl = ttl_ms(ttl)?;
        let Some(user) = user_of(id) else {
            return Ok(None);
        };
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = Self::existing(&mut users, &user, now) else {
            return Ok(None);
        };
        Ok(sessions.get_mut(&key_of(id)).map(|s| {
            s.last_seen_at = now;
            s.expires_at = now.saturating_add(ttl);
            s.clone()
        }))
    }

    async fn revoke(&self, id: &str) -> Result<bool> {
        let Some(user) = user_of(id) else {
            return Ok(false);
        };
        let now = now_ms();
        let mut users = self.users();
        Ok(Self::existing(&mut users, &user, now)
            .is_some_and(|sessions| sessions.remove(&key_of(id)).is_some()))
    }

    async fn revoke_handle(&self, user: &str, handle: &str) -> Result<bool> {
        check_user(user)?;
        check_handle(handle)?;
        let now = now_ms();
        let mut users = self.users();
        let Some(sessions) = Self::existing(&mut users, user, now) else {
            return Ok(false);
        };
        let key = sessions.keys().find(|k| k.starts_with(handle)).cloned();
        Ok(key.is_some_and(|k| sessions.remove(&k).is_some()))
    }

    async fn revoke_all(&self, user: &str) -> Result<u64> {
        check_user(user)?;
        let now = now_ms();
        let mut users = self.users();
        let ended = users
            .remove(user)
            .map_or(0, |s| s.values().filter(|s| s.expires_at > now).count());
        Ok(ended as u64)
    }

    async fn list(&self, user: &str, limit: usize) -> Result<SessionList> {
        check_user(user)?;
        let limit = clamp_limit(limit);
        let now = now_ms();
        let mut users = self.users();
        let mut sessions: Vec<Session> = Self::existing(&mut users, user, now)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        sessions.sort_by(|a, b| {
            b.last_seen_at
                .cmp(&a.last_seen_at)
                .then_with(|| b.created_at.cmp(&a.created_at))
                .then_with(|| a.handle.cmp(&b.handle))
        });
        let more = sessions.len() > limit;
        sessions.truncate(limit);
        Ok(SessionList { sessions, more })
    }

    async fn sweep(&self, now: i64) -> Result<u64> {
        let mut users = self.users();
        let mut swept = 0;
        users.retain(|_, sessions| {
            let before = sessions.len();
            sessions.retain(|_, s| s.expires_at > now);
            swept += (before - sessions.len()) as u64;
            !sessions.is_empty()
        });
        Ok(swept)
    }
}
