//! Operators' accounts, in the server's own SQL tables (SQLite or
//! PostgreSQL, the same statements), and their sign-in sessions, in a
//! [`coord::sessions::SessionStore`]: the same SQL database
//! ([`crate::auth::sessions::SqlSessions`]) or, with Redis, Redis (so that
//! several dashboard instances share sign-ins).
//!
//! Passwords are kept only as Argon2id hashes in PHC string format, so a
//! leaked database does not leak passwords, and the parameters travel with
//! each hash (they can be raised later without a migration). Session ids
//! are random and stored only as their SHA-256 hash: a leaked session store
//! cannot be replayed as cookies. Each session carries its own CSRF
//! token, so forms can be checked without a second cookie.
//!
//! Nothing here enforces anything yet: routes stay open until sign-in is
//! wired into the router; this is the storage and the CLI it needs.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coord::sessions::{SessionError, SessionList, SessionStore};
use coord::time::now_ms;
use rand::RngExt;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use crate::auth::sessions::{SessionData, SqlSessions};
use crate::db::{Database, DbError};
use crate::http::error::AppError;
use crate::on_pool;

/// Shortest password accepted: long passphrases beat composition rules.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, so one request cannot make the server hash
/// megabytes.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest user name: names show in the audit log and page headers.
pub const MAX_NAME_CHARS: usize = 64;
/// Length of generated passwords (`--generate`, the demo's admin): about
/// 119 bits from 62 symbols, and still typeable.
pub const GENERATED_PASSWORD_CHARS: usize = 20;
/// The first admin's name when `SWITCHYARD_ADMIN_USER` is not set.
pub const DEFAULT_ADMIN: &str = "admin";
/// A session's last-seen time is written at most this often, so a busy
/// page does not turn every request into a database write.
pub(crate) const LAST_SEEN_GRANULARITY_MS: i64 = 60_000;

/// What a user may do. Each role includes the ones below it, so a check
/// names the least role an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Looks at pages and the API; changes nothing.
    Viewer,
    /// Also acts on queues, jobs, rate limits and alerts.
    Operator,
    /// Also manages users and settings.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The stored (and typed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may: roles are ordered, so a
    /// check never lists every role that qualifies.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UserError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| UserError::UnknownRole(text.to_owned()))
    }
}

/// A user name that has been checked, so the store, the audit log and
/// headers never see one that needs escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Accepts 1 to [`MAX_NAME_CHARS`] characters of `A–Z a–z 0–9 _ . @ -`
    /// (enough for e-mail-like names, nothing a page or log must escape).
    pub fn new(name: impl Into<String>) -> Result<Self, UserError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
        if valid {
            Ok(Self(name))
        } else {
            Err(UserError::InvalidName(name))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserName {
    type Err = UserError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

/// A password that meets the length rules. Its `Debug` hides the value and
/// it has no `Display`, so it cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Words that make up most guessed passwords; one of them padded with
/// digits and punctuation to the minimum length (`Password1234!`) is as
/// weak as the word.
const GUESSED_WORDS: [&str; 10] = [
    "password",
    "passwort",
    "qwerty",
    "letmein",
    "welcome",
    "admin",
    "changeme",
    "iloveyou",
    "switchyard",
    "secret",
];

/// Runs of keys or letters people type as a "long" password.
const SEQUENCES: [&str; 3] = [
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "0123456789012345678901234567890123456789",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
];

/// Why a long-enough password is still trivial to guess, if it is: a few
/// characters repeated (`aaaaaaaaaaaa`, twelve spaces), a run of the
/// keyboard or the alphabet, or a common word with digits and symbols
/// around it. Deliberately small: length does most of the work.
fn weakness(password: &str) -> Option<&'static str> {
    let lower = password.to_lowercase();
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Some("it repeats fewer than 5 different characters");
    }
    if SEQUENCES.iter().any(|run| run.contains(&lower)) {
        return Some("it is a run of the keyboard, the alphabet or the digits");
    }
    let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() || GUESSED_WORDS.contains(&letters.as_str()) {
        return Some("it is a common word or only digits and symbols");
    }
    None
}

impl Password {
    /// Accepts [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`]
    /// characters that are not trivially guessed (see [`weakness`]).
    pub fn new(password: impl Into<String>) -> Result<Self, UserError> {
        let password = password.into();
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            Err(UserError::PasswordTooShort)
        } else if chars > MAX_PASSWORD_CHARS {
            Err(UserError::PasswordTooLong)
        } else if let Some(why) = weakness(&password) {
            Err(UserError::PasswordTooWeak(why))
        } else {
            Ok(Self(password))
        }
    }

    /// A random password of [`GENERATED_PASSWORD_CHARS`] letters and
    /// digits, for an account whose password is shown once.
    pub fn generate() -> Self {
        let text: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(GENERATED_PASSWORD_CHARS)
            .map(char::from)
            .collect();
        Self(text)
    }

    /// A password given for an account that may already exist (the first
    /// admin of `SWITCHYARD_ADMIN_PASSWORD`, read at every start but used
    /// only on a start that finds no users): only its length is checked
    /// here, [`Password::check_strength`] when the account is created.
    pub fn configured(password: impl Into<String>) -> Result<Self, UserError> {
        let password = password.into();
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            Err(UserError::PasswordTooShort)
        } else if chars > MAX_PASSWORD_CHARS {
            Err(UserError::PasswordTooLong)
        } else {
            Ok(Self(password))
        }
    }

    /// Refuses a trivially guessed password (see [`weakness`]).
    pub fn check_strength(&self) -> Result<(), UserError> {
        match weakness(&self.0) {
            Some(why) => Err(UserError::PasswordTooWeak(why)),
            None => Ok(()),
        }
    }

    /// The password itself, for hashing or showing it once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The admin to create on a start that finds no users (from
/// `SWITCHYARD_ADMIN_USER` / `SWITCHYARD_ADMIN_PASSWORD`), so a
/// deployment can be provisioned without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAdmin {
    /// Its name ([`DEFAULT_ADMIN`] unless configured).
    pub name: UserName,
    /// Its password.
    pub password: Password,
}

/// Why an account operation did not happen. The messages are one line and
/// never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name has characters or a length the rules refuse.
    #[error("invalid user name {0:?}: use 1 to 64 characters of A-Z, a-z, 0-9 and _ . @ -")]
    InvalidName(String),
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: use at least 12 characters")]
    PasswordTooShort,
    /// The password is longer than [`MAX_PASSWORD_CHARS`].
    #[error("the password is too long: use at most 1024 characters")]
    PasswordTooLong,
    /// The password is long enough but trivially guessed.
    #[error("the password is too easy to guess: {0}; use a passphrase or a generated password")]
    PasswordTooWeak(&'static str),
    /// The role is none of viewer, operator, admin.
    #[error("unknown role {0:?} (expected viewer, operator or admin)")]
    UnknownRole(String),
    /// A user with that name exists already.
    #[error("user {0} already exists")]
    Exists(UserName),
    /// No user has that name.
    #[error("no user named {0}")]
    NotFound(UserName),
    /// An API token label is empty, too long or has control characters;
    /// the text says which.
    #[error("invalid token label: {0}")]
    InvalidLabel(String),
    /// No API token has that id (never made, or revoked already).
    #[error("no API token with id {0:?}")]
    TokenNotFound(String),
    /// Hashing failed (out of memory, or a thread could not be started).
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Every hashing slot is taken and the queue for them is full: answered
    /// at once instead of queueing without bound (a sign-in flood).
    #[error("too many passwords are being checked at once; try again in a few seconds")]
    Busy,
    /// The database failed.
    #[error("{0}")]
    Db(#[from] DbError),
    /// The session store failed or refused.
    #[error("{0}")]
    Sessions(#[from] SessionError),
}

impl UserError {
    /// The HTTP status this error stands for, so sign-in and user pages
    /// answer like every other handler (409 for a taken name).
    pub fn status(&self) -> StatusCode {
        match self {
            UserError::InvalidName(_)
            | UserError::PasswordTooShort
            | UserError::PasswordTooLong
            | UserError::PasswordTooWeak(_)
            | UserError::UnknownRole(_)
            | UserError::InvalidLabel(_) => StatusCode::BAD_REQUEST,
            UserError::Exists(_) => StatusCode::CONFLICT,
            UserError::NotFound(_) | UserError::TokenNotFound(_) => StatusCode::NOT_FOUND,
            UserError::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
            UserError::Db(_) | UserError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            UserError::Sessions(err) => match err {
                SessionError::InvalidUser { .. }
                | SessionError::InvalidHandle(_)
                | SessionError::DataTooLarge { .. }
                | SessionError::InvalidTtl(_) => StatusCode::BAD_REQUEST,
                SessionError::UnknownUser(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// True when a store did not answer (rather than refusing): the case
    /// the outage grace covers.
    pub fn is_outage(&self) -> bool {
        match self {
            UserError::Db(err) => err.is_outage(),
            UserError::Sessions(err) => err.is_outage(),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for UserError {
    fn from(err: sqlx::Error) -> Self {
        UserError::Db(DbError::Sql(err))
    }
}

impl From<UserError> for AppError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::Sessions(_) if err.status() == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::error!(error = %err, "session store failed");
                AppError::new(
                    err.status(),
                    "the session store did not answer; see the server log",
                )
            }
            UserError::Db(_) | UserError::Hash(_) => {
                tracing::error!(error = %err, "user store failed");
                AppError::new(
                    err.status(),
                    "the user database did not answer; see the server log",
                )
            }
            _ => AppError::new(err.status(), err.to_string()),
        }
    }
}

/// An account as the store keeps it (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: UserName,
    /// What it may do.
    pub role: Role,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// A disabled user cannot sign in and has no sessions; kept rather
    /// than deleted so the audit log's names still mean someone.
    pub disabled: bool,
}

#[derive(FromRow)]
pub(crate) struct UserRecord {
    name: String,
    role: String,
    created_at: i64,
    disabled: bool,
}

impl UserRecord {
    /// A record from columns read by a join.
    pub(crate) fn from_parts(name: String, role: String, created_at: i64, disabled: bool) -> Self {
        Self {
            name,
            role,
            created_at,
            disabled,
        }
    }

    pub(crate) fn into_user(self) -> Result<User, DbError> {
        let bad = |what: String| DbError::Corrupt(format!("user {:?}: {what}", self.name));
        Ok(User {
            role: self.role.parse::<Role>().map_err(|e| bad(e.to_string()))?,
            name: UserName::new(self.name.clone()).map_err(|e| bad(e.to_string()))?,
            created_at: self.created_at,
            disabled: self.disabled,
        })
    }
}

#[derive(FromRow)]
struct LoginRecord {
    name: String,
    role: String,
    created_at: i64,
    disabled: bool,
    password_hash: String,
}

const USER_COLUMNS: &str = "name, role, created_at, disabled";

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's
/// recommended minimum), version 0x13.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Where password hashes run: one thread per core, each hash at a time,
/// with a bounded line of hashes waiting; beyond it [`UserError::Busy`] is
/// answered at once. Each hash takes 19 MiB and tens of milliseconds of a
/// core, so more at once only adds memory, never speed; and keeping them
/// on a few threads of their own (not the blocking pool's hundreds) keeps
/// the allocator's per-thread memory to those few. 200 concurrent sign-ins
/// used to start 200 hashes and take 4 GB.
struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

/// Hashes that may wait for a thread, per thread: at ~50 ms a hash, the
/// last in line waits well under a second.
const WAITING_PER_THREAD: usize = 8;

static HASH_POOL: LazyLock<HashPool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let (jobs, incoming) =
        std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(threads * WAITING_PER_THREAD);
    let incoming = Arc::new(Mutex::new(incoming));
    for i in 0..threads {
        let incoming = Arc::clone(&incoming);
        let spawned = std::thread::Builder::new()
            .name(format!("password-hash-{i}"))
            .spawn(move || {
                loop {
                    let job = match incoming.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panic ends the job (its caller hears of it),
                        // not the thread.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start a password-hashing thread");
        }
    }
    HashPool { jobs }
});

/// Runs `work` (a hash) on [`HASH_POOL`], or answers
/// [`UserError::Busy`] at once when its line is full. A caller that stops
/// waiting leaves the hash to finish on its thread; the line stays
/// bounded either way.
async fn on_hash_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, UserError> + Send + 'static,
) -> Result<T, UserError> {
    use std::sync::mpsc::TrySendError;
    let (done, result) = tokio::sync::oneshot::channel();
    let job = Box::new(move || {
        let _ = done.send(work());
    });
    match HASH_POOL.jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(UserError::Busy),
        Err(TrySendError::Disconnected(_)) => {
            return Err(UserError::Hash(
                "the password-hashing threads stopped".into(),
            ));
        }
    }
    result
        .await
        .map_err(|_| UserError::Hash("the password hash did not finish".into()))?
}

/// Hashes `password` with a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), on the hash pool.
pub async fn hash_password(password: &Password) -> Result<String, UserError> {
    let password = password.clone();
    on_hash_pool(move || hash_now(password.expose())).await
}

fn hash_now(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// A hash of a password nobody knows, verified against when a name does not
/// exist, so an unknown name costs as long as a wrong password and timing
/// does not tell which names exist. Made with the same hasher, so its cost
/// always matches real hashes.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let password = Password::generate();
    hash_now(password.expose()).ok()
});

/// Checks `password` against a stored PHC hash on the blocking pool; the
/// comparison inside argon2 is constant-time. An unparsable stored hash is
/// reported, not treated as a mismatch, so corruption is noticed.
async fn verify_hash(password: &str, stored: Option<String>) -> Result<bool, UserError> {
    let password = password.to_owned();
    on_hash_pool(move || {
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => match DUMMY_HASH.as_ref() {
                Some(dummy) => (dummy.clone(), false),
                None => return Ok(false),
            },
        };
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| DbError::Corrupt(format!("stored password hash: {e}")))?;
        let matches = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(matches && real)
    })
    .await
}

/// `Ok` when a statement about `name` changed a row; an account that
/// does not exist changes none.
fn found(rows: u64, name: &UserName) -> Result<(), UserError> {
    if rows == 0 {
        Err(UserError::NotFound(name.clone()))
    } else {
        Ok(())
    }
}

/// Maps a statement's error, reading a foreign-key violation on `user` as
/// the account being gone (deleted between the check and the write).
pub(crate) fn unless_user_gone(user: &UserName) -> impl FnOnce(sqlx::Error) -> UserError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            UserError::NotFound(user.clone())
        }
        _ => UserError::from(err),
    }
}

/// 32 random bytes as unpadded base64url: a session id or CSRF token that
/// fits a cookie or a form field as is.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the `api_tokens` table keeps of a token: its SHA-256, so the
/// table alone cannot be used to sign in (sessions are hashed by
/// [`coord::sessions::key_of`]). (sha2 is compiled for sqlx
/// already; no hash crate was added for this.)
pub(crate) fn session_key(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(id.as_bytes()))
}

/// How long a session checked once keeps working while the database does
/// not answer: an operator watching an outage must not be signed out by
/// it. Only used when the database fails; otherwise every request reads
/// the session afresh, so a sign-out, a disabled user or a changed role
/// applies at once.
pub const OUTAGE_GRACE: Duration = Duration::from_secs(300);
/// Sessions remembered for [`OUTAGE_GRACE`] at most (one per browser using
/// the dashboard; beyond this the oldest half is forgotten).
const MAX_REMEMBERED: usize = 10_000;

/// The last good answer for each session id (by its hash), when it was
/// read and when the session ends.
type Remembered = HashMap<String, (SignedIn, Instant, i64)>;

/// Forgets the older half of a full memo of last good answers, by when
/// each was read, so that it stays within [`MAX_REMEMBERED`].
fn make_room<V>(memo: &mut HashMap<String, V>, read_at: impl Fn(&V) -> Instant) {
    if memo.len() < MAX_REMEMBERED {
        return;
    }
    let mut ages: Vec<Instant> = memo.values().map(&read_at).collect();
    ages.sort_unstable();
    let cutoff = ages[ages.len() / 2];
    memo.retain(|_, v| read_at(v) > cutoff);
}

/// The last good answer for each API token (by its hash): user, when it
/// was read, and the token's id, so that revoking forgets it at once.
type RememberedTokens = HashMap<String, (User, Instant, String)>;

/// The accounts of one database and the sessions of one session store.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct UserStore {
    pub(crate) db: Database,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) session_ttl: Duration,
    pub(crate) remembered: Arc<Mutex<Remembered>>,
    pub(crate) tokens: Arc<Mutex<RememberedTokens>>,
    pub(crate) grace: Duration,
}

/// A live session of an enabled user, as a request finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Whose it is (read afresh, so a changed role applies at once).
    pub user: User,
    /// The session's CSRF token.
    pub csrf: String,
    /// Its non-secret handle (the Users page's "this session").
    pub handle: String,
    /// True when this read moved its end (sliding expiry): the cookie is
    /// sent again so the browser keeps it as long.
    pub touched: bool,
}

/// One of a user's sessions, for the Users page and its API twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Its non-secret handle (the revoke buttons' URLs).
    pub handle: String,
    /// When it was started, last used and ends (ms since the epoch).
    pub created_at: i64,
    /// When it was last used.
    pub last_seen_at: i64,
    /// When it ends unless used again.
    pub expires_at: i64,
    /// The browser and address it was started from.
    pub agent: String,
}

impl UserStore {
    /// The store on `db` (already migrated), with sessions in the same
    /// database.
    pub fn new(db: Database) -> Self {
        Self {
            sessions: Arc::new(SqlSessions::new(db.clone())),
            db,
            session_ttl: crate::auth::DEFAULT_SESSION_TTL,
            remembered: Arc::default(),
            tokens: Arc::default(),
            grace: OUTAGE_GRACE,
        }
    }

    /// Keeps sessions in `sessions` instead (Redis, shared by every
    /// dashboard instance on it).
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = sessions;
        self
    }

    /// Sets how long a session lasts after its last use (each use at most
    /// once per [`LAST_SEEN_GRANULARITY_MS`] moves its end).
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// The session store in use (for the Redis health checks and tests).
    pub fn session_store(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// Sets how long a session or API token checked once keeps working
    /// while the database does not answer ([`OUTAGE_GRACE`] by default;
    /// zero turns the grace off).
    pub fn with_outage_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long the outage grace lasts.
    pub fn outage_grace(&self) -> Duration {
        self.grace
    }

    pub(crate) fn remembered_tokens(&self) -> std::sync::MutexGuard<'_, RememberedTokens> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn remember_token(&self, key: &str, user: &User, id: &str) {
        let mut memo = self.remembered_tokens();
        make_room(&mut memo, |(_, at, _)| *at);
        memo.insert(
            key.to_owned(),
            (user.clone(), Instant::now(), id.to_owned()),
        );
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember(&self, key: &str, found: &SignedIn, expires_at: i64) {
        let mut memo = self.remembered();
        make_room(&mut memo, |(_, at, _)| *at);
        memo.insert(key.to_owned(), (found.clone(), Instant::now(), expires_at));
    }

    fn forget(&self, key: &str) {
        self.remembered().remove(key);
    }

    fn forget_user(&self, name: &UserName) {
        self.remembered()
            .retain(|_, (found, _, _)| &found.user.name != name);
        self.remembered_tokens()
            .retain(|_, (user, _, _)| &user.name != name);
    }

    /// Creates a user; [`UserError::Exists`] if the name is taken (also
    /// when two processes race for it: the primary key decides).
    pub async fn add(
        &self,
        name: &UserName,
        password: &Password,
        role: Role,
    ) -> Result<User, UserError> {
        let hash = hash_password(password).await?;
        let created_at = now_ms();
        let inserted = on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO users (name, password_hash, role, created_at, disabled) \
                 VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name.as_str())
            .bind(&hash)
            .bind(role.as_str())
            .bind(created_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(UserError::Exists(name.clone()));
        }
        Ok(User {
            name: name.clone(),
            role,
            created_at,
            disabled: false,
        })
    }

    /// Creates `name` as an admin only if there are no users at all; true
    /// if it was created. For the first start: an installation that has
    /// users already is never given another admin behind its back.
    pub async fn add_first_admin(
        &self,
        name: &UserName,
        password: &Password,
    ) -> Result<bool, UserError> {
        if !self.is_empty().await? {
            return Ok(false);
        }
        password.check_strength()?;
        let hash = hash_password(password).await?;
        // One statement, so two instances starting at once create one admin.
        let inserted = on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO users (name, password_hash, role, created_at, disabled) \
                 SELECT $1, $2, $3, $4, FALSE WHERE NOT EXISTS (SELECT 1 FROM users) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name.as_str())
            .bind(&hash)
            .bind(Role::Admin.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted > 0)
    }

    /// Whether no user exists yet (a fresh installation).
    pub async fn is_empty(&self) -> Result<bool, UserError> {
        let any: Option<i32> = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT 1 FROM users LIMIT 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(any.is_none())
    }

    /// One user, if it exists.
    pub async fn get(&self, name: &UserName) -> Result<Option<User>, UserError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let record: Option<UserRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(name.as_str()).fetch_optional(pool).await?
        });
        Ok(record.map(UserRecord::into_user).transpose()?)
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let records: Vec<UserRecord> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        Ok(records
            .into_iter()
            .map(UserRecord::into_user)
            .collect::<Result<_, _>>()?)
    }

    /// Replaces a user's password and ends its sessions: a password is
    /// changed when it may be known to someone else, whose sessions must
    /// not outlive it.
    pub async fn set_password(
        &self,
        name: &UserName,
        password: &Password,
    ) -> Result<(), UserError> {
        let hash = hash_password(password).await?;
        // Sessions end first: if their store fails, the old password and
        // its sessions stay together rather than the sessions outliving it.
        self.delete_sessions_of(name).await?;
        self.update(
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            name,
            &hash,
        )
        .await?;
        // And again: a sign-in with the old password may have slipped in
        // between.
        self.delete_sessions_of(name).await?;
        Ok(())
    }

    /// Changes what a user may do; sessions keep going with the new role,
    /// since each request reads it afresh.
    pub async fn set_role(&self, name: &UserName, role: Role) -> Result<(), UserError> {
        self.update(
            "UPDATE users SET role = $2 WHERE name = $1",
            name,
            role.as_str(),
        )
        .await
    }

    /// Stops a user from signing in and ends its sessions; the row stays so
    /// the audit log's entries keep their author.
    pub async fn disable(&self, name: &UserName) -> Result<(), UserError> {
        self.set_disabled(name, true).await?;
        self.delete_sessions_of(name).await?;
        Ok(())
    }

    /// Lets a disabled user sign in again.
    pub async fn enable(&self, name: &UserName) -> Result<(), UserError> {
        self.set_disabled(name, false).await
    }

    async fn set_disabled(&self, name: &UserName, disabled: bool) -> Result<(), UserError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1")
                .bind(name.as_str())
                .bind(disabled)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(done, name)
    }

    /// Deletes a user and its sessions (in SQL by the foreign key too).
    /// Prefer [`UserStore::disable`], which keeps the name meaningful in
    /// the audit log.
    pub async fn remove(&self, name: &UserName) -> Result<(), UserError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM users WHERE name = $1")
                .bind(name.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(done, name)?;
        self.delete_sessions_of(name).await?;
        Ok(())
    }

    async fn update(
        &self,
        sql: &'static str,
        name: &UserName,
        value: &str,
    ) -> Result<(), UserError> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query(sql)
                .bind(name.as_str())
                .bind(value)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(done, name)
    }

    /// The user, if `password` is theirs and they are not disabled; `None`
    /// for a wrong password, a disabled user and an unknown name alike, so
    /// a sign-in form cannot tell which. Every outcome costs one hash
    /// verification, so the timing does not tell either.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<User>, UserError> {
        // Names the rules refuse cannot exist; still spend the hash.
        let record: Option<LoginRecord> = match UserName::new(name) {
            Ok(name) => on_pool!(&self.db, pool => {
                sqlx::query_as(
                    "SELECT name, role, created_at, disabled, password_hash \
                     FROM users WHERE name = $1",
                )
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
            }),
            Err(_) => None,
        };
        let Some(record) = record else {
            verify_hash(password, None).await?;
            return Ok(None);
        };
        let matches = verify_hash(password, Some(record.password_hash)).await?;
        if !matches || record.disabled {
            return Ok(None);
        }
        let user = UserRecord {
            name: record.name,
            role: record.role,
            created_at: record.created_at,
            disabled: record.disabled,
        }
        .into_user()?;
        Ok(Some(user))
    }

    /// Starts a session for `user` lasting `ttl`; returns the session id
    /// (for the cookie, never stored as is) and the session's CSRF token
    /// (for forms).
    pub async fn create_session(
        &self,
        user: &UserName,
        ttl: Duration,
    ) -> Result<(String, String), UserError> {
        self.create_session_from(user, ttl, "").await
    }

    /// [`UserStore::create_session`] noting where it was started from
    /// (see [`crate::auth::sessions::agent_summary`]). A user's least
    /// recently used sessions beyond the store's cap end.
    pub async fn create_session_from(
        &self,
        user: &UserName,
        ttl: Duration,
        agent: &str,
    ) -> Result<(String, String), UserError> {
        let csrf = random_token();
        let data = SessionData {
            csrf: csrf.clone(),
            agent: agent.to_owned(),
        };
        // A zero time to live (a test's "already ended") is the shortest
        // one a store takes.
        let ttl = ttl.max(Duration::from_millis(1));
        let new = self
            .sessions
            .create(user.as_str(), ttl, &data.encode())
            .await
            .map_err(|err| match err {
                SessionError::UnknownUser(_) => UserError::NotFound(user.clone()),
                err => UserError::Sessions(err),
            })?;
        if new.evicted > 0 {
            tracing::info!(user = %user, ended = new.evicted, "ended the least recently used sessions beyond the cap");
        }
        Ok((new.id, csrf))
    }

    /// The signed-in user and the session's CSRF token, if `id` names a
    /// live session of an enabled user.
    ///
    /// When a store fails, a session read successfully within
    /// [`OUTAGE_GRACE`] is still honoured (see there).
    pub async fn session(&self, id: &str) -> Result<Option<(User, String)>, UserError> {
        Ok(self.signed_in(id).await?.map(|s| (s.user, s.csrf)))
    }

    /// [`UserStore::session`] with the session's handle and whether this
    /// read moved its end.
    pub async fn signed_in(&self, id: &str) -> Result<Option<SignedIn>, UserError> {
        let key = coord::sessions::key_of(id);
        match self.read_session(id).await {
            Ok(Some((found, expires_at))) => {
                self.remember(&key, &found, expires_at);
                Ok(Some(found))
            }
            Ok(None) => {
                self.forget(&key);
                Ok(None)
            }
            Err(err) if err.is_outage() => {
                let memo = self.remembered().get(&key).cloned();
                match memo {
                    Some((found, at, expires_at))
                        if at.elapsed() < self.grace && now_ms() < expires_at =>
                    {
                        tracing::warn!(error = %err, "a store did not answer; using the session as last read");
                        Ok(Some(SignedIn {
                            touched: false,
                            ..found
                        }))
                    }
                    _ => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The session and when it ends.
    async fn read_session(&self, id: &str) -> Result<Option<(SignedIn, i64)>, UserError> {
        let Some(mut session) = self.sessions.get(id).await? else {
            return Ok(None);
        };
        // Data another program left on a shared store is no sign-in here.
        let Some(data) = SessionData::decode(&session.data) else {
            return Ok(None);
        };
        let Ok(name) = UserName::new(session.user.clone()) else {
            return Ok(None);
        };
        let user = match self.get(&name).await? {
            Some(user) if !user.disabled => user,
            _ => return Ok(None),
        };
        // Use slides a session's end, never past a month after sign-in: a
        // stolen cookie used now and then must still run out.
        let now = now_ms();
        let max_age = i64::try_from(crate::config::MAX_SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
        let left_ms = session.created_at.saturating_add(max_age) - now;
        if left_ms <= 0 {
            self.sessions.revoke(id).await?;
            return Ok(None);
        }
        let mut touched = false;
        if now - session.last_seen_at >= LAST_SEEN_GRANULARITY_MS {
            let ttl = self
                .session_ttl
                .min(std::time::Duration::from_millis(left_ms.unsigned_abs()));
            match self.sessions.touch(id, ttl).await? {
                Some(moved) => {
                    session = moved;
                    touched = true;
                }
                None => return Ok(None),
            }
        }
        let found = SignedIn {
            user,
            csrf: data.csrf,
            handle: session.handle,
            touched,
        };
        Ok(Some((found, session.expires_at)))
    }

    /// Ends one session (sign-out); ending one that does not exist is not
    /// an error, so signing out twice is harmless.
    pub async fn delete_session(&self, id: &str) -> Result<(), UserError> {
        self.forget(&coord::sessions::key_of(id));
        self.sessions.revoke(id).await?;
        Ok(())
    }

    /// Ends every session of a user ("sign out everywhere"); returns how
    /// many there were.
    pub async fn delete_sessions_of(&self, user: &UserName) -> Result<u64, UserError> {
        self.forget_user(user);
        Ok(self.sessions.revoke_all(user.as_str()).await?)
    }

    /// Ends the session of `user` named by `handle` (the Users page's
    /// revoke button); false when it has none by that handle.
    pub async fn revoke_session(&self, user: &UserName, handle: &str) -> Result<bool, UserError> {
        let ended = self.sessions.revoke_handle(user.as_str(), handle).await?;
        self.remembered()
            .retain(|_, (found, _, _)| !(found.user.name == *user && found.handle == handle));
        Ok(ended)
    }

    /// The active sessions of `user`, most recently used first, at most
    /// `limit` (and [`coord::sessions::MAX_LISTED`]), and whether there
    /// are more.
    pub async fn sessions_of(
        &self,
        user: &UserName,
        limit: usize,
    ) -> Result<(Vec<SessionView>, bool), UserError> {
        let SessionList { sessions, more } = self.sessions.list(user.as_str(), limit).await?;
        let views = sessions
            .into_iter()
            .map(|s| SessionView {
                agent: SessionData::decode(&s.data)
                    .map(|d| d.agent)
                    .unwrap_or_default(),
                handle: s.handle,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
            })
            .collect();
        Ok((views, more))
    }

    /// Deletes sessions expired at `now` (ms since the epoch); returns how
    /// many. Lookups ignore them anyway; this keeps the store small.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, UserError> {
        Ok(self.sessions.sweep(now).await?)
    }

    /// Records that an API token was used at `now` (`sql` binds the key as
    /// `$1` and the time as `$2`).
    pub(crate) async fn touch(
        &self,
        sql: &'static str,
        key: &str,
        now: i64,
    ) -> Result<(), UserError> {
        on_pool!(&self.db, pool => {
            sqlx::query(sql).bind(key).bind(now).execute(pool).await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("viewer, operator or admin"));
    }

    #[test]
    fn names_are_checked() {
        for good in [
            "a",
            "ada",
            "ada.lovelace@example.com",
            "ops_1-x",
            &"n".repeat(64),
        ] {
            assert!(UserName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ada!", "é", "a/b", "<x>", &"n".repeat(65)] {
            assert!(
                matches!(UserName::new(bad), Err(UserError::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_are_checked_and_never_shown() {
        assert!(matches!(
            Password::new("short"),
            Err(UserError::PasswordTooShort)
        ));
        for weak in [
            "aaaaaaaaaaaa",
            "            ",
            "abababababab",
            "123412341234",
            "abcdefghijklm",
            "QWERTYUIOPAS",
            "345678901234",
            "Password1234!",
            "admin-2024-2025",
            "1234567890!@#$",
        ] {
            let err = Password::new(weak).expect_err(weak);
            assert!(
                matches!(err, UserError::PasswordTooWeak(_)),
                "{weak}: {err}"
            );
            assert!(err.to_string().contains("too easy to guess"), "{err}");
        }
        for fine in [
            "correct horse battery",
            "tr0ub4dor&3xyz",
            "Passwordless-sky-7",
        ] {
            Password::new(fine).expect(fine);
        }
        assert!(matches!(
            Password::new("x".repeat(1025)),
            Err(UserError::PasswordTooLong)
        ));
        let password = Password::new("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
        let first = FirstAdmin {
            name: UserName::new("admin").unwrap(),
            password,
        };
        assert!(!format!("{first:?}").contains("horse"));
        let generated = Password::generate();
        assert_eq!(generated.expose().len(), GENERATED_PASSWORD_CHARS);
        assert!(
            generated
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert!(Password::new(generated.expose()).is_ok());
        assert_ne!(generated, Password::generate());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_with_distinct_salts() {
        let password = Password::new("correct horse battery").unwrap();
        let a = hash_password(&password).await.unwrap();
        let b = hash_password(&password).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("horse"));
        assert!(
            verify_hash("correct horse battery", Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_hash("wrong horse battery", Some(a)).await.unwrap());
        assert!(!verify_hash("correct horse battery", None).await.unwrap());
        assert!(matches!(
            verify_hash("x", Some("not a hash".into())).await,
            Err(UserError::Db(DbError::Corrupt(_)))
        ));
    }

    #[test]
    fn session_ids_are_random_and_stored_hashed() {
        let id = random_token();
        assert_eq!(id.len(), 43, "32 bytes, unpadded base64url");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(id, random_token());
        assert_ne!(session_key(&id), id);
        assert_eq!(session_key(&id), session_key(&id));
    }
}
