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
}

/// Everything the Users page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersVm {
    /// Every account, by name.
    pub rows: Vec<UserRow>,
    /// The notice of the action that led here ("User ada created …").
    pub notice: Option<String>,
}
