//! Sessions in Redis (one server or a cluster), shared by every instance
//! that uses the same Redis and prefix.
//!
//! # Keys
//!
//! With `T` = `{<user>}` (a hash tag, so one user's keys share a cluster
//! slot and every operation is one atomic script on one node):
//!
//! - `<p>:session:T:<key>` hash (`user`, `created_at`, `last_seen_at`,
//!   `expires_at`, `data`) with a time to live of the session's;
//! - `<p>:sessions:T` sorted set of the user's keys by end time, the index
//!   that listing, the per-user cap and revoking all read; it expires with
//!   the user's last session, and listing drops entries whose session is
//!   gone.
//!
//! Times come from the Redis server (`TIME`), so instances whose clocks
//! disagree still agree on when a session ends.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{
    DEFAULT_MAX_PER_USER, NewSession, Result, Session, SessionError, SessionList, SessionStore,
    check_data, check_handle, check_user, clamp_limit, handle_of, key_of, new_id, ttl_ms, user_of,
};
use crate::error::CoordError;
use crate::redis::{self as conn, Conn, Reconnect};

/// A session is read on every request: answer within 2 s or report the
/// outage (the caller may keep a recent answer meanwhile).
const RECONNECT: Reconnect = Reconnect {
    connect_timeout: Duration::from_secs(2),
    response_timeout: Duration::from_secs(2),
    retries: 1,
    max_delay: Duration::from_millis(500),
};

/// The server's time in ms, and a number written as an integer (Lua 5.1
/// would print large ones in exponent form).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function int(x) return string.format('%d', x) end
local function bump(idx, ttl)
  if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
end
";

/// KEYS: index, session. ARGV: key base, key, user, data, ttl, cap.
/// Returns {now, expires_at, evicted}.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local idx = KEYS[1]
local ttl = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
local n = redis.call('ZCARD', idx)
local evicted = 0
if n >= cap then
  local old = redis.call('ZRANGE', idx, 0, n - cap)
  for _, k in ipairs(old) do
    redis.call('DEL', ARGV[1] .. k)
    redis.call('ZREM', idx, k)
  end
  evicted = #old
end
local exp = now + ttl
redis.call('HSET', KEYS[2], 'user', ARGV[3], 'created_at', int(now), 'last_seen_at', int(now),
  'expires_at', int(exp), 'data', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', idx, int(exp), ARGV[2])
bump(idx, ttl)
return {{int(now), int(exp), evicted}}
"
    ))
});

/// The fields of a session hash, in the order scripts return them.
const FIELDS: &str = "'user', 'created_at', 'last_seen_at', 'expires_at', 'data'";

/// KEYS: index, session. ARGV: key, ttl. Returns the fields, or nil.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
local ttl = tonumber(ARGV[2])
local exp = now + ttl
redis.call('HSET', KEYS[2], 'last_seen_at', int(now), 'expires_at', int(exp))
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], int(exp), ARGV[1])
bump(KEYS[1], ttl)
return redis.call('HMGET', KEYS[2], {FIELDS})
"
    ))
});

/// KEYS: index, session. ARGV: key. Returns 1 if the session existed.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])",
    )
});

/// KEYS: index. ARGV: key base, handle. Returns 1 if a session ended.
static REVOKE_HANDLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(k, 1, string.len(ARGV[2])) == ARGV[2] then
    redis.call('ZREM', KEYS[1], k)
    return redis.call('DEL', ARGV[1] .. k)
  end
end
return 0",
    )
});

/// KEYS: index. ARGV: key base. Returns how many sessions ended.
static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local ended = 0
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  ended = ended + redis.call('DEL', ARGV[1] .. k)
end
redis.call('DEL', KEYS[1])
return ended",
    )
});

/// KEYS: index. ARGV: key base, limit. Drops ended entries from the index,
/// then returns {count, key, fields…, key, fields…} for the `limit` latest
/// ends (the most recently used, since every touch moves the end).
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}
local idx = KEYS[1]
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
local limit = tonumber(ARGV[2])
local out = {{}}
local listed = 0
for _, k in ipairs(redis.call('ZREVRANGE', idx, 0, -1)) do
  if listed >= limit then break end
  local f = redis.call('HMGET', ARGV[1] .. k, {FIELDS})
  if f[1] then
    table.insert(out, k)
    for i = 1, 5 do table.insert(out, f[i]) end
    listed = listed + 1
  else
    redis.call('ZREM', idx, k)
  end
end
table.insert(out, 1, tostring(redis.call('ZCARD', idx)))
return out
"
    ))
});

/// Sessions in Redis. Cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct RedisSessions {
    conn: Conn,
    prefix: String,
    max_per_user: usize,
}

/// Shows the prefix, never the URL (it may hold a password).
impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .field("max_per_user", &self.max_per_user)
            .finish_non_exhaustive()
    }
}

fn redis_error(err: redis::RedisError) -> SessionError {
    match CoordError::from(err) {
        CoordError::Unavailable(why) => SessionError::Unavailable(why),
        other => SessionError::Store(other),
    }
}

fn number(text: &str, what: &str) -> Result<i64> {
    text.parse()
        .map_err(|_| SessionError::Corrupt(format!("{what} is {text:?}, not a number")))
}

impl RedisSessions {
    /// Connects (`redis://`, `rediss://` or `redis+cluster://`) and checks
    /// the server with `PING` within 5 s, so a wrong URL fails at start-up.
    /// Keys live under `<prefix>:session:` and `<prefix>:sessions:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Ok(Self {
            conn: conn::connect_tagged(url, prefix, RECONNECT).await?,
            prefix: prefix.to_owned(),
            max_per_user: DEFAULT_MAX_PER_USER,
        })
    }

    /// Sets the per-user cap (at least 1).
    pub fn with_max_per_user(mut self, cap: usize) -> Self {
        self.max_per_user = cap.max(1);
        self
    }

    fn index(&self, user: &str) -> String {
        format!("{}:sessions:{{{user}}}", self.prefix)
    }

    /// The session keys' common start: a session is `base + key`.
    fn base(&self, user: &str) -> String {
        format!("{}:session:{{{user}}}:", self.prefix)
    }

    /// A session read back from its fields (`user`, `created_at`,
    /// `last_seen_at`, `expires_at`, `data`).
    fn session(key: &str, fields: &[Option<String>]) -> Result<Option<Session>> {
        let [user, created, seen, expires, data] = fields else {
            return Err(SessionError::Corrupt(format!(
                "{} fields instead of 5",
                fields.len()
            )));
        };
        let Some(user) = user else {
            return Ok(None);
        };
        let field = |value: &Option<String>, what: &str| -> Result<i64> {
            number(value.as_deref().unwrap_or_default(), what)
        };
        Ok(Some(Session {
            user: user.clone(),
            handle: handle_of(key),
            created_at: field(created, "created_at")?,
            last_seen_at: field(seen, "last_seen_at")?,
            expires_at: field(expires, "expires_at")?,
            data: data.clone().unwrap_or_default(),
        }))
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, user: &str, ttl: Duration, data: &str) -> Result<NewSession> {
        check_data(data)?;
        let ttl = ttl_ms(ttl)?;
        let id = new_id(user)?;
        let key = key_of(&id);
        let base = self.base(user);
        let (now, expires_at, evicted): (i64, i64, u64) = CREATE
            .key(self.index(user))
            .key(format!("{base}{key}"))
            .arg(&base)
            .arg(&key)
            .arg(user)
            .arg(data)
            .arg(ttl)
            .arg(self.max_per_user)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(NewSession {
            id,
            session: Session {
                user: user.to_owned(),
                handle: handle_of(&key),
                created_at: now,
                last_seen_at: now,
                expires_at,
                data: data.to_owned(),
            },
            evicted,
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Session>> {
        let Some(user) = user_of(id) else {
            return Ok(None);
        };
        let key = key_of(id);
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(format!("{}{key}", self.base(&user)))
            .arg(&["user", "created_at", "last_seen_at", "expires_at", "data"])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Self::session(&key, &fields)
    }

    async fn touch(&self, id: &str, ttl: Duration) -> Result<Option<Session>> {
        let ttl = ttl_ms(ttl)?;
        let Some(user) = user_of(id) else {
            return Ok(None);
        };
        let key = key_of(id);
        let fields: Option<Vec<Option<String>>> = TOUCH
            .key(self.index(&user))
            .key(format!("{}{key}", self.base(&user)))
            .arg(&key)
            .arg(ttl)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        match fields {
            Some(fields) => Self::session(&key, &fields),
            None => Ok(None),
        }
    }

    async fn revoke(&self, id: &str) -> Result<bool> {
        let Some(user) = user_of(id) else {
            return Ok(false);
        };
        let key = key_of(id);
        let ended: i64 = REVOKE
            .key(self.index(&user))
            .key(format!("{}{key}", self.base(&user)))
            .arg(&key)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(ended > 0)
    }

    async fn revoke_handle(&self, user: &str, handle: &str) -> Result<bool> {
        check_user(user)?;
        check_handle(handle)?;
        let ended: i64 = REVOKE_HANDLE
            .key(self.index(user))
            .arg(self.base(user))
            .arg(handle)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(ended > 0)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64> {
        check_user(user)?;
        let ended: u64 = REVOKE_ALL
            .key(self.index(user))
            .arg(self.base(user))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(ended)
    }

    async fn list(&self, user: &str, limit: usize) -> Result<SessionList> {
        check_user(user)?;
        let limit = clamp_limit(limit);
        let out: Vec<Option<String>> = LIST
            .key(self.index(user))
            .arg(self.base(user))
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let Some((total, rest)) = out.split_first() else {
            return Err(SessionError::Corrupt("an empty listing".into()));
        };
        let total = number(total.as_deref().unwrap_or_default(), "the count")?;
        let mut sessions = Vec::with_capacity(rest.len() / 6);
        for chunk in rest.chunks(6) {
            let Some((Some(key), fields)) = chunk.split_first() else {
                return Err(SessionError::Corrupt("a listing without a key".into()));
            };
            if let Some(session) = Self::session(key, fields)? {
                sessions.push(session);
            }
        }
        let more = usize::try_from(total).unwrap_or(usize::MAX) > sessions.len();
        Ok(SessionList { sessions, more })
    }
}
