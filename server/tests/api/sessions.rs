//! Sign-in sessions through `coord::sessions`: with Redis, two dashboard
//! instances on one prefix share sign-ins, and revoking on one (a session,
//! all of a user's, disabling the user) ends them on both; without Redis
//! the same routes work on the SQL store. The Users page and its API twins
//! list sessions by a non-secret handle and never show the cookie.

use std::time::Duration;

use coord::sessions::{SessionError, SessionStore, handle_of, key_of};
use serde_json::Value;
use server::audit::Outcome;
use server::auth::sessions::SqlSessions;
use server::auth::users::{Password, Role, UserName, UserStore};
use server::db::Database;
use test_support::http::TestResponse;

use crate::helpers::{
    Session, TEST_ADMIN, TEST_PASSWORD, TestApp, assert_redirect, audited, each_migrated_database,
};

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

/// The SQL store keeps coord's session contract (the conformance suite's
/// cases that matter here) on SQLite and on PostgreSQL.
#[tokio::test]
async fn the_sql_session_store_keeps_the_contract_on_each_database() {
    const HOUR: Duration = Duration::from_secs(3600);
    each_migrated_database(async |db: &Database| {
        let users = UserStore::new(db.clone());
        for name in ["ada", "bob"] {
            users
                .add(
                    &UserName::new(name).unwrap(),
                    &Password::new(TEST_PASSWORD).unwrap(),
                    Role::Viewer,
                )
                .await
                .unwrap();
        }
        let store = SqlSessions::new(db.clone()).with_max_per_user(3);
        let mut ada = Vec::new();
        for i in 0..3 {
            ada.push(store.create("ada", HOUR, &format!("a{i}")).await.unwrap());
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let bob = store.create("bob", HOUR, "b").await.unwrap();
        let got = store.get(&ada[0].id).await.unwrap().expect("a session");
        assert_eq!(got, ada[0].session);
        assert_eq!(store.get("made-up").await.unwrap(), None);
        // Listing: newest first, capped, with the marker.
        let listed = store.list("ada", 2).await.unwrap();
        let data: Vec<&str> = listed.sessions.iter().map(|s| s.data.as_str()).collect();
        assert_eq!(data, ["a2", "a1"]);
        assert!(listed.more);
        // Touch slides the end and makes it the most recent.
        let touched = store.touch(&ada[0].id, HOUR).await.unwrap().unwrap();
        assert!(touched.expires_at > ada[0].session.expires_at);
        assert_eq!(store.list("ada", 1).await.unwrap().sessions[0].data, "a0");
        // The cap ends the least recently used (a1).
        let fourth = store.create("ada", HOUR, "a3").await.unwrap();
        assert_eq!(fourth.evicted, 1);
        assert_eq!(store.get(&ada[1].id).await.unwrap(), None);
        // Revoking by handle only finds the user's own sessions.
        assert!(
            !store
                .revoke_handle("bob", &ada[2].session.handle)
                .await
                .unwrap()
        );
        assert!(
            store
                .revoke_handle("ada", &ada[2].session.handle)
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_handle("ada", &ada[2].session.handle)
                .await
                .unwrap()
        );
        assert!(store.revoke(&fourth.id).await.unwrap());
        assert!(!store.revoke(&fourth.id).await.unwrap());
        assert_eq!(store.revoke_all("ada").await.unwrap(), 1);
        assert!(store.get(&ada[0].id).await.unwrap().is_none());
        assert!(
            store.get(&bob.id).await.unwrap().is_some(),
            "bob's is untouched"
        );
        // A session of a user the database does not have is refused.
        assert!(matches!(
            store.create("ghost", HOUR, "").await,
            Err(SessionError::UnknownUser(_))
        ));
        // Expiry: gone on read, and swept.
        let short = store
            .create("bob", Duration::from_millis(1), "")
            .await
            .unwrap();
        let other = store
            .create("bob", Duration::from_millis(1), "")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.get(&short.id).await.unwrap(), None);
        assert_eq!(store.sweep(coord::time::now_ms()).await.unwrap(), 1);
        assert_eq!(store.get(&other.id).await.unwrap(), None);
        assert_eq!(store.list("bob", 10).await.unwrap().sessions.len(), 1);
    })
    .await;
}

/// A request that finds its session last used over a minute ago moves its
/// end and sends the cookie again, so a used sign-in lives on.
#[tokio::test]
async fn a_used_session_slides_its_end_and_its_cookie_is_sent_again() {
    let app = TestApp::spawn().await;
    let browser = log_in(&app, TEST_ADMIN).await;
    let fresh = app.get_as(Some(&browser), "/api/session").await;
    assert_eq!(
        fresh.set_cookie("switchyard_session"),
        None,
        "not touched yet"
    );
    // As if it were last used two minutes ago.
    let Database::Sqlite(pool) = &app.app.state.db else {
        panic!("the embedded server runs on SQLite");
    };
    sqlx::query(
        "UPDATE sessions SET last_seen_at = last_seen_at - 120000, \
         expires_at = expires_at - 120000 WHERE id_hash = $1",
    )
    .bind(key_of(browser.id()))
    .execute(pool)
    .await
    .expect("backdate");
    let before = app.get("/api/users/admin/sessions").await.json();
    let find = |list: &Value| {
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["handle"] == handle(&browser))
            .cloned()
            .expect("the session is listed")
    };
    let old = find(&before);
    let used = app.get_as(Some(&browser), "/api/session").await;
    status(&used, 200, "a used session");
    let cookie = used
        .set_cookie("switchyard_session")
        .expect("the cookie is sent again");
    assert!(cookie.contains(browser.id()), "{cookie}");
    assert!(cookie.contains("Max-Age=43200"), "{cookie}");
    let moved = find(&app.get("/api/users/admin/sessions").await.json());
    assert!(moved["lastSeenAt"].as_i64() > old["lastSeenAt"].as_i64());
    assert!(moved["expiresAt"].as_i64().unwrap() >= old["expiresAt"].as_i64().unwrap() + 120_000);
    app.stop().await;
}

/// Backdates `session` in the embedded server's table by `ms` (its start,
/// last use and end), as if that much time had passed.
async fn backdate(app: &TestApp, session: &Session, ms: i64) {
    let Database::Sqlite(pool) = &app.app.state.db else {
        panic!("the embedded server runs on SQLite");
    };
    sqlx::query(
        "UPDATE sessions SET created_at = created_at - $2, \
         last_seen_at = last_seen_at - $2 WHERE id_hash = $1",
    )
    .bind(key_of(session.id()))
    .bind(ms)
    .execute(pool)
    .await
    .expect("backdate");
}

/// Signing out with a session due for a slide: the sign-out's cookie is
/// the last word, never the slid session's (a browser keeps the last
/// cookie it reads, and would hold the ended session again).
#[tokio::test]
async fn signing_out_a_session_due_for_a_slide_sends_only_the_sign_out_cookie() {
    let app = TestApp::spawn().await;
    let browser = log_in(&app, TEST_ADMIN).await;
    backdate(&app, &browser, 120_000).await;
    let out = app.post_as(Some(&browser), "/logout").await;
    let cookies: Vec<&str> = out
        .header_all("set-cookie")
        .into_iter()
        .filter(|c| c.starts_with("switchyard_session="))
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(!cookies[0].contains(browser.id()), "{cookies:?}");
    app.stop().await;
}

/// However often it is used, a sign-in ends a month after it started.
#[tokio::test]
async fn a_session_ends_a_month_after_sign_in_however_used() {
    let app = TestApp::spawn().await;
    let browser = log_in(&app, TEST_ADMIN).await;
    status(
        &app.get_as(Some(&browser), "/api/session").await,
        200,
        "fresh",
    );
    backdate(&app, &browser, 30 * 24 * 3600 * 1000 + 1000).await;
    let old = app.get_as(Some(&browser), "/api/session").await;
    assert_eq!(old.status, 401, "{}", old.body);
    let listed = app.get("/api/users/admin/sessions").await.json();
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["handle"] != handle(&browser)),
        "ended, not only refused: {listed}"
    );
    app.stop().await;
}

/// A signed-out page view goes to the sign-in page.
fn assert_to_login(response: &TestResponse) {
    status(response, 303, "signed-out page view");
    let location = response.header("location").unwrap_or_default();
    assert!(location.starts_with("/login"), "{location}");
}
