//! Sign-in sessions through `coord::sessions`: with Redis, two dashboard
//! instances on one prefix share sign-ins, and revoking on one (a session,
//! all of a user's, disabling the user) ends them on both; without Redis
//! the same routes work on the SQL store. The Users page and its API twins
//! list sessions by a non-secret handle and never show the cookie.

use coord::sessions::{handle_of, key_of};
use serde_json::Value;
use server::audit::{AuditFilter, Outcome};
use server::auth::users::Role;
use test_support::http::TestResponse;

use crate::helpers::{Session, TEST_ADMIN, TEST_PASSWORD, TestApp, assert_redirect};

fn status(response: &TestResponse, expected: u16, what: &str) {
    assert_eq!(
        response.status, expected,
        "{what}: {} {}",
        response.status, response.body
    );
}

/// The handle the Users page shows for a session.
fn handle(session: &Session) -> String {
    handle_of(&key_of(session.id()))
}

/// Whether `session` is signed in on `app` (`GET /api/session`).
async fn signed_in(app: &TestApp, session: &Session) -> bool {
    let response = app.get_as(Some(session), "/api/session").await;
    match response.status {
        200 => true,
        401 => false,
        other => panic!("GET /api/session answered {other}: {}", response.body),
    }
}

/// Signs in over HTTP on `app` as a browser would.
async fn log_in(app: &TestApp, user: &str) -> Session {
    let response = app.login(user, TEST_PASSWORD, "/").await;
    status(&response, 303, "sign-in");
    app.session_from(&response)
        .await
        .expect("the sign-in started a session")
}

/// The handles `GET /api/users/{user}/sessions` lists on `app`.
async fn listed(app: &TestApp, user: &str) -> Vec<String> {
    let response = app.get(&format!("/api/users/{user}/sessions")).await;
    status(&response, 200, "list sessions");
    response.json()["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["handle"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn audited(app: &TestApp, action: &str) -> Vec<server::audit::AuditEntry> {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        ..AuditFilter::default()
    };
    app.app
        .state
        .audit
        .list(&filter, 0, 50)
        .await
        .expect("list the audit log")
        .0
}

/// Two dashboards on one Redis prefix: the second one.
async fn second_instance(a: &TestApp) -> TestApp {
    TestApp::spawn_redis_sharing(&a.app.state.settings.redis_prefix).await
}

#[tokio::test]
async fn two_dashboards_on_one_redis_share_sign_ins_and_revoking_ends_them_on_both() {
    let a = TestApp::spawn_redis().await;
    let b = second_instance(&a).await;
    let browser = log_in(&a, TEST_ADMIN).await;
    assert!(signed_in(&a, &browser).await);
    assert!(signed_in(&b, &browser).await, "a sign-in on A works on B");
    // B's page for the admin shows the session A started, by handle only.
    let mine = handle(&browser);
    assert!(listed(&b, TEST_ADMIN).await.contains(&mine));
    let page = b.get("/users").await;
    status(&page, 200, "users page");
    assert!(
        page.body.contains(&format!(r#"data-handle="{mine}""#)),
        "{}",
        page.body
    );
    assert!(!page.body.contains(browser.id()), "the cookie never shows");
    let api = b.get(&format!("/api/users/{TEST_ADMIN}/sessions")).await;
    assert!(!api.body.contains(browser.id()), "{}", api.body);
    // Revoked with B's Users page button: signed out on both.
    let revoked = b
        .post_form(
            &format!("/users/{TEST_ADMIN}/sessions/{mine}/revoke"),
            &[("back", "/users")],
        )
        .await;
    assert_redirect(&revoked, "/users");
    assert!(!signed_in(&b, &browser).await);
    assert!(!signed_in(&a, &browser).await, "revoked on B, ended on A");
    assert_to_login(&a.get_as(Some(&browser), "/").await);
    // The helpers' own sessions of the same admin are untouched.
    assert!(signed_in(&a, &a.session).await);
    assert!(signed_in(&b, &b.session).await);
    assert!(!listed(&a, TEST_ADMIN).await.contains(&mine));
    let entries = audited(&b, "session.revoke").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, Outcome::Ok);
    assert_eq!(entries[0].target, TEST_ADMIN);
    assert_eq!(
        entries[0].detail.as_deref(),
        Some(format!("session {mine}").as_str())
    );
    // Signing out on one instance ends the session on the other too.
    let again = log_in(&b, TEST_ADMIN).await;
    assert!(signed_in(&a, &again).await);
    let out = b.post_form_as(Some(&again), "/logout", &[]).await;
    status(&out, 303, "sign-out");
    assert!(!signed_in(&a, &again).await, "signed out on B, ended on A");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn revoke_all_and_disabling_end_a_users_sessions_on_every_instance() {
    let a = TestApp::spawn_redis().await;
    let b = second_instance(&a).await;
    // The user exists in each instance's database (the test gives each
    // its own SQLite file); its sessions live in the shared Redis.
    let on_a = a.sign_in_as("ops", Role::Operator).await;
    let on_b = b.sign_in_as("ops", Role::Operator).await;
    let other = a.sign_in_as("vera", Role::Viewer).await;
    let vera_b = b.sign_in_as("vera", Role::Viewer).await;
    for app in [&a, &b] {
        for session in [&on_a, &on_b, &other] {
            assert!(signed_in(app, session).await);
        }
    }
    assert_eq!(listed(&a, "ops").await.len(), 2);
    let ended = a.post("/api/users/ops/sessions/revoke").await;
    status(&ended, 200, "revoke all");
    assert_eq!(ended.json()["ended"], Value::from(2));
    for app in [&a, &b] {
        assert!(!signed_in(app, &on_a).await);
        assert!(!signed_in(app, &on_b).await);
        assert!(signed_in(app, &other).await, "another user is untouched");
    }
    assert!(listed(&b, "ops").await.is_empty());
    let entries = audited(&a, "session.revoke_all").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].detail.as_deref(), Some("2 session(s) ended"));
    // Disabling on A ends the user's sessions in Redis, so B refuses them
    // too (B's own database does not even know the user is disabled).
    let disabled = a
        .post_form("/users/vera/disable", &[("back", "/users")])
        .await;
    assert_redirect(&disabled, "/users");
    assert!(!signed_in(&b, &other).await);
    assert!(!signed_in(&b, &vera_b).await);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn without_redis_the_users_page_lists_and_revokes_sessions_in_sql() {
    let app = TestApp::spawn().await;
    let ada = app.sign_in_as("ada", Role::Operator).await;
    let browser = log_in(&app, "ada").await;
    let handles = listed(&app, "ada").await;
    assert_eq!(handles.len(), 2);
    assert!(handles.contains(&handle(&ada)) && handles.contains(&handle(&browser)));
    let api = app.get("/api/users/ada/sessions").await;
    let json = api.json();
    assert_eq!(json["more"], Value::Bool(false));
    let first = &json["sessions"][0];
    assert_eq!(
        first["handle"],
        Value::from(handle(&browser)),
        "most recent first"
    );
    assert!(first["createdAt"].as_i64().unwrap() <= first["lastSeenAt"].as_i64().unwrap());
    assert!(first["expiresAt"].as_i64().unwrap() > first["lastSeenAt"].as_i64().unwrap());
    assert_eq!(first["current"], Value::Bool(false));
    assert!(!api.body.contains(ada.id()) && !api.body.contains(browser.id()));
    // The page marks the admin's own session and offers the buttons.
    let page = app.get("/users").await;
    let mine = handle(&app.session);
    assert!(
        page.body.contains(&format!(
            r#"data-test-id="session-row" data-user="{TEST_ADMIN}" data-handle="{mine}" data-current="true""#
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(
        r#"action="/users/ada/sessions/{}/revoke""#,
        handle(&ada)
    )));
    assert!(page.body.contains(r#"action="/users/ada/sessions/revoke""#));
    // Revoke one by the API twin; a second time it is gone (404).
    let path = format!("/api/users/ada/sessions/{}/revoke", handle(&ada));
    let done = app.post(&path).await;
    status(&done, 200, "revoke");
    assert_eq!(done.json()["revoked"], Value::Bool(true));
    assert!(!signed_in(&app, &ada).await);
    assert!(signed_in(&app, &browser).await);
    status(&app.post(&path).await, 404, "revoke twice");
    let refused = audited(&app, "session.revoke").await;
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().any(|e| e.outcome == Outcome::Ok));
    // Bad handles and unknown users are refused with a reason.
    status(
        &app.post("/api/users/ada/sessions/nothex/revoke").await,
        400,
        "bad handle",
    );
    status(
        &app.post("/api/users/nobody/sessions/0123456789abcdef/revoke")
            .await,
        404,
        "unknown user",
    );
    status(
        &app.get("/api/users/nobody/sessions").await,
        404,
        "unknown user",
    );
    // Revoke all with the page's button.
    let all = app
        .post_form("/users/ada/sessions/revoke", &[("back", "/users")])
        .await;
    assert_redirect(&all, "/users");
    assert!(!signed_in(&app, &browser).await);
    assert!(listed(&app, "ada").await.is_empty());
    // A viewer may not list sessions.
    let vera = app.sign_in_as("vera", Role::Viewer).await;
    status(
        &app.get_as(Some(&vera), "/api/users/ada/sessions").await,
        403,
        "a viewer lists sessions",
    );
    app.stop().await;
}

/// A signed-out page view goes to the sign-in page.
fn assert_to_login(response: &TestResponse) {
    status(response, 303, "signed-out page view");
    let location = response.header("location").unwrap_or_default();
    assert!(location.starts_with("/login"), "{location}");
}
