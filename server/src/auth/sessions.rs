//! Sign-in sessions in the server's own SQL tables, as a
//! [`coord::sessions::SessionStore`]: the store of a dashboard without
//! Redis (SQLite or PostgreSQL). With Redis the dashboard uses
//! [`coord::sessions::RedisSessions`] instead, so that several instances
//! share sign-ins; [`crate::auth::users::UserStore`] talks to either
//! through the trait, so sign-in, sign-out and revoking have one code path.
//!
//! Also what the dashboard keeps in a session's opaque data
//! ([`SessionData`]) and how it summarises the browser for the Users page.

use std::time::Duration;

use async_trait::async_trait;
use coord::sessions::{
    self, DEFAULT_MAX_PER_USER, NewSession, Session, SessionError, SessionList, SessionStore,
};
use coord::time::now_ms;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::db::Database;
use crate::on_pool;

/// What the dashboard keeps in a session: its CSRF token, and where it was
/// started from (for the Users page). Stored as JSON in the session's data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// The token forms and API calls of this session must send.
    pub csrf: String,
    /// A short summary of the browser and address ("Firefox on Linux,
    /// 10.0.0.5"), at most [`MAX_AGENT_CHARS`].
    #[serde(default)]
    pub agent: String,
}

/// Longest browser summary kept.
pub const MAX_AGENT_CHARS: usize = 120;

impl SessionData {
    /// The JSON kept in the store.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what [`SessionData::encode`] wrote; `None` for anything else
    /// (a session of another program on a shared store).
    pub fn decode(data: &str) -> Option<Self> {
        serde_json::from_str(data).ok()
    }
}

/// A one-line summary of a `User-Agent` header and the client's address:
/// enough for an operator to tell their laptop from their phone, without
/// keeping the whole header.
pub fn agent_summary(user_agent: Option<&str>, address: Option<&str>) -> String {
    let ua = user_agent.unwrap_or_default();
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name);
    let system = [
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Android", "Android"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name);
    let what = match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("a browser on {s}"),
        (None, None) if ua.trim().is_empty() => "unknown client".to_owned(),
        (None, None) => ua
            .chars()
            .filter(|c| !c.is_control())
            .take(60)
            .collect::<String>(),
    };
    let text = match address {
        Some(address) if !address.is_empty() => format!("{what}, {address}"),
        _ => what,
    };
    text.chars().take(MAX_AGENT_CHARS).collect()
}

#[derive(FromRow)]
struct Row {
    id_hash: String,
    user_name: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    data: String,
}

impl Row {
    fn into_session(self) -> Session {
        Session {
            handle: sessions::handle_of(&self.id_hash),
            user: self.user_name,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            data: self.data,
        }
    }
}

/// Most sessions ended at one sign-in to keep within the cap: the cap
/// keeps the excess to one, so this only bounds a table filled otherwise.
const EVICT_BATCH: i64 = 1000;

const COLUMNS: &str = "id_hash, user_name, created_at, last_seen_at, expires_at, data";

/// Sessions in the server's `sessions` table. The table's foreign key ends
/// a user's sessions when the user is deleted; expired rows are deleted on
/// sight and by [`SessionStore::sweep`].
#[derive(Debug, Clone)]
pub struct SqlSessions {
    db: Database,
    max_per_user: usize,
}

impl SqlSessions {
    /// The store on `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self {
            db,
            max_per_user: DEFAULT_MAX_PER_USER,
        }
    }

    /// Sets the per-user cap (at least 1).
    pub fn with_max_per_user(mut self, cap: usize) -> Self {
        self.max_per_user = cap.max(1);
        self
    }
}

fn sql_error(err: sqlx::Error) -> SessionError {
    if coord::sql::is_outage(&err) {
        SessionError::Unavailable(err.to_string())
    } else {
        SessionError::Store(coord::CoordError::Database(err))
    }
}

impl SqlSessions {
    async fn delete(&self, key: &str) -> Result<bool, SessionError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(key)
                .execute(pool)
                .await
                .map_err(sql_error)?
                .rows_affected()
        });
        Ok(done > 0)
    }

    async fn read(&self, key: &str) -> Result<Option<Session>, SessionError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id_hash = $1");
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(key).fetch_optional(pool).await.map_err(sql_error)?
        });
        let Some(row) = row else {
            return Ok(None);
        };
        // Deleted on sight, so an ended session cannot come back if
        // clocks disagree.
        if row.expires_at <= now_ms() {
            self.delete(key).await?;
            return Ok(None);
        }
        Ok(Some(row.into_session()))
    }
}

#[async_trait]
impl SessionStore for SqlSessions {
    async fn create(
        &self,
        user: &str,
        ttl: Duration,
        data: &str,
    ) -> Result<NewSession, SessionError> {
        if data.len() > sessions::MAX_DATA_BYTES {
            return Err(SessionError::DataTooLarge {
                len: data.len(),
                max: sessions::MAX_DATA_BYTES,
            });
        }
        let ttl = sessions::ttl_ms(ttl)?;
        let id = sessions::new_id(user)?;
        let key = sessions::key_of(&id);
        let now = now_ms();
        let expires_at = now.saturating_add(ttl);
        let inserted = on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_name, created_at, expires_at, \
                 last_seen_at, csrf_token, data) VALUES ($1, $2, $3, $4, $3, '', $5)",
            )
            .bind(&key)
            .bind(user)
            .bind(now)
            .bind(expires_at)
            .bind(data)
            .execute(pool)
            .await
            .map(|_| ())
        });
        if let Err(err) = inserted {
            return Err(match &err {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    SessionError::UnknownUser(user.to_owned())
                }
                _ => sql_error(err),
            });
        }
        // The per-user cap: the least recently used beyond it end.
        let keep = i64::try_from(self.max_per_user).unwrap_or(i64::MAX);
        let evicted = self.evict_beyond(user, keep).await?;
        Ok(NewSession {
            id,
            session: Session {
                user: user.to_owned(),
                handle: sessions::handle_of(&key),
                created_at: now,
                last_seen_at: now,
                expires_at,
                data: data.to_owned(),
            },
            evicted,
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Session>, SessionError> {
        if sessions::user_of(id).is_none() {
            return Ok(None);
        }
        self.read(&sessions::key_of(id)).await
    }

    async fn touch(&self, id: &str, ttl: Duration) -> Result<Option<Session>, SessionError> {
        let ttl = sessions::ttl_ms(ttl)?;
        if sessions::user_of(id).is_none() {
            return Ok(None);
        }
        let key = sessions::key_of(id);
        let now = now_ms();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2, expires_at = $3 \
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(&key)
            .bind(now)
            .bind(now.saturating_add(ttl))
            .execute(pool)
            .await
            .map_err(sql_error)?;
        });
        self.read(&key).await
    }

    async fn revoke(&self, id: &str) -> Result<bool, SessionError> {
        self.delete(&sessions::key_of(id)).await
    }

    async fn revoke_handle(&self, user: &str, handle: &str) -> Result<bool, SessionError> {
        sessions::check_user(user)?;
        sessions::check_handle(handle)?;
        // The handle is 16 hex digits (checked), so it is safe in LIKE.
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE user_name = $1 AND id_hash LIKE $2")
                .bind(user)
                .bind(format!("{handle}%"))
                .execute(pool)
                .await
                .map_err(sql_error)?
                .rows_affected()
        });
        Ok(done > 0)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, SessionError> {
        sessions::check_user(user)?;
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE user_name = $1 AND expires_at > $2")
                .bind(user)
                .bind(now_ms())
                .execute(pool)
                .await
                .map_err(sql_error)?
                .rows_affected()
        });
        // Ended ones too, without counting them.
        on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(user)
                .execute(pool)
                .await
                .map_err(sql_error)?;
        });
        Ok(done)
    }

    async fn list(&self, user: &str, limit: usize) -> Result<SessionList, SessionError> {
        sessions::check_user(user)?;
        let limit = limit.clamp(1, sessions::MAX_LISTED);
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_name = $1 AND expires_at > $2 \
             ORDER BY last_seen_at DESC, created_at DESC, id_hash LIMIT $3"
        );
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(user)
                .bind(now_ms())
                .bind(fetch)
                .fetch_all(pool)
                .await
                .map_err(sql_error)?
        });
        let more = rows.len() > limit;
        let sessions = rows
            .into_iter()
            .take(limit)
            .map(Row::into_session)
            .collect();
        Ok(SessionList { sessions, more })
    }

    async fn sweep(&self, now: i64) -> Result<u64, SessionError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await
                .map_err(sql_error)?
                .rows_affected()
        });
        Ok(done)
    }
}

impl SqlSessions {
    /// Ends the user's sessions beyond the `keep` most recently used: their
    /// keys are read, then deleted (one statement would need a `LIMIT` in a
    /// subquery, which the two databases spell differently).
    async fn evict_beyond(&self, user: &str, keep: i64) -> Result<u64, SessionError> {
        let beyond: Vec<String> = on_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT id_hash FROM sessions WHERE user_name = $1 \
                 ORDER BY expires_at DESC, id_hash LIMIT $3 OFFSET $2",
            )
            .bind(user)
            .bind(keep)
            .bind(EVICT_BATCH)
            .fetch_all(pool)
            .await
            .map_err(sql_error)?
        });
        let mut evicted = 0;
        for key in beyond {
            if self.delete(&key).await? {
                evicted += 1;
            }
        }
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_summarised_in_a_few_words() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(
            agent_summary(Some(firefox), Some("10.0.0.5")),
            "Firefox on Linux, 10.0.0.5"
        );
        let chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
        assert_eq!(agent_summary(Some(chrome), None), "Chrome on macOS");
        assert_eq!(agent_summary(None, None), "unknown client");
        assert_eq!(agent_summary(Some("curl/8.5.0"), Some("::1")), "curl, ::1");
        let odd = "x".repeat(500);
        assert!(
            agent_summary(Some(&odd), Some(&"9".repeat(200)))
                .chars()
                .count()
                <= MAX_AGENT_CHARS
        );
    }

    #[test]
    fn session_data_round_trips() {
        let data = SessionData {
            csrf: "abc".into(),
            agent: "Firefox on Linux".into(),
        };
        assert_eq!(SessionData::decode(&data.encode()), Some(data));
        assert_eq!(SessionData::decode("not json"), None);
        assert!(SessionData::decode(r#"{"csrf":"x"}"#).is_some());
    }
}
