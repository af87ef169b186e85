//! The admin's Users page and its forms, and the accounts' JSON twin.
//!
//! Every form posts, is recorded in the audit log (never with a password)
//! and redirects back (303) with a notice, like the other buttons
//! ([`crate::queues::routes::forms`]). Refusals are errors with the reason:
//! a bad name or role, a short password, a taken name (409), an unknown
//! user (404), and an admin demoting or disabling their own account (409),
//! so a deployment never loses its last way in through a slip.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::audit::{Actor, AuditEntry};
use crate::auth::CurrentUser;
use crate::auth::users::{Password, Role, SessionView, User, UserError, UserName};
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path};
use crate::http::flash::Flash;
use crate::http::forms::{ActionFields, redirect};
use crate::http::page::Page;
use crate::state::AppState;

/// Where the page's forms come back to.
const USERS_PAGE: &str = "/users";

/// The audit log's kind of target.
const TARGET_KIND: &str = "user";

/// The value of a form field, if sent.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The role a form names; a missing field is refused like an unknown role.
fn role_field(pairs: &[(String, String)]) -> Result<Role, AppError> {
    Ok(field(pairs, "role")
        .unwrap_or_default()
        .trim()
        .parse::<Role>()?)
}

/// Where to go back to: the form's local `back`, else the Users page.
fn back(pairs: Vec<(String, String)>) -> String {
    ActionFields::from_pairs(pairs).back_or(USERS_PAGE.to_owned())
}

/// "an admin", "a viewer".
fn with_article(role: Role) -> String {
    match role {
        Role::Admin | Role::Operator => format!("an {role}"),
        Role::Viewer => format!("a {role}"),
    }
}

/// The refusal of an admin acting on their own account.
fn not_yourself(what: &str) -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        format!("you cannot {what} your own account; ask another admin"),
    )
}

/// The row of the page for `user`, without its sessions.
fn row(user: User, current: &CurrentUser) -> app::UserRow {
    app::UserRow {
        is_self: user.name == current.name,
        name: user.name.to_string(),
        role: user.role.as_str().to_owned(),
        created_at: user.created_at,
        disabled: user.disabled,
        sessions: Vec::new(),
        more_sessions: false,
    }
}

/// The handle of the session this request came with, to mark it "this
/// session" (the cookie itself never leaves the request).
fn current_handle(headers: &HeaderMap) -> Option<String> {
    crate::auth::session_id(headers)
        .map(|id| coord::sessions::handle_of(&coord::sessions::key_of(id)))
}

/// The page's rows: every account with its active sessions (one listing
/// per account, each at most [`app::SESSIONS_SHOWN`]), and why sessions
/// are missing when their store (Redis) failed: the accounts are listed
/// anyway, so an admin can still disable one during an outage.
async fn rows(
    state: &AppState,
    current: &CurrentUser,
    headers: &HeaderMap,
) -> Result<(Vec<app::UserRow>, Option<String>), AppError> {
    let users = state.users.list().await?;
    let this = current_handle(headers);
    let mut rows = Vec::with_capacity(users.len());
    let mut problem = None;
    for user in users {
        let listed = match problem {
            Some(_) => Ok((Vec::new(), false)),
            None => {
                state
                    .users
                    .sessions_of(&user.name, app::SESSIONS_SHOWN)
                    .await
            }
        };
        let (sessions, more) = listed.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "the Users page could not list sessions");
            problem = Some(
                "Sessions could not be read: their store did not answer. Accounts are listed without them."
                    .to_owned(),
            );
            (Vec::new(), false)
        });
        let mut row = row(user, current);
        row.sessions = sessions
            .into_iter()
            .map(|s| app::SessionRow {
                is_current: this.as_deref() == Some(s.handle.as_str()),
                handle: s.handle,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                agent: s.agent,
            })
            .collect();
        row.more_sessions = more;
        rows.push(row);
    }
    Ok((rows, problem))
}

/// Records how an action ended (with its detail when it was done) and
/// hands its answer back.
async fn audited(
    state: &AppState,
    entry: AuditEntry,
    result: Result<(Response, String), AppError>,
) -> Result<Response, AppError> {
    match result {
        Ok((response, detail)) => {
            let entry = AuditEntry {
                detail: Some(detail),
                ..entry
            };
            state.audit.outcome(entry, Ok(response)).await
        }
        Err(err) => state.audit.outcome(entry, Err(err)).await,
    }
}

/// `GET /users`: every account, the buttons acting on them, and the form
/// adding one.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    current: CurrentUser,
    headers: HeaderMap,
    Flash(notice): Flash,
) -> Result<Response, AppError> {
    let shown = notice.is_some();
    let (rows, sessions_problem) = rows(&state, &current, &headers).await?;
    let vm = app::UsersVm {
        rows,
        notice,
        sessions_problem,
    };
    Ok(crate::http::flash::with_flash_cleared(
        Html(app::render_users_page(&vm, page.ctx())),
        shown,
    ))
}

/// `GET /api/users`: every account (names, roles, creation time in ms
/// since the epoch, whether disabled), for programs.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let users = state.users.list().await?;
    let users: Vec<Value> = users
        .into_iter()
        .map(|u| {
            json!({
                "name": u.name.as_str(),
                "role": u.role.as_str(),
                "createdAt": u.created_at,
                "disabled": u.disabled,
            })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// The Users page with `notice`, answered directly rather than through a
/// redirect: the notice may hold a generated password, which must not
/// travel in a cookie. Never cached.
async fn page_now(
    state: &AppState,
    page: &Page,
    current: &CurrentUser,
    headers: &HeaderMap,
    notice: String,
) -> Result<Response, AppError> {
    let (rows, sessions_problem) = rows(state, current, headers).await?;
    let vm = app::UsersVm {
        rows,
        notice: Some(notice),
        sessions_problem,
    };
    // The page may show a generated password once: it is never stored,
    // as no answer but the assets is (`http::security::storage_and_transport`).
    Ok(Html(app::render_users_page(&vm, page.ctx())).into_response())
}

/// `POST /users` with `name`, `role` and `password`: adds an account. An
/// empty password is generated and shown once, on the page this answers
/// (not through the notice cookie other buttons use).
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    page: Page,
    current: CurrentUser,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let typed = field(&pairs, "name").unwrap_or_default().trim().to_owned();
    let entry = AuditEntry::new(&actor, "user.create", TARGET_KIND, &typed);
    let result = async {
        let name = UserName::new(typed.clone())?;
        let role = role_field(&pairs)?;
        let given = field(&pairs, "password").unwrap_or_default();
        let (password, generated) = if given.is_empty() {
            (Password::generate(), true)
        } else {
            (Password::new(given)?, false)
        };
        state.users.add(&name, &password, role).await?;
        tracing::info!(user = %name, %role, actor = %actor.name, "user created");
        let notice = if generated {
            format!(
                "User {name} created with password {}; it is not shown again.",
                password.expose()
            )
        } else {
            format!("User {name} created as {}.", with_article(role))
        };
        let detail = if generated {
            format!("role {role}, password generated")
        } else {
            format!("role {role}")
        };
        let response = if generated {
            page_now(&state, &page, &current, &headers, notice).await?
        } else {
            redirect(&back(pairs), &notice)
        };
        Ok::<_, AppError>((response, detail))
    }
    .await;
    audited(&state, entry, result).await
}

/// `POST /users/{name}/role` with `role`: changes what an account may do,
/// at once (sessions read the role on every request). An admin cannot
/// demote themself.
pub async fn set_role(
    State(state): State<AppState>,
    actor: Actor,
    current: CurrentUser,
    Path(typed): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "user.set_role", TARGET_KIND, &typed);
    let result = async {
        let name = UserName::new(typed.clone())?;
        let role = role_field(&pairs)?;
        let user = state
            .users
            .get(&name)
            .await?
            .ok_or_else(|| crate::auth::users::UserError::NotFound(name.clone()))?;
        if name == current.name && role != user.role {
            return Err(not_yourself("demote"));
        }
        let notice = if role == user.role {
            format!("Nothing changed: {name} is {} already.", with_article(role))
        } else {
            state.users.set_role(&name, role).await?;
            tracing::info!(user = %name, from = %user.role, to = %role, actor = %actor.name, "role changed");
            format!("{name} is now {}.", with_article(role))
        };
        Ok::<_, AppError>((
            redirect(&back(pairs), &notice),
            format!("{} → {role}", user.role),
        ))
    }
    .await;
    audited(&state, entry, result).await
}

/// `POST /users/{name}/disable`: the account can no longer sign in, and
/// its sessions end now. An admin cannot disable themself.
pub async fn disable(
    State(state): State<AppState>,
    actor: Actor,
    current: CurrentUser,
    Path(typed): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "user.disable", TARGET_KIND, &typed);
    let result = async {
        let name = UserName::new(typed.clone())?;
        if name == current.name {
            return Err(not_yourself("disable"));
        }
        state.users.disable(&name).await?;
        tracing::info!(user = %name, actor = %actor.name, "user disabled");
        Ok::<_, AppError>(redirect(
            &back(pairs),
            &format!(
                "User {name} is disabled: they cannot sign in, and their sessions have ended."
            ),
        ))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// `POST /users/{name}/enable`: a disabled account may sign in again.
pub async fn enable(
    State(state): State<AppState>,
    actor: Actor,
    Path(typed): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let entry = AuditEntry::new(&actor, "user.enable", TARGET_KIND, &typed);
    let result = async {
        let name = UserName::new(typed.clone())?;
        state.users.enable(&name).await?;
        tracing::info!(user = %name, actor = %actor.name, "user enabled");
        Ok::<_, AppError>(redirect(
            &back(pairs),
            &format!("User {name} is enabled: they can sign in again."),
        ))
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// The account a sessions route names, which must exist (so a typo is a
/// 404, not an empty list).
async fn existing(state: &AppState, typed: &str) -> Result<UserName, AppError> {
    let name = UserName::new(typed.to_owned())?;
    state
        .users
        .get(&name)
        .await?
        .ok_or_else(|| UserError::NotFound(name.clone()))?;
    Ok(name)
}

/// Ends one session by handle; refused (404) when the user has none by it.
async fn revoke_one(
    state: &AppState,
    actor: &Actor,
    typed: &str,
    handle: &str,
) -> Result<UserName, AppError> {
    let entry = AuditEntry::new(actor, "session.revoke", TARGET_KIND, typed);
    let entry = AuditEntry {
        detail: Some(format!(
            "session {}",
            handle.chars().take(16).collect::<String>()
        )),
        ..entry
    };
    let result = async {
        let name = existing(state, typed).await?;
        if !state.users.revoke_session(&name, handle).await? {
            return Err(AppError::new(
                StatusCode::NOT_FOUND,
                format!("{name} has no active session {handle}; it may have ended already"),
            ));
        }
        tracing::info!(user = %name, session = %handle, actor = %actor.name, "session revoked");
        Ok(name)
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// Ends every session of an account; returns how many there were.
async fn revoke_every(
    state: &AppState,
    actor: &Actor,
    typed: &str,
) -> Result<(UserName, u64), AppError> {
    let entry = AuditEntry::new(actor, "session.revoke_all", TARGET_KIND, typed);
    let result = async {
        let name = existing(state, typed).await?;
        let ended = state.users.delete_sessions_of(&name).await?;
        tracing::info!(user = %name, ended, actor = %actor.name, "sessions revoked");
        Ok::<_, AppError>(((name, ended), format!("{ended} session(s) ended")))
    }
    .await;
    match result {
        Ok((done, detail)) => {
            let entry = AuditEntry {
                detail: Some(detail),
                ..entry
            };
            state.audit.outcome(entry, Ok(done)).await
        }
        Err(err) => state.audit.outcome(entry, Err(err)).await,
    }
}

/// A session as the API shows it (never its id or key: the handle is
/// what revoking takes).
fn session_json(session: &SessionView, this: Option<&str>) -> Value {
    json!({
        "handle": session.handle,
        "createdAt": session.created_at,
        "lastSeenAt": session.last_seen_at,
        "expiresAt": session.expires_at,
        "agent": session.agent,
        "current": this == Some(session.handle.as_str()),
    })
}

/// `GET /api/users/{name}/sessions`: the account's active sessions, most
/// recently used first, at most 100 (`more` says whether there are others).
pub async fn api_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(typed): Path<String>,
) -> Result<Json<Value>, AppError> {
    let name = existing(&state, &typed).await?;
    let (sessions, more) = state
        .users
        .sessions_of(&name, coord::sessions::MAX_LISTED)
        .await?;
    let this = current_handle(&headers);
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| session_json(s, this.as_deref()))
        .collect();
    Ok(Json(json!({
        "user": name.as_str(),
        "sessions": sessions,
        "more": more,
    })))
}

/// `POST /users/{name}/sessions/{handle}/revoke`: ends that session (the
/// browser holding it is signed out at its next request).
pub async fn revoke_session(
    State(state): State<AppState>,
    actor: Actor,
    Path((typed, handle)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let name = revoke_one(&state, &actor, &typed, &handle).await?;
    Ok(redirect(
        &back(pairs),
        &format!("Session {handle} of {name} is revoked: that browser is signed out."),
    ))
}

/// `POST /api/users/{name}/sessions/{handle}/revoke`: the JSON twin.
pub async fn api_revoke_session(
    State(state): State<AppState>,
    actor: Actor,
    Path((typed, handle)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let name = revoke_one(&state, &actor, &typed, &handle).await?;
    Ok(Json(json!({
        "user": name.as_str(),
        "handle": handle,
        "revoked": true,
    })))
}

/// `POST /users/{name}/sessions/revoke`: ends every session of the
/// account (the admin's own included, when it is theirs).
pub async fn revoke_sessions(
    State(state): State<AppState>,
    actor: Actor,
    Path(typed): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let (name, ended) = revoke_every(&state, &actor, &typed).await?;
    Ok(redirect(
        &back(pairs),
        &format!("Revoked {ended} session(s) of {name}: they must sign in again."),
    ))
}

/// `POST /api/users/{name}/sessions/revoke`: the JSON twin.
pub async fn api_revoke_sessions(
    State(state): State<AppState>,
    actor: Actor,
    Path(typed): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (name, ended) = revoke_every(&state, &actor, &typed).await?;
    Ok(Json(json!({ "user": name.as_str(), "ended": ended })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_from_the_form() {
        let pairs = |role: &str| vec![("role".to_owned(), role.to_owned())];
        assert_eq!(role_field(&pairs("operator")).unwrap(), Role::Operator);
        assert_eq!(
            role_field(&pairs("root")).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            role_field(&[]).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn articles_read_well() {
        assert_eq!(with_article(Role::Admin), "an admin");
        assert_eq!(with_article(Role::Operator), "an operator");
        assert_eq!(with_article(Role::Viewer), "a viewer");
    }
}
