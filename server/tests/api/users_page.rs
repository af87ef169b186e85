//! The admin's Users page (`/users`): listing accounts, adding one (with a
//! given or generated password), changing a role, disabling and enabling,
//! the refusals (bad input, taken name, an admin acting on their own
//! account, other roles), the audit entries, and `GET /api/users`.

use server::audit::Outcome;
use server::auth::users::{Role, UserName};
use test_support::html::{attr, start_tag, strip_tags, text_of};

use crate::helpers::{TEST_ADMIN, TEST_PASSWORD, TestApp, assert_redirect, audited};

/// The `<tr>` of user `name` on the Users page.
fn user_row<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(r#"data-test-id="user-row" data-name="{name}""#);
    let at = html.find(&marker)?;
    let start = html[..at].rfind("<tr")?;
    let len = html[start..].find("</tr>")? + "</tr>".len();
    Some(&html[start..start + len])
}

/// The notice the page shows after following a redirect's cookie.
async fn notice_after(app: &TestApp, cookie: &str) -> String {
    let page = app.get_with_cookie("/users", cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    text_of(&page.body, "notice")
}

async fn role_of(app: &TestApp, name: &str) -> Role {
    app.app
        .state
        .users
        .get(&UserName::new(name).unwrap())
        .await
        .unwrap()
        .expect("the user exists")
        .role
}

#[tokio::test]
async fn the_page_lists_every_user_with_its_buttons() {
    let app = TestApp::spawn().await;
    app.sign_in_as("ada.lovelace@example.com", Role::Operator)
        .await;
    app.sign_in_as("bob", Role::Viewer).await;
    app.app
        .state
        .users
        .disable(&UserName::new("bob").unwrap())
        .await
        .unwrap();

    let page = app.get("/users").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.is_html());
    let html = &page.body;
    assert!(html.contains("<title>Users · Switchyard</title>"), "{html}");
    assert!(html.contains(r#"aria-current="page""#), "{html}");

    let ada = user_row(html, "ada.lovelace@example.com").expect("a row for ada");
    assert!(ada.contains(r#"data-role="operator""#), "{ada}");
    assert!(ada.contains(r#"data-disabled="false""#), "{ada}");
    assert!(
        ada.contains(r#"action="/users/ada.lovelace@example.com/role""#),
        "{ada}"
    );
    assert!(
        ada.contains(r#"action="/users/ada.lovelace@example.com/disable""#),
        "{ada}"
    );
    assert!(
        ada.contains(r#"<option value="operator" selected"#),
        "{ada}"
    );
    assert!(strip_tags(ada).contains("enabled"), "{ada}");

    let bob = user_row(html, "bob").expect("a row for bob");
    assert!(bob.contains(r#"data-disabled="true""#), "{bob}");
    assert!(bob.contains(r#"action="/users/bob/enable""#), "{bob}");
    assert!(!bob.contains("/disable"), "{bob}");
    assert!(strip_tags(bob).contains("disabled"), "{bob}");

    // Their own row has no buttons: the server refuses them anyway.
    let own = user_row(html, TEST_ADMIN).expect("a row for the admin");
    assert!(!own.contains("<form"), "{own}");
    assert!(own.contains(r#"data-test-id="user-self""#), "{own}");

    // Every form that posts carries the session's CSRF token and a way back.
    let forms = html.matches(r#"method="post""#).count();
    let token = format!(r#"name="csrf_token" value="{}""#, app.session.csrf);
    assert!(forms >= 5, "{html}");
    assert_eq!(html.matches(&token).count(), forms, "{html}");
    let new_user = start_tag(html, "new-user-form").expect("the new user form");
    assert_eq!(attr(new_user, "action"), Some("/users"));

    // Names the page shows come back escaped in its error answers too.
    let evil = app
        .post_form(
            "/users",
            &[("name", "<script>x</script>"), ("role", "viewer")],
        )
        .await;
    assert_eq!(evil.status, 400, "{}", evil.body);
    assert!(evil.is_html());
    assert!(!evil.body.contains("<script>x"), "{}", evil.body);
    assert!(evil.body.contains("&lt;script&gt;x"), "{}", evil.body);
    app.stop().await;
}

#[tokio::test]
async fn creating_a_user_with_a_password_lets_them_sign_in() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/users",
            &[
                ("name", "ada"),
                ("role", "operator"),
                ("password", "a long enough passphrase"),
                ("back", "/users"),
            ],
        )
        .await;
    let cookie = assert_redirect(&response, "/users");
    let notice = notice_after(&app, &cookie).await;
    assert!(notice.contains("User ada created"), "{notice}");
    assert!(!notice.contains("passphrase"), "{notice}");

    let users = &app.app.state.users;
    let ada = users
        .verify("ada", "a long enough passphrase")
        .await
        .unwrap()
        .expect("ada signs in");
    assert_eq!(ada.role, Role::Operator);
    assert!(
        users
            .verify("ada", "wrong password 123")
            .await
            .unwrap()
            .is_none()
    );

    let page = app.get("/users").await;
    assert!(user_row(&page.body, "ada").is_some(), "{}", page.body);

    let entries = audited(&app, "user.create").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.actor, TEST_ADMIN);
    assert_eq!(entry.target_kind, "user");
    assert_eq!(entry.target, "ada");
    assert_eq!(entry.outcome, Outcome::Ok);
    assert_eq!(entry.detail.as_deref(), Some("role operator"));
    app.stop().await;
}

#[tokio::test]
async fn an_empty_password_is_generated_and_shown_once() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/users",
            &[("name", "ada"), ("role", "viewer"), ("password", "")],
        )
        .await;
    // Answered directly, never through the notice cookie: the password
    // must not travel in a cookie, nor be cached.
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.set_cookie("switchyard_notice").is_none());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let page = response;
    let notice = text_of(&page.body, "notice");
    let rest = notice
        .strip_prefix("User ada created with password ")
        .unwrap_or_else(|| panic!("unexpected notice {notice:?}"));
    let (password, tail) = rest.split_once(';').expect("the password, then ;");
    assert_eq!(tail.trim(), "it is not shown again.");
    assert_eq!(password.len(), 20, "{password}");
    assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
    // Shown once.
    let again = app.get("/users").await;
    assert!(!again.body.contains(password), "{}", again.body);

    let ada = app
        .app
        .state
        .users
        .verify("ada", password)
        .await
        .unwrap()
        .expect("the generated password works");
    assert_eq!(ada.role, Role::Viewer);

    let entries = audited(&app, "user.create").await;
    assert_eq!(entries.len(), 1);
    let detail = entries[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("generated"), "{detail}");
    assert!(!detail.contains(password), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn bad_creations_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    app.sign_in_as("ada", Role::Viewer).await;

    let taken = app
        .post_form(
            "/users",
            &[("name", "ada"), ("role", "viewer"), ("password", "")],
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(taken.is_html());
    assert!(
        taken.body.contains("user ada already exists"),
        "{}",
        taken.body
    );

    let short = app
        .post_form(
            "/users",
            &[
                ("name", "bob"),
                ("role", "viewer"),
                ("password", "tiny-secret"),
            ],
        )
        .await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(short.body.contains("too short"), "{}", short.body);

    let role = app
        .post_form(
            "/users",
            &[("name", "bob"), ("role", "root"), ("password", "")],
        )
        .await;
    assert_eq!(role.status, 400, "{}", role.body);
    assert!(role.body.contains("unknown role"), "{}", role.body);

    let name = app
        .post_form(
            "/users",
            &[("name", "a b"), ("role", "viewer"), ("password", "")],
        )
        .await;
    assert_eq!(name.status, 400, "{}", name.body);
    assert!(name.body.contains("invalid user name"), "{}", name.body);

    assert!(
        app.app
            .state
            .users
            .get(&UserName::new("bob").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // Each refusal is in the log, without the password typed.
    let entries = audited(&app, "user.create").await;
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert!(entries.iter().all(|e| e.outcome == Outcome::Refused));
    assert!(
        entries
            .iter()
            .all(|e| !e.detail.clone().unwrap_or_default().contains("tiny-secret")),
        "{entries:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_changes_a_role() {
    let app = TestApp::spawn().await;
    let ada = app.sign_in_as("ada", Role::Viewer).await;
    assert_eq!(app.get_as(Some(&ada), "/users").await.status, 403);

    let response = app
        .post_form(
            "/users/ada/role",
            &[("role", "operator"), ("back", "/users")],
        )
        .await;
    let cookie = assert_redirect(&response, "/users");
    let notice = notice_after(&app, &cookie).await;
    assert_eq!(notice, "ada is now an operator.");
    assert_eq!(role_of(&app, "ada").await, Role::Operator);

    // Her session goes on with the new role at once.
    let page = app.get_as(Some(&ada), "/queues").await;
    assert!(
        page.body.contains(r#"data-role="operator""#),
        "{}",
        page.body
    );

    let entries = audited(&app, "user.set_role").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, "ada");
    assert_eq!(entries[0].target_kind, "user");
    assert_eq!(entries[0].outcome, Outcome::Ok);
    assert_eq!(entries[0].detail.as_deref(), Some("viewer → operator"));

    let unknown = app
        .post_form("/users/ghost/role", &[("role", "operator")])
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("no user named ghost"),
        "{}",
        unknown.body
    );
    let bad = app.post_form("/users/ada/role", &[("role", "god")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(role_of(&app, "ada").await, Role::Operator);
    app.stop().await;
}

#[tokio::test]
async fn disabling_ends_sessions_and_sign_in_and_enabling_restores_it() {
    let app = TestApp::spawn().await;
    let ada = app.sign_in_as("ada", Role::Operator).await;
    assert_eq!(app.get_as(Some(&ada), "/queues").await.status, 200);

    let response = app
        .post_form("/users/ada/disable", &[("back", "/users")])
        .await;
    let cookie = assert_redirect(&response, "/users");
    let notice = notice_after(&app, &cookie).await;
    assert!(notice.contains("User ada is disabled"), "{notice}");

    let users = &app.app.state.users;
    assert!(users.verify("ada", TEST_PASSWORD).await.unwrap().is_none());
    assert!(users.session(ada.id()).await.unwrap().is_none());
    let after = app.get_as(Some(&ada), "/queues").await;
    assert_eq!(after.status, 303, "{}", after.body);
    let page = app.get("/users").await;
    let row = user_row(&page.body, "ada").expect("ada is still listed");
    assert!(row.contains(r#"data-disabled="true""#), "{row}");

    let response = app.post_form("/users/ada/enable", &[]).await;
    assert_redirect(&response, "/users");
    assert!(users.verify("ada", TEST_PASSWORD).await.unwrap().is_some());

    let disabled = audited(&app, "user.disable").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].target, "ada");
    assert_eq!(disabled[0].outcome, Outcome::Ok);
    let enabled = audited(&app, "user.enable").await;
    assert_eq!(enabled.len(), 1);
    assert_eq!(enabled[0].outcome, Outcome::Ok);

    let unknown = app.post_form("/users/ghost/disable", &[]).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_cannot_demote_or_disable_themself() {
    let app = TestApp::spawn().await;
    let demote = app
        .post_form(
            &format!("/users/{TEST_ADMIN}/role"),
            &[("role", "operator")],
        )
        .await;
    assert_eq!(demote.status, 409, "{}", demote.body);
    assert!(demote.is_html());
    assert!(
        demote
            .body
            .contains("you cannot demote your own account; ask another admin"),
        "{}",
        demote.body
    );
    let disable = app
        .post_form(&format!("/users/{TEST_ADMIN}/disable"), &[])
        .await;
    assert_eq!(disable.status, 409, "{}", disable.body);
    assert!(
        disable
            .body
            .contains("you cannot disable your own account; ask another admin"),
        "{}",
        disable.body
    );
    assert_eq!(role_of(&app, TEST_ADMIN).await, Role::Admin);
    assert!(
        app.app
            .state
            .users
            .verify(TEST_ADMIN, TEST_PASSWORD)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(app.get("/users").await.status, 200);

    let refused = audited(&app, "user.set_role").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].outcome, Outcome::Refused);
    assert_eq!(
        audited(&app, "user.disable").await[0].outcome,
        Outcome::Refused
    );

    // Another admin can.
    let other = app.sign_in_as("root", Role::Admin).await;
    let response = app
        .post_form_as(
            Some(&other),
            &format!("/users/{TEST_ADMIN}/role"),
            &[("role", "operator")],
        )
        .await;
    assert_redirect(&response, "/users");
    assert_eq!(role_of(&app, TEST_ADMIN).await, Role::Operator);
    app.stop().await;
}

#[tokio::test]
async fn other_roles_are_refused() {
    let app = TestApp::spawn().await;
    let operator = app.sign_in_as("op", Role::Operator).await;
    let viewer = app.sign_in_as("viewer", Role::Viewer).await;
    for session in [&operator, &viewer] {
        let page = app.get_as(Some(session), "/users").await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(page.is_html());
        let create = app
            .post_form_as(
                Some(session),
                "/users",
                &[("name", "mallory"), ("role", "admin"), ("password", "")],
            )
            .await;
        assert_eq!(create.status, 403, "{}", create.body);
        let promote = app
            .post_form_as(Some(session), "/users/op/role", &[("role", "admin")])
            .await;
        assert_eq!(promote.status, 403, "{}", promote.body);
        let api = app.get_as(Some(session), "/api/users").await;
        assert_eq!(api.status, 403, "{}", api.body);
        assert!(api.is_json());
    }
    assert!(
        app.app
            .state
            .users
            .get(&UserName::new("mallory").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(role_of(&app, "op").await, Role::Operator);
    // Signed out: the page sends to the sign-in page.
    let anonymous = app.get_as(None, "/users").await;
    assert_eq!(anonymous.status, 303, "{}", anonymous.body);
    // Without the CSRF token, even an admin's form is refused.
    let forged = app
        .post_form_raw(
            Some(&app.session),
            "/users",
            &[("name", "mallory"), ("role", "admin")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    app.stop().await;
}

#[tokio::test]
async fn the_api_lists_users() {
    let app = TestApp::spawn().await;
    app.sign_in_as("ada", Role::Operator).await;
    app.app
        .state
        .users
        .disable(&UserName::new("ada").unwrap())
        .await
        .unwrap();
    let response = app.get("/api/users").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.is_json());
    let body = response.json();
    let users = body["users"].as_array().expect("a users array");
    assert_eq!(users.len(), 2, "{body}");
    assert_eq!(users[0]["name"], "ada");
    assert_eq!(users[0]["role"], "operator");
    assert_eq!(users[0]["disabled"], true);
    assert!(users[0]["createdAt"].as_i64().unwrap() > 0, "{body}");
    assert_eq!(users[1]["name"], TEST_ADMIN);
    assert_eq!(users[1]["role"], "admin");
    assert_eq!(users[1]["disabled"], false);
    assert!(!response.body.contains("password"), "{body}");
    app.stop().await;
}
