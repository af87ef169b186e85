//! What every page knows about the request it answers: who is signed in,
//! the session's CSRF token for its forms, and the firing-alerts banner;
//! and the sign-in page's model, the one page answered without a session.

use crate::vm::alerts::AlertBannerVm;

/// The signed-in user, as the header shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserVm {
    /// Their name.
    pub name: String,
    /// `viewer`, `operator` or `admin`: the pages hide buttons the role
    /// may not use (the server refuses them anyway).
    pub role: String,
    /// Whether they signed in with a form and can sign out (a user named by
    /// a trusted proxy cannot: the proxy would sign them in again).
    pub can_sign_out: bool,
}

impl UserVm {
    /// Whether the user may act on queues, jobs, rate limits and alerts.
    pub fn is_operator(&self) -> bool {
        matches!(self.role.as_str(), "operator" | "admin")
    }

    /// Whether the user may manage users, alert rules and settings.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The per-request part of every page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageCtx {
    /// Who is signed in (`None` on the sign-in page and errors answered
    /// before sign-in).
    pub user: Option<UserVm>,
    /// The session's CSRF token, put in every state-changing form; empty
    /// without a session.
    pub csrf_token: String,
    /// The firing alerts, shown above every page's content.
    pub banner: AlertBannerVm,
}

impl PageCtx {
    /// The role pages hide buttons by (`none` when nobody is signed in).
    pub fn role(&self) -> &str {
        self.user.as_ref().map_or("none", |u| u.role.as_str())
    }

    /// Whether the signed-in user is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(UserVm::is_admin)
    }
}

/// The sign-in page's model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginVm {
    /// The name typed last time, so a wrong password does not clear it.
    pub username: String,
    /// Where to go once signed in (a local path).
    pub next: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// A note above the form ("You signed out.").
    pub notice: Option<String>,
}
