//! The Users page (`/users`, admins only): every account with its role and
//! status, buttons to change a role or disable and enable an account, each
//! account's active sign-in sessions with buttons to revoke one or all, and
//! the form adding an account.
//!
//! Not live: accounts change when an admin changes them, here. Every form
//! posts, then the server redirects back with a notice; each carries the
//! session's CSRF token and where to come back to.

use leptos::prelude::*;

use crate::vm::session::PageCtx;
use crate::vm::users::{ROLES, SessionRow, UserRow, UsersVm};
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::shell::{Frame, Notice, Section, document};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::At;

/// The Users page (`/users`): every account, and the form adding one.
pub fn render_users_page(vm: &UsersVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    document(
        page,
        Frame::new("Users · Switchyard", Section::Users),
        move || {
            view! {
                <section class="users-page">
                    <h1>"Users"</h1>
                    <Notice notice=vm.notice.clone() />
                    <UsersTable vm=vm.clone() />
                    <h2>"Sign-in sessions"</h2>
                    <SessionsSection rows=vm.rows problem=vm.sessions_problem />
                    <h2>"New user"</h2>
                    <NewUserForm />
                </section>
            }
        },
    )
}

/// Where the page's forms come back to.
const USERS_PAGE: &str = "/users";

/// The role options of a select, `selected` chosen.
fn role_options(selected: &str) -> impl IntoView + use<> {
    ROLES
        .into_iter()
        .map(|role| {
            let is = role == selected;
            view! {
                <option value=role selected=is>
                    {role}
                </option>
            }
        })
        .collect_view()
}

/// Every account, or why there is none.
#[component]
fn UsersTable(vm: UsersVm) -> impl IntoView {
    if vm.rows.is_empty() {
        return view! {
            <Empty test_id="users-empty">
                "No accounts yet: add one below. Until then only the first admin (from SWITCHYARD_ADMIN_USER, or the users command) can sign in."
            </Empty>
        }
        .into_any();
    }
    view! {
        <Table
            class="users"
            test_id="users-table"
            head={view! {
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"Created"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Actions"</th>
                </tr>
            }}
        >
            {vm
                .rows
                .into_iter()
                .map(|row| view! { <UserTableRow row /> })
                .collect_view()}
        </Table>
    }
    .into_any()
}

#[component]
fn UserTableRow(row: UserRow) -> impl IntoView {
    let (status_class, status) = if row.disabled {
        ("badge user-status disabled", "disabled")
    } else {
        ("badge user-status enabled", "enabled")
    };
    let row_class = if row.disabled {
        "user disabled"
    } else {
        "user"
    };
    let actions = if row.is_self {
        view! {
            <span class="muted" data-test-id="user-self">
                "This is you: another admin can change your role or disable you."
            </span>
        }
        .into_any()
    } else {
        let role_action = format!("{USERS_PAGE}/{}/role", row.name);
        let label = format!("Role of {}", row.name);
        let toggle = if row.disabled {
            view! {
                <ActionForm
                    action=format!("{USERS_PAGE}/{}/enable", row.name)
                    back=USERS_PAGE.to_string()
                    label="Enable"
                    test_id="user-enable".to_string()
                    needs="admin"
                />
            }
            .into_any()
        } else {
            view! {
                <ActionForm
                    action=format!("{USERS_PAGE}/{}/disable", row.name)
                    back=USERS_PAGE.to_string()
                    label="Disable"
                    class="danger"
                    test_id="user-disable".to_string()
                    confirm=format!("Disable {}? Their sessions end at once.", row.name)
                    needs="admin"
                />
            }
            .into_any()
        };
        view! {
            <form method="post" action=role_action class="inline needs-admin role-change">
                <PostFields back=USERS_PAGE />
                <select name="role" aria-label=label data-test-id="user-role-select">
                    {role_options(&row.role)}
                </select>
                " "
                <button type="submit" class="button" data-test-id="user-change-role">
                    "Change role"
                </button>
            </form>
            " "
            {toggle}
        }
        .into_any()
    };
    let (name, role) = (row.name.clone(), row.role.clone());
    view! {
        <tr
            class=row_class
            data-test-id="user-row"
            data-name=name.clone()
            data-id=name
            data-role=role
            data-disabled=row.disabled.to_string()
        >
            <th scope="row" data-test-id="user-name-cell">
                <code>{row.name}</code>
            </th>
            <td>
                <span class="badge role" data-test-id="user-role-cell">
                    {row.role}
                </span>
            </td>
            <td>
                <At at=row.created_at />
            </td>
            <td>
                <span class=status_class data-test-id="user-status">
                    {status}
                </span>
            </td>
            <td class="actions">{actions}</td>
        </tr>
    }
}

/// Every account's active sessions, or that there are none.
#[component]
fn SessionsSection(rows: Vec<UserRow>, problem: Option<String>) -> impl IntoView {
    if let Some(problem) = problem {
        return view! {
            <p class="status down" role="alert" data-test-id="sessions-problem">
                {problem}
            </p>
        }
        .into_any();
    }
    let with_sessions: Vec<UserRow> = rows
        .into_iter()
        .filter(|r| !r.sessions.is_empty())
        .collect();
    if with_sessions.is_empty() {
        return view! {
            <Empty test_id="sessions-empty">"Nobody is signed in with a session."</Empty>
        }
        .into_any();
    }
    with_sessions
        .into_iter()
        .map(|row| view! { <UserSessions row /> })
        .collect_view()
        .into_any()
}

/// One account's sessions, with "Revoke all".
#[component]
fn UserSessions(row: UserRow) -> impl IntoView {
    let count = row.sessions.len();
    let more = row.more_sessions.then(|| {
        view! {
            <p class="muted" data-test-id="sessions-more">
                {format!(
                    "Only the {count} most recently used are shown; Revoke all ends every one.",
                )}
            </p>
        }
    });
    let revoke_all = view! {
        <ActionForm
            action=format!("{USERS_PAGE}/{}/sessions/revoke", row.name)
            back=USERS_PAGE.to_string()
            label_text=format!("Revoke all of {}", row.name)
            class="danger"
            test_id="sessions-revoke-all".to_string()
            confirm=format!("End every session of {}? They must sign in again.", row.name)
            needs="admin"
        />
    };
    let user = row.name.clone();
    view! {
        <div class="user-sessions" data-test-id="user-sessions" data-name=row.name.clone()>
            <h3>
                <code>{row.name.clone()}</code>
                " "
                {revoke_all}
            </h3>
            <Table
                class="sessions"
                test_id="sessions-table"
                head={view! {
                    <tr>
                        <th scope="col">"Browser"</th>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"Ends"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                }}
            >
                {row
                    .sessions
                    .into_iter()
                    .map(|session| view! { <SessionTableRow user=user.clone() session /> })
                    .collect_view()}
            </Table>
            {more}
        </div>
    }
}

#[component]
fn SessionTableRow(user: String, session: SessionRow) -> impl IntoView {
    let agent = if session.agent.is_empty() {
        "unknown client".to_owned()
    } else {
        session.agent.clone()
    };
    let current = session.is_current.then(|| {
        view! {
            " "
            <span class="badge current-session" data-test-id="session-current">
                "this session"
            </span>
        }
    });
    view! {
        <tr
            class="session"
            data-test-id="session-row"
            data-user=user.clone()
            data-handle=session.handle.clone()
            data-current=session.is_current.to_string()
        >
            <th scope="row">{agent}{current}</th>
            <td>
                <At at=session.created_at />
            </td>
            <td>
                <At at=session.last_seen_at />
            </td>
            <td>
                <At at=session.expires_at />
            </td>
            <td class="actions">
                <ActionForm
                    action=format!("{USERS_PAGE}/{user}/sessions/{}/revoke", session.handle)
                    back=USERS_PAGE.to_string()
                    label="Revoke"
                    class="danger"
                    test_id="session-revoke".to_string()
                    needs="admin"
                />
            </td>
        </tr>
    }
}

/// The form adding an account. Left empty, the password is generated and
/// shown once in the notice after the redirect.
#[component]
fn NewUserForm() -> impl IntoView {
    view! {
        <form
            method="post"
            action=USERS_PAGE
            class="new-user needs-admin"
            data-test-id="new-user-form"
        >
            <PostFields back=USERS_PAGE />
            <label>
                "Name"
                <input
                    type="text"
                    name="name"
                    required
                    maxlength="64"
                    pattern="[A-Za-z0-9_.@\\-]+"
                    autocomplete="off"
                    title="1 to 64 characters of A-Z, a-z, 0-9 and _ . @ -"
                    data-test-id="new-user-name"
                />
            </label>
            <label>
                "Role"
                <select name="role" data-test-id="new-user-role">
                    {role_options("viewer")}
                </select>
            </label>
            <label>
                "Password"
                <input
                    type="password"
                    name="password"
                    minlength="12"
                    maxlength="1024"
                    autocomplete="new-password"
                    placeholder="empty: generate one"
                    data-test-id="new-user-password"
                />
            </label>
            <button type="submit" class="button primary" data-test-id="new-user-submit">
                "Create user"
            </button>
        </form>
        <p class="muted">
            "A password needs at least 12 characters. Leave it empty to have one generated: it is shown once, after the account is created."
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn accounts_are_listed_when_sessions_cannot_be_read() {
        let vm = UsersVm {
            sessions_problem: Some("Sessions could not be read.".into()),
            ..users_vm(vec![user_row("ada", "operator", false, false)])
        };
        let html = render_users_page(&vm, &admin_page());
        assert!(
            html.contains(r#"data-test-id="sessions-problem""#),
            "{html}"
        );
        assert!(html.contains("ada"));
        assert!(!html.contains(r#"data-test-id="sessions-empty""#));
    }

    #[test]
    fn users_page_lists_accounts_with_their_forms() {
        let vm = UsersVm {
            notice: Some("User ada created.".into()),
            ..users_vm(vec![
                user_row("ada", "operator", false, false),
                user_row("bob", "viewer", true, false),
                user_row("root", "admin", false, true),
            ])
        };
        let html = render_users_page(&vm, &users_admin_page());
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(html.contains("<title>Users · Switchyard</title>"), "{html}");
        assert!(
            html.contains(r#"href="/users" aria-current="page""#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="notice""#), "{html}");
        assert!(html.contains("User ada created."), "{html}");
        assert!(
            html.contains(r#"data-test-id="user-row" data-name="ada""#),
            "{html}"
        );
        assert!(html.contains(r#"action="/users/ada/role""#), "{html}");
        assert!(html.contains(r#"action="/users/ada/disable""#), "{html}");
        assert!(html.contains(r#"action="/users/bob/enable""#), "{html}");
        assert!(!html.contains(r#"action="/users/bob/disable""#), "{html}");
        assert!(html.contains(format_timestamp(MINUTE0).as_str()), "{html}");
        // Their own account has no buttons.
        assert!(!html.contains(r#"action="/users/root/"#), "{html}");
        assert!(html.contains(r#"data-test-id="user-self""#), "{html}");
        assert!(html.contains(r#"action="/users""#), "{html}");
        assert!(!html.contains(r#"data-test-id="users-empty""#), "{html}");
    }

    #[test]
    fn users_page_puts_the_csrf_token_and_back_in_every_form() {
        let vm = users_vm(vec![
            user_row("ada", "operator", false, false),
            user_row("bob", "viewer", true, false),
        ]);
        let html = render_users_page(&vm, &users_admin_page());
        let forms: Vec<&str> = html
            .split("<form")
            .skip(1)
            .map(|rest| &rest[..rest.find("</form>").expect("form closes")])
            // The header's search is a GET: it changes nothing.
            .filter(|form| !form.contains(r#"action="/search""#))
            .collect();
        // Sign out, two per account, and the new user form.
        assert_eq!(forms.len(), 6, "{html}");
        for form in forms {
            assert!(form.contains(r#"method="post""#), "{form}");
            assert!(
                form.contains(r#"<input type="hidden" name="csrf_token" value="tok-123">"#),
                "{form}"
            );
            if !form.contains(r#"action="/logout""#) {
                assert!(
                    form.contains(r#"<input type="hidden" name="back" value="/users">"#),
                    "{form}"
                );
            }
        }
    }

    #[test]
    fn users_page_lists_sessions_with_revoke_buttons() {
        let mut ada = user_row("ada", "operator", false, false);
        ada.sessions = vec![
            session_row("0123456789abcdef", "Firefox on Linux, 10.0.0.5", false),
            session_row("fedcba9876543210", "", false),
        ];
        ada.more_sessions = true;
        let mut root = user_row("root", "admin", false, true);
        root.sessions = vec![session_row("00112233aabbccdd", "<b>Chrome</b>", true)];
        let vm = users_vm(vec![ada, user_row("bob", "viewer", false, false), root]);
        let html = render_users_page(&vm, &users_admin_page());
        assert!(html.contains("Sign-in sessions"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="session-row""#).count(),
            3,
            "{html}"
        );
        assert!(
            html.contains(r#"action="/users/ada/sessions/0123456789abcdef/revoke""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/users/ada/sessions/revoke""#),
            "{html}"
        );
        assert!(
            html.contains(r#"action="/users/root/sessions/revoke""#),
            "{html}"
        );
        assert!(!html.contains(r#"action="/users/bob/sessions"#), "{html}");
        assert!(html.contains("Firefox on Linux, 10.0.0.5"), "{html}");
        assert!(html.contains("unknown client"), "{html}");
        assert!(html.contains("&lt;b&gt;Chrome"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="session-current""#).count(),
            1,
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="sessions-more""#), "{html}");
        assert!(!html.contains(r#"data-test-id="sessions-empty""#), "{html}");
        let no_sessions = render_users_page(
            &users_vm(vec![user_row("ada", "operator", false, false)]),
            &users_admin_page(),
        );
        assert!(
            no_sessions.contains(r#"data-test-id="sessions-empty""#),
            "{no_sessions}"
        );
    }

    #[test]
    fn users_page_escapes_names() {
        let vm = users_vm(vec![user_row(
            r#"<script>alert("x")</script>"#,
            "viewer",
            false,
            false,
        )]);
        let html = render_users_page(&vm, &users_admin_page());
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert"), "{html}");
        assert!(!html.contains(r#"data-name="<script"#), "{html}");
        for (tag, attrs) in tags(&html) {
            assert_ne!(tag, "style", "{html}");
            for attr in &attrs {
                assert_ne!(attr, "style", "{html}");
                assert!(!(attr.starts_with("on") && attr.len() > 2), "{attr} {html}");
            }
        }
    }

    #[test]
    fn users_page_without_accounts_says_so() {
        let html = render_users_page(&users_vm(vec![]), &users_admin_page());
        assert!(html.contains(r#"data-test-id="users-empty""#), "{html}");
        assert!(!html.contains(r#"data-test-id="users-table""#), "{html}");
        assert!(html.contains(r#"data-test-id="new-user-form""#), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
    }
}
