//! The two optional ways in, both off by default: a trusted reverse proxy
//! naming the user in a header, and bearer API tokens.

use server::auth::net::IpRange;
use server::auth::users::{Role, UserName};
use server::auth::{AuthSettings, ProxyAuth};

use crate::helpers::TestApp;

const HEADER: &str = "X-Forwarded-User";

fn proxy_from(trusted: &str) -> AuthSettings {
    AuthSettings {
        proxy: Some(ProxyAuth {
            header: HEADER.parse().expect("header name"),
            trusted: vec![trusted.parse::<IpRange>().expect("range")],
        }),
        ..AuthSettings::default()
    }
}

/// Creates `name` with `role` (no session).
async fn user(app: &TestApp, name: &str, role: Role) {
    app.sign_in_as(name, role).await;
}

#[tokio::test]
async fn proxy_headers_are_ignored_unless_turned_on() {
    let app = TestApp::spawn().await;
    user(&app, "olga", Role::Operator).await;
    let page = app
        .request_as(None, "GET", "/queues", &[(HEADER, "olga")], b"")
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/login?next=%2Fqueues"));
    app.stop().await;
}

#[tokio::test]
async fn a_trusted_proxy_names_the_user_and_the_browser_gets_a_csrf_session() {
    // The tests connect from 127.0.0.1: trusted.
    let app = TestApp::spawn_with(|s| s.auth = proxy_from("127.0.0.0/8")).await;
    user(&app, "olga", Role::Operator).await;
    user(&app, "vic", Role::Viewer).await;
    // The API pauses only queues that exist.
    app.make_failed("emails", 1).await;

    let page = app
        .request_as(None, "GET", "/queues", &[(HEADER, "olga")], b"")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<span data-test-id="user-name">olga</span>"#),
        "{}",
        page.body
    );
    // No Sign out: the proxy would sign the user in again.
    assert!(!page.body.contains("data-test-id=\"sign-out\""));
    let cookie = page
        .set_cookie("switchyard_session")
        .expect("a session for the CSRF token")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let csrf = page
        .body
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf meta tag")
        .to_owned();

    // A state-changing request still needs the token…
    let forged = app
        .request_as(
            None,
            "POST",
            "/api/queues/emails/pause",
            &[(HEADER, "olga"), ("Cookie", &cookie)],
            b"",
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.error().contains("CSRF"), "{}", forged.body);
    // …and with it, the proxy's user acts with their role.
    let paused = app
        .request_as(
            None,
            "POST",
            "/api/queues/emails/pause",
            &[
                (HEADER, "olga"),
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
            ],
            b"",
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    let audit = app.get("/api/audit?action=queue.pause").await.json();
    assert_eq!(audit["entries"][0]["actor"], "olga", "{audit}");

    // A viewer named by the proxy is still a viewer.
    let viewer = app
        .request_as(
            None,
            "POST",
            "/api/queues/emails/resume",
            &[(HEADER, "vic")],
            b"",
        )
        .await;
    assert_eq!(viewer.status, 403, "{}", viewer.body);
    assert!(viewer.error().contains("operator"), "{}", viewer.body);

    // A name without an account, or a disabled one, is refused with why.
    let stranger = app
        .request_as(None, "GET", "/api/queues", &[(HEADER, "mallory")], b"")
        .await;
    assert_eq!(stranger.status, 403, "{}", stranger.body);
    assert!(
        stranger.error().contains("no enabled account"),
        "{}",
        stranger.body
    );
    app.app
        .state
        .users
        .disable(&UserName::new("olga").unwrap())
        .await
        .unwrap();
    let disabled = app
        .request_as(None, "GET", "/api/queues", &[(HEADER, "olga")], b"")
        .await;
    assert_eq!(disabled.status, 403, "{}", disabled.body);
    app.stop().await;
}

#[tokio::test]
async fn the_proxy_header_from_an_untrusted_address_is_ignored() {
    let app = TestApp::spawn_with(|s| s.auth = proxy_from("10.9.9.9")).await;
    user(&app, "olga", Role::Admin).await;
    let api = app
        .request_as(None, "GET", "/api/queues", &[(HEADER, "olga")], b"")
        .await;
    assert_eq!(api.status, 401, "{}", api.body);
    app.stop().await;
}

#[tokio::test]
async fn api_tokens_work_on_the_api_only_when_turned_on() {
    let app = TestApp::spawn_with(|s| s.auth.api_tokens = true).await;
    user(&app, "ci-bot", Role::Operator).await;
    user(&app, "reader", Role::Viewer).await;
    let users = &app.app.state.users;
    let (_, token) = users
        .add_token(&UserName::new("ci-bot").unwrap(), "deploys")
        .await
        .expect("token");
    let (_, read_token) = users
        .add_token(&UserName::new("reader").unwrap(), "graphs")
        .await
        .expect("token");
    let bearer = format!("Bearer {token}");

    let list = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    // No cookie, so no CSRF token needed to act.
    let enqueued = app
        .request_as(
            None,
            "POST",
            "/api/queues/emails/jobs",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            br#"{"name":"send","data":{}}"#,
        )
        .await;
    assert_eq!(enqueued.status, 201, "{}", enqueued.body);
    let audit = app.get("/api/audit?action=job.enqueue").await.json();
    assert_eq!(audit["entries"][0]["actor"], "ci-bot", "{audit}");

    // The token's user's role applies.
    let read_bearer = format!("Bearer {read_token}");
    let refused = app
        .request_as(
            None,
            "POST",
            "/api/queues/emails/pause",
            &[("Authorization", &read_bearer)],
            b"",
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Pages are for people: a token opens the API only.
    let page = app
        .request_as(None, "GET", "/queues", &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.is_html());

    // Unknown and revoked tokens are refused.
    let wrong = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", "Bearer sy_nope_nope")],
            b"",
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        wrong.error().contains("unknown or revoked"),
        "{}",
        wrong.body
    );
    // Tokens list by user name: ci-bot's first.
    let listed = users.tokens().await.unwrap();
    assert_eq!(listed[0].user.as_str(), "ci-bot");
    users.revoke_token(&listed[0].id).await.unwrap();
    let still = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    let read = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", &read_bearer)],
            b"",
        )
        .await;
    assert_eq!(still.status, 401, "revoked: {}", still.body);
    assert_eq!(
        read.status, 200,
        "the other token still works: {}",
        read.body
    );
    app.stop().await;
}

#[tokio::test]
async fn api_tokens_are_refused_with_a_reason_when_off() {
    let app = TestApp::spawn().await;
    user(&app, "ci-bot", Role::Operator).await;
    let (_, token) = app
        .app
        .state
        .users
        .add_token(&UserName::new("ci-bot").unwrap(), "deploys")
        .await
        .expect("token");
    let response = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
        .await;
    assert_eq!(response.status, 401, "{}", response.body);
    assert!(
        response.error().contains("--api-tokens"),
        "{}",
        response.body
    );
    app.stop().await;
}
