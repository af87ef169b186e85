//! Hardening headers: every response — pages, assets, the JSON API, event
//! streams, redirects, errors of every kind and 429s — carries the
//! Content-Security-Policy and its companions (see `server::http::security`).

use std::time::Duration;

use serde_json::json;
use server::ratelimits::LimitSpec;

use crate::helpers::TestApp;

/// The policy, spelled out here rather than read from the server, so a
/// change to it is a deliberate change to this test too.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Each hardening header and its value.
const EXPECTED: [(&str, &str); 5] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Asserts every hardening header, sent once, on a response's `headers`.
fn assert_hardened(what: &str, headers: &[(String, String)]) {
    for (name, value) in EXPECTED {
        let values: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, vec![value], "{what}: {name} in {headers:?}");
    }
}

#[test]
fn the_policy_constant_is_the_one_tested() {
    assert_eq!(server::http::security::CONTENT_SECURITY_POLICY, CSP);
}

#[tokio::test]
async fn pages_assets_api_and_errors_carry_the_hardening_headers() {
    let app = TestApp::spawn().await;
    app.enqueue("emails", &json!({ "name": "a" })).await;
    for path in [
        "/",
        "/queues",
        "/queues/emails?state=waiting",
        "/channels",
        "/instances",
        "/ratelimits",
        "/alerts",
        "/config",
        "/style.css",
        "/app.js",
        "/api/queues",
        "/api/queues/emails",
        "/health",
        "/metrics",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert_hardened(path, &response.headers);
    }
    // The assets keep their own types and caching.
    let css = app.get("/style.css").await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.header("cache-control").unwrap().contains("max-age"));

    // Errors, in both formats, from handlers and from the router.
    let not_found = app.get("/no/such/page").await;
    assert_eq!(not_found.status, 404);
    assert!(not_found.is_html());
    assert_hardened("404 page", &not_found.headers);
    let api_not_found = app.get("/api/queues/emails/jobs/999999").await;
    assert_eq!(api_not_found.status, 404, "{}", api_not_found.body);
    assert!(api_not_found.is_json());
    assert_hardened("404 API", &api_not_found.headers);
    let bad = app.get("/?range=2d").await;
    assert_eq!(bad.status, 400);
    assert_hardened("400 page", &bad.headers);
    let bad_json = app
        .post_raw("/api/queues/emails/jobs", "application/json", b"{nope")
        .await;
    assert_eq!(bad_json.status, 400, "{}", bad_json.body);
    assert!(bad_json.is_json());
    assert_hardened("400 API", &bad_json.headers);
    let wrong_method = app.post("/queues").await;
    assert_eq!(wrong_method.status, 405);
    assert_hardened("405", &wrong_method.headers);

    // A form's redirect.
    let redirect = app.post_form("/queues/emails/pause", &[]).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    assert_hardened("303", &redirect.headers);
    app.stop().await;
}

#[tokio::test]
async fn event_streams_carry_the_hardening_headers() {
    let app = TestApp::spawn().await;
    let mut stream = app.sse("/events/overview").await;
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_hardened("stream", &stream.headers);
    // Still a working stream.
    stream.expect_event(Duration::from_secs(10)).await;

    let refused = app.sse("/events/overview?range=2d").await;
    assert_eq!(refused.status, 400);
    assert_hardened("400 stream", &refused.headers);
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_answers_carry_the_hardening_headers() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::per(1, 60);
        s.rate_limits.api = LimitSpec::per(1, 60);
    })
    .await;
    assert_eq!(app.get("/config").await.status, 200);
    let refused = app.get("/queues").await;
    assert_eq!(refused.status, 429);
    assert!(refused.is_html());
    assert!(refused.header("retry-after").is_some());
    assert_hardened("429 page", &refused.headers);
    assert_eq!(refused.header("cache-control"), Some("no-store"), "429");

    assert_eq!(app.get("/api/queues").await.status, 200);
    let api = app.get("/api/queues").await;
    assert_eq!(api.status, 429);
    assert!(api.is_json());
    assert_hardened("429 API", &api.headers);
    app.stop().await;
}

/// No answer to a signed-in user is stored by a browser or a proxy
/// (`/api/session` carries the CSRF token); the two assets keep their
/// caching. HSTS is sent only when the dashboard is reached over https.
#[tokio::test]
async fn signed_in_answers_are_never_stored_and_https_adds_hsts() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/queues",
        "/config",
        "/api/queues",
        "/api/session",
        "/no/such/page",
        "/users",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(response.header("strict-transport-security"), None, "{path}");
    }
    let login = app.get_as(None, "/login").await;
    assert_eq!(login.header("cache-control"), Some("no-store"), "/login");
    let stream = app.sse("/events/overview").await;
    assert_eq!(stream.header("cache-control"), Some("no-store"));
    let css = app.get("/style.css").await;
    assert!(css.header("cache-control").unwrap().contains("max-age"));
    app.stop().await;

    let app = TestApp::spawn_with(|s| {
        s.alerts.external_url = "https://ops.example".into();
        s.auth.secure_cookies = true;
    })
    .await;
    for path in ["/", "/health", "/style.css", "/no/such/page"] {
        let response = app.get(path).await;
        assert_eq!(
            response.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    app.stop().await;
}

/// Load balancers and Prometheus are often configured with a token for
/// everything they call: `/health*` and `/metrics` ignore it. With
/// `--metrics-token`, `/metrics` requires exactly that token.
#[tokio::test]
async fn probes_ignore_bearer_headers_and_metrics_can_require_a_scrape_token() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/health/ready", "/metrics"] {
        let response = app
            .request_as(
                None,
                "GET",
                path,
                &[("Authorization", "Bearer anything")],
                b"",
            )
            .await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
    }
    let api = app
        .request_as(
            None,
            "GET",
            "/api/queues",
            &[("Authorization", "Bearer anything")],
            b"",
        )
        .await;
    assert_eq!(api.status, 401, "the API still judges tokens: {}", api.body);
    app.stop().await;

    const TOKEN: &str = "scrape-token-0123456789";
    let app = TestApp::spawn_with(|s| {
        s.metrics_token = Some(server::config::secret::SecretText::new(TOKEN));
    })
    .await;
    let bare = app.get_as(None, "/metrics").await;
    assert_eq!(bare.status, 401, "{}", bare.body);
    assert!(
        bare.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    assert!(!bare.body.contains("switchyard_"), "{}", bare.body);
    let wrong = app
        .request_as(
            None,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer scrape-token-0123456780")],
            b"",
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let right = app
        .request_as(
            None,
            "GET",
            "/metrics",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.body);
    assert!(
        right.body.contains("switchyard_backend_up"),
        "{}",
        right.body
    );
    let health = app.get_as(None, "/health").await;
    assert_eq!(health.status, 200, "only /metrics needs it");
    app.stop().await;
}

/// Login CSRF: a sign-in posted from another site gets no session; the
/// dashboard's own form (same origin) works. A sign-in ends the session
/// the browser had before.
#[tokio::test]
async fn sign_in_refuses_other_sites_and_replaces_the_old_session() {
    use crate::helpers::{TEST_ADMIN, TEST_PASSWORD};
    let app = TestApp::spawn().await;
    let form = format!(
        "username={TEST_ADMIN}&password={}&next=%2F",
        TEST_PASSWORD.replace(' ', "+")
    );
    let post = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        let form = form.clone();
        async move {
            let mut all: Vec<(&str, &str)> =
                vec![("Content-Type", "application/x-www-form-urlencoded")];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            app.request_as(None, "POST", "/login", &all, form.as_bytes())
                .await
        }
    };
    for headers in [
        vec![("Origin", "http://evil.example".to_owned())],
        vec![("Sec-Fetch-Site", "cross-site".to_owned())],
        vec![("Origin", "null".to_owned())],
    ] {
        let refused = post(headers.clone()).await;
        assert_eq!(refused.status, 403, "{headers:?}: {}", refused.body);
        assert!(refused.body.contains("another site"), "{}", refused.body);
        assert!(app.session_from(&refused).await.is_none(), "{headers:?}");
    }
    let first = post(vec![("Sec-Fetch-Site", "same-origin".to_owned())]).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let old = app.session_from(&first).await.expect("a session");
    assert_eq!(app.get_as(Some(&old), "/api/session").await.status, 200);

    // The same browser signs in again, sending its old cookie.
    let cookie = format!("switchyard_session={}", old.id());
    let second = post(vec![("Cookie", cookie)]).await;
    assert_eq!(second.status, 303, "{}", second.body);
    let new = app.session_from(&second).await.expect("a new session");
    assert_ne!(new.id(), old.id());
    assert_eq!(app.get_as(Some(&new), "/api/session").await.status, 200);
    assert_eq!(
        app.get_as(Some(&old), "/api/session").await.status,
        401,
        "the replaced session no longer works"
    );
    app.stop().await;
}

/// Long passwords that are still trivial to guess are refused with the
/// reason, wherever a password is set.
#[tokio::test]
async fn trivial_passwords_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    for weak in [
        "aaaaaaaaaaaa",
        "            ",
        "Password1234!",
        "123456789012",
    ] {
        let response = app
            .post_form(
                "/users",
                &[("name", "bob"), ("role", "viewer"), ("password", weak)],
            )
            .await;
        assert_eq!(response.status, 400, "{weak:?}: {}", response.body);
        assert!(
            response.body.contains("too easy to guess"),
            "{}",
            response.body
        );
    }
    let fine = app
        .post_form(
            "/users",
            &[
                ("name", "bob"),
                ("role", "viewer"),
                ("password", "a long enough passphrase"),
            ],
        )
        .await;
    assert_eq!(fine.status, 303, "{}", fine.body);
    app.stop().await;
}

/// Reads until the server closes the connection (or `within` passes),
/// and says whether it did and after how long.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // A 408 or similar before the close: keep reading to the end.
            Ok(Ok(_)) => {}
        }
    }
}

/// `GET /health` over a fresh connection from `from` (an address on the
/// loopback network) or 127.0.0.1; the raw answer, empty when the server
/// closed the connection without one.
async fn raw_health(address: std::net::SocketAddr, from: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let local = format!("{}:0", from.unwrap_or("127.0.0.1"));
    socket.bind(local.parse().expect("address")).expect("bind");
    let Ok(mut stream) = socket.connect(address).await else {
        return String::new();
    };
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that never finishes its request head is cut off after
/// `--header-read-timeout` (slowloris); one address cannot hold more
/// than `--max-connections-per-address` connections, while another
/// address is served as usual.
#[tokio::test]
async fn slow_headers_are_cut_off_and_one_address_cannot_hold_every_connection() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let app = TestApp::spawn_with(|s| {
        s.connections.header_read_timeout = Duration::from_secs(4);
        s.connections.per_address = 3;
    })
    .await;
    let address = app.app.address;

    let mut slow = TcpStream::connect(address).await.expect("connect");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let closed = closed_within(&mut slow, Duration::from_secs(15)).await;
    let closed = closed.expect("the slow client was cut off");
    assert!(
        closed >= Duration::from_millis(3500),
        "not before the timeout: {closed:?}"
    );

    // Three connections from 127.0.0.1 are held open; a fourth is closed
    // at once, long before the header timeout would have closed it.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    let mut fourth = TcpStream::connect(address)
        .await
        .expect("the kernel accepts");
    let closed = closed_within(&mut fourth, Duration::from_secs(10)).await;
    let closed = closed.expect("the fourth was closed");
    assert!(
        closed < Duration::from_millis(1500),
        "at once, not by the timeout: {closed:?}"
    );

    // Another address is not affected.
    let answer = raw_health(address, Some("127.0.0.2")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Once the held connections end, 127.0.0.1 is served again.
    drop(held);
    crate::helpers::eventually("127.0.0.1 is served again", async || {
        let answer = raw_health(address, None).await;
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(answer)
        }
    })
    .await;
    app.stop().await;
}

/// A request line or head too large is refused with 414 or 431, and the
/// answer carries the hardening headers like every other.
#[tokio::test]
async fn oversized_requests_are_refused_with_the_hardening_headers() {
    let app = TestApp::spawn().await;
    let long = format!("/queues?name={}", "a".repeat(9 * 1024));
    let response = app.get(&long).await;
    assert_eq!(response.status, 414, "{}", response.body);
    assert_hardened("414", &response.headers);
    assert!(response.body.contains("at most 8192"), "{}", response.body);

    let many: Vec<(String, String)> = (0..120)
        .map(|i| (format!("X-Filler-{i}"), "x".into()))
        .collect();
    let headers: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = app
        .request_as(Some(&app.session), "GET", "/api/queues", &headers, b"")
        .await;
    assert_eq!(response.status, 431, "{}", response.body);
    assert_hardened("431 (count)", &response.headers);
    assert!(response.is_json(), "the API's format: {}", response.body);

    let big = "y".repeat(40 * 1024);
    let response = app
        .request_as(
            Some(&app.session),
            "GET",
            "/",
            &[("X-Big", big.as_str())],
            b"",
        )
        .await;
    assert_eq!(response.status, 431, "{}", response.body);
    assert_hardened("431 (bytes)", &response.headers);
    app.stop().await;
}

/// A sign-in flood: 200 concurrent wrong passwords (the per-address limit
/// turned off, as if from 200 addresses). Hashing runs a few at a time,
/// the rest are told to come back (503) or held back per account (429),
/// the server keeps answering, and every attempt is in the audit log.
#[tokio::test]
async fn a_sign_in_flood_is_bounded_and_fully_audited() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.login = LimitSpec::Off;
        s.connections.per_address = 0;
    })
    .await;
    let attempts = (0..200).map(|i| {
        let app = &app;
        async move {
            let user = if i % 2 == 0 { "admin" } else { "nobody" };
            app.login(user, &format!("wrong password {i}"), "/")
                .await
                .status
        }
    });
    let (statuses, health) = tokio::join!(futures_util::future::join_all(attempts), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.get_as(None, "/health").await.status
    });
    assert_eq!(health, 200, "the server kept answering");
    for status in &statuses {
        assert!([401, 429, 503].contains(status), "{statuses:?}");
    }
    assert!(statuses.contains(&401), "some were checked: {statuses:?}");
    let audit = crate::helpers::eventually("every attempt is audited", async || {
        let audit = app
            .get("/api/audit?action=user.sign_in&limit=1")
            .await
            .json();
        if audit["total"] == 200 {
            Ok(audit)
        } else {
            Err(audit.to_string())
        }
    })
    .await;
    assert_eq!(audit["lost"], 0, "{audit}");
    app.stop().await;
}
