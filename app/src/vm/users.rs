//! View model of the Users page (`/users`): the accounts an admin manages,
//! with their roles and whether they may sign in.
//!
//! Plain data filled by the server from its user store, so the page can be
//! rendered and tested without a database. Names are checked by the server
//! (letters, digits and `_ . @ -`), and are still only ever rendered as
//! text and attribute values, which leptos escapes.

/// The roles an account can have, least first, as the forms offer them.
pub const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

/// One account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRow {
    /// Its name.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// A disabled account cannot sign in.
    pub disabled: bool,
    /// Whether it is the signed-in admin's own account, which they cannot
    /// demote or disable (the server refuses it too).
    pub is_self: bool,
    /// Its active sign-in sessions, most recently used first (at most
    /// [`SESSIONS_SHOWN`]).
    pub sessions: Vec<SessionRow>,
    /// True when it has more active sessions than are shown.
    pub more_sessions: bool,
}

/// Sessions shown per account: a person has a few; more means a script
/// signing in on every run, which "Revoke all" deals with.
pub const SESSIONS_SHOWN: usize = 20;

/// One active sign-in session of an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRow {
    /// Its non-secret handle (16 hex digits), the revoke button's URL.
    pub handle: String,
    /// When it was started (ms since the epoch).
    pub created_at: i64,
    /// When it was last used.
    pub last_seen_at: i64,
    /// When it ends unless used again.
    pub expires_at: i64,
    /// The browser and address it was started from.
    pub agent: String,
    /// Whether it is the session showing this page.
    pub is_current: bool,
}

/// Everything the Users page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersVm {
    /// Every account, by name.
    pub rows: Vec<UserRow>,
    /// The notice of the action that led here ("User ada created …").
    pub notice: Option<String>,
    /// Why sessions are not listed, when their store did not answer (the
    /// accounts still are, so an admin can act on them in an outage).
    pub sessions_problem: Option<String>,
}
