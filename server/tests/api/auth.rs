//! Sign-in and who may do what: the session cookie, CSRF tokens on every
//! mutation, the roles each route needs, the login form (redirects, cookie
//! attributes, brute-force limit), sign-out and session expiry, and the
//! audit log naming the signed-in user.

use std::time::Duration;

use serde_json::{Value, json};
use server::auth::users::{Password, Role, UserName};
use server::ratelimits::LimitSpec;
use test_support::http::{SseNext, TestResponse, url_encode};

use crate::helpers::{CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Session, TEST_PASSWORD, TestApp};

/// How a mutating route is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A page's button: an urlencoded form, answered in HTML.
    Form,
    /// The JSON API.
    Api,
}

/// One mutating route, the least role it needs, and a body it accepts.
struct Route {
    path: &'static str,
    kind: Kind,
    needs: Role,
    /// Form fields (page routes).
    fields: &'static [(&'static str, &'static str)],
    /// JSON body (API routes; `null` sends none).
    json: fn() -> Value,
}

fn no_json() -> Value {
    Value::Null
}

const fn form(path: &'static str, needs: Role) -> Route {
    Route {
        path,
        kind: Kind::Form,
        needs,
        fields: &[],
        json: no_json,
    }
}

const fn form_with(
    path: &'static str,
    needs: Role,
    fields: &'static [(&'static str, &'static str)],
) -> Route {
    Route {
        path,
        kind: Kind::Form,
        needs,
        fields,
        json: no_json,
    }
}

const fn api(path: &'static str, needs: Role, json: fn() -> Value) -> Route {
    Route {
        path,
        kind: Kind::Api,
        needs,
        fields: &[],
        json,
    }
}

/// Every mutating route of the dashboard, with the role it needs.
fn mutating_routes() -> Vec<Route> {
    use Role::{Admin, Operator};
    vec![
        // Page forms: operator.
        form_with("/queues/emails/pause", Operator, &[("back", "/queues")]),
        form("/queues/emails/resume", Operator),
        form("/queues/emails/retry-failed", Operator),
        form_with("/queues/emails/retry-selected", Operator, &[("id", "42")]),
        form_with(
            "/queues/emails/retry-matching",
            Operator,
            &[("state", "failed"), ("name", "x")],
        ),
        form_with(
            "/queues/emails/remove-matching",
            Operator,
            &[("state", "failed"), ("name", "x")],
        ),
        form("/queues/emails/errors/00000000000000ff/retry", Operator),
        form("/queues/emails/errors/00000000000000ff/remove", Operator),
        form("/queues/emails/jobs/42/retry", Operator),
        form("/queues/emails/jobs/42/remove", Operator),
        form("/queues/emails/jobs/42/promote", Operator),
        form("/queues/emails/jobs/42/stop-retrying", Operator),
        form_with(
            "/ratelimits/unblock",
            Operator,
            &[("policy", "dashboard.pages"), ("key", "10.9.8.7")],
        ),
        form("/workers/nobody-1-abcdef/quiet", Operator),
        form("/workers/nobody-1-abcdef/resume", Operator),
        form("/workers/nobody-1-abcdef/stop", Operator),
        form("/schedules/auth-schedule/pause", Operator),
        form("/schedules/auth-schedule/resume", Operator),
        form("/schedules/auth-schedule/run", Operator),
        form_with("/cache/auth-ns/invalidate", Operator, &[("key", "k1")]),
        form("/cache/auth-ns/invalidate-all", Operator),
        form("/alerts/0000000000000000/ack", Operator),
        form_with(
            "/alerts/0000000000000000/silence",
            Operator,
            &[("for", "1h")],
        ),
        form("/alerts/0000000000000000/unsilence", Operator),
        // Page forms: admin.
        form_with(
            "/alerts/rules",
            Admin,
            &[
                ("name", "auth-rule"),
                ("kind", "queue_backlog"),
                ("target", "emails"),
                ("threshold", "5000"),
            ],
        ),
        form_with("/alerts/rules/auth-rule", Admin, &[("threshold", "10")]),
        form("/alerts/rules/auth-rule/delete", Admin),
        form_with(
            "/schedules",
            Admin,
            &[
                ("id", "auth-schedule"),
                ("queue", "emails"),
                ("job_name", "x"),
                ("kind", "every"),
                ("every", "1h"),
            ],
        ),
        form_with(
            "/schedules/auth-schedule/edit",
            Admin,
            &[
                ("queue", "emails"),
                ("job_name", "x"),
                ("kind", "every"),
                ("every", "2h"),
            ],
        ),
        form("/schedules/auth-schedule/remove", Admin),
        // API: operator.
        api("/api/queues/emails/pause", Operator, no_json),
        api("/api/queues/emails/resume", Operator, no_json),
        api("/api/queues/emails/retry-failed", Operator, no_json),
        api("/api/queues/emails/retry-matching", Operator, no_json),
        api("/api/queues/emails/remove-matching", Operator, no_json),
        api(
            "/api/queues/emails/errors/00000000000000ff/retry",
            Operator,
            no_json,
        ),
        api(
            "/api/queues/emails/errors/00000000000000ff/remove",
            Operator,
            no_json,
        ),
        api(
            "/api/queues/emails/jobs",
            Operator,
            || json!({ "name": "x" }),
        ),
        api("/api/queues/emails/jobs/42/retry", Operator, no_json),
        api("/api/queues/emails/jobs/42/remove", Operator, no_json),
        api("/api/queues/emails/jobs/42/promote", Operator, no_json),
        api(
            "/api/queues/emails/jobs/42/stop-retrying",
            Operator,
            no_json,
        ),
        api(
            "/api/ratelimits/dashboard.api/unblock",
            Operator,
            || json!({ "key": "10.9.8.7" }),
        ),
        api("/api/workers/nobody-1-abcdef/quiet", Operator, no_json),
        api("/api/workers/nobody-1-abcdef/resume", Operator, no_json),
        api("/api/workers/nobody-1-abcdef/stop", Operator, no_json),
        api("/api/schedules/auth-schedule/pause", Operator, no_json),
        api("/api/schedules/auth-schedule/resume", Operator, no_json),
        api("/api/schedules/auth-schedule/run", Operator, no_json),
        api(
            "/api/cache/auth-ns/invalidate",
            Operator,
            || json!({ "key": "k1" }),
        ),
        api("/api/cache/auth-ns/invalidate-all", Operator, no_json),
        api("/api/alerts/0000000000000000/ack", Operator, no_json),
        api(
            "/api/alerts/0000000000000000/silence",
            Operator,
            || json!({ "forSecs": 3600 }),
        ),
        // API: admin.
        api(
            "/api/alerts/rules",
            Admin,
            || json!({ "name": "auth-rule", "kind": "queue_backlog", "threshold": 5000 }),
        ),
        api("/api/alerts/rules/auth-rule/delete", Admin, no_json),
        api(
            "/api/schedules",
            Admin,
            || json!({ "id": "auth-schedule", "queue": "emails", "jobName": "x", "repeat": { "type": "every", "everyMs": 3600000 } }),
        ),
        api("/api/schedules/auth-schedule/remove", Admin, no_json),
        // BullMQ queues: operator (refused before BullMQ is even asked).
        form("/bullmq/emails/pause", Operator),
        form("/bullmq/emails/resume", Operator),
        form("/bullmq/emails/retry-failed", Operator),
        form_with(
            "/bullmq/emails/clean",
            Operator,
            &[("state", "completed"), ("older_than", "1d")],
        ),
        form("/bullmq/emails/jobs/42/retry", Operator),
        form("/bullmq/emails/jobs/42/remove", Operator),
        form("/bullmq/emails/jobs/42/promote", Operator),
        form("/bullmq/emails/errors/0000000000000000/retry", Operator),
        form("/bullmq/emails/errors/0000000000000000/remove", Operator),
        form("/bullmq/emails/schedulers/nightly/run", Operator),
        form("/bullmq/emails/schedulers/nightly/remove", Admin),
        api(
            "/api/bullmq/emails/schedulers/nightly/run",
            Operator,
            no_json,
        ),
        api(
            "/api/bullmq/emails/schedulers/nightly/remove",
            Admin,
            no_json,
        ),
        api("/api/bullmq/emails/pause", Operator, no_json),
        api("/api/bullmq/emails/resume", Operator, no_json),
        api("/api/bullmq/emails/retry-failed", Operator, no_json),
        api(
            "/api/bullmq/emails/clean",
            Operator,
            || json!({ "state": "completed", "olderThanSecs": 86400 }),
        ),
        api("/api/bullmq/emails/jobs/42/retry", Operator, no_json),
        api("/api/bullmq/emails/jobs/42/remove", Operator, no_json),
        api("/api/bullmq/emails/jobs/42/promote", Operator, no_json),
        api(
            "/api/bullmq/emails/errors/0000000000000000/retry",
            Operator,
            no_json,
        ),
        api(
            "/api/bullmq/emails/errors/0000000000000000/remove",
            Operator,
            no_json,
        ),
        // Users: admin.
        form_with(
            "/users",
            Admin,
            &[("name", "auth-user"), ("role", "viewer"), ("password", "")],
        ),
        form_with("/users/auth-user/role", Admin, &[("role", "operator")]),
        form("/users/auth-user/disable", Admin),
        form("/users/auth-user/enable", Admin),
        form("/users/auth-user/sessions/0123456789abcdef/revoke", Admin),
        form("/users/auth-user/sessions/revoke", Admin),
        api(
            "/api/users/auth-user/sessions/0123456789abcdef/revoke",
            Admin,
            no_json,
        ),
        api("/api/users/auth-user/sessions/revoke", Admin, no_json),
    ]
}

/// Whether a table path (`/queues/emails/pause`) is an instance of a
/// router pattern (`/queues/{queue}/pause`).
fn instance_of(path: &str, pattern: &str) -> bool {
    let path: Vec<&str> = path.split('/').collect();
    let pattern: Vec<&str> = pattern.split('/').collect();
    path.len() == pattern.len()
        && path
            .iter()
            .zip(&pattern)
            .all(|(p, q)| p == q || (q.starts_with('{') && q.ends_with('}')))
}

/// The table above covers every `POST` route the router declares (but the
/// sign-in and sign-out, tested on their own), read from the router's
/// source: a new mutating route without an entry here fails this test, so
/// the checks below cannot silently miss it.
#[test]
fn the_table_lists_every_mutating_route() {
    let source = include_str!("../../src/startup/router.rs");
    let mut declared = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.split(".route_layer(").next().unwrap_or(chunk);
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        if chunk.contains("post(") && path != "/login" && path != "/logout" {
            declared.push(path.to_owned());
        }
    }
    assert!(declared.len() > 20, "read the router: {declared:?}");
    let table = mutating_routes();
    for pattern in &declared {
        assert!(
            table.iter().any(|r| instance_of(r.path, pattern)),
            "POST {pattern} is not in mutating_routes()"
        );
    }
    for route in &table {
        assert!(
            declared.iter().any(|p| instance_of(route.path, p)),
            "{} is not a POST route of the router",
            route.path
        );
    }
}

/// Every page (`GET`, HTML) of the dashboard but `/config`.
const PAGES: &[&str] = &[
    "/",
    "/queues",
    "/queues/emails",
    "/queues/emails/find?id=42",
    "/queues/emails/jobs/42",
    "/channels",
    "/instances",
    "/ratelimits",
    "/alerts",
    "/audit",
];

/// Every read of the JSON API.
const API_READS: &[&str] = &[
    "/api/queues",
    "/api/queues/emails",
    "/api/queues/emails/jobs",
    "/api/queues/emails/jobs/42",
    "/api/alerts",
    "/api/alerts/history",
    "/api/audit",
    "/api/ratelimits",
    "/api/metrics/history",
];

/// Every live stream.
const STREAMS: &[&str] = &[
    "/events/overview",
    "/events/queues",
    "/events/channels",
    "/events/instances",
    "/events/ratelimits",
    "/events/alerts",
    "/events/queues/emails",
    "/events/queues/emails/jobs/42",
];

/// Routes answering without a session.
const PUBLIC: &[&str] = &[
    "/login",
    "/health",
    "/health/ready",
    "/metrics",
    "/style.css",
    "/app.js",
];

/// A server whose own rate limits stay out of the way of the many
/// requests of a table test (the login's is not touched).
async fn unlimited() -> TestApp {
    TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::Off;
        s.rate_limits.actions = LimitSpec::Off;
        s.rate_limits.api = LimitSpec::Off;
    })
    .await
}

impl Route {
    fn what(&self) -> String {
        format!("POST {} ({:?}, needs {})", self.path, self.kind, self.needs)
    }

    /// Sends the route's body as `session` with `csrf`: `None` sends no
    /// token at all; in the form field for forms, in the header for the
    /// API.
    async fn send(
        &self,
        app: &TestApp,
        session: Option<&Session>,
        csrf: Option<&str>,
    ) -> TestResponse {
        match self.kind {
            Kind::Form => {
                let mut fields = self.fields.to_vec();
                if let Some(token) = csrf {
                    fields.push((CSRF_FIELD, token));
                }
                app.post_form_raw(session, self.path, &fields).await
            }
            Kind::Api => {
                let body = (self.json)();
                let body = if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                };
                let mut headers = vec![("Content-Type", "application/json")];
                if let Some(token) = csrf {
                    headers.push((CSRF_HEADER, token));
                }
                app.request_as(session, "POST", self.path, &headers, body.as_bytes())
                    .await
            }
        }
    }

    /// Sends the route's body as `session` with its own CSRF token.
    async fn send_as(&self, app: &TestApp, session: &Session) -> TestResponse {
        self.send(app, Some(session), Some(&session.csrf)).await
    }
}

/// The error text of a refusal: the JSON `error` under `/api/`, the page
/// otherwise (checked to be in the route's format).
fn message(response: &TestResponse, kind: Kind, what: &str) -> String {
    match kind {
        Kind::Api => {
            assert!(
                response.is_json(),
                "{what}: {:?} {}",
                response.headers,
                response.body
            );
            response.error()
        }
        Kind::Form => {
            assert!(
                response.is_html(),
                "{what}: {:?} {}",
                response.headers,
                response.body
            );
            response.body.clone()
        }
    }
}

fn assert_status(response: &TestResponse, status: u16, what: &str) {
    assert_eq!(
        response.status, status,
        "{what}: {:?} {}",
        response.headers, response.body
    );
}

/// Neither "who are you" nor "you may not".
fn assert_allowed(response: &TestResponse, what: &str) {
    assert!(
        response.status != 401 && response.status != 403,
        "{what} was refused: {} {:?} {}",
        response.status,
        response.headers,
        response.body
    );
}

/// Asserts `response` is the redirect to the login page coming back to
/// `back` (a path and query).
fn assert_to_login(response: &TestResponse, back: &str) {
    assert_status(response, 303, &format!("GET {back}"));
    let expected = format!("/login?next={}", url_encode(back));
    assert_eq!(
        response.header("location"),
        Some(expected.as_str()),
        "GET {back}: {:?}",
        response.headers
    );
}

// ---------------------------------------------------------------------
// Mutations: sign-in, roles, CSRF

#[tokio::test]
async fn anonymous_mutations_answer_401_in_the_routes_format() {
    let app = unlimited().await;
    app.complete_jobs("emails", 1).await;
    for route in mutating_routes() {
        let what = format!("anonymous {}", route.what());
        let response = route.send(&app, None, None).await;
        assert_status(&response, 401, &what);
        let text = message(&response, route.kind, &what);
        assert!(!text.is_empty(), "{what}");
        // A forged token does not stand in for a session either.
        let forged = route.send(&app, None, Some("forged")).await;
        assert_status(&forged, 401, &format!("{what} with a token"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_may_not_mutate_and_is_told_the_role_needed() {
    let app = unlimited().await;
    app.complete_jobs("emails", 1).await;
    let viewer = app.sign_in_as("vera", Role::Viewer).await;
    for route in mutating_routes() {
        let what = format!("viewer {}", route.what());
        let response = route.send_as(&app, &viewer).await;
        assert_status(&response, 403, &what);
        let text = message(&response, route.kind, &what);
        assert!(text.contains(route.needs.as_str()), "{what}: {text}");
    }
    // Nothing happened.
    assert!(!app.counts("emails").await.paused);
    app.stop().await;
}

#[tokio::test]
async fn an_operator_may_not_use_admin_routes() {
    let app = unlimited().await;
    let operator = app.sign_in_as("otto", Role::Operator).await;
    let admin_routes: Vec<Route> = mutating_routes()
        .into_iter()
        .filter(|r| r.needs == Role::Admin)
        .collect();
    assert_eq!(admin_routes.len(), 20);
    for route in admin_routes {
        let what = format!("operator {}", route.what());
        let response = route.send_as(&app, &operator).await;
        assert_status(&response, 403, &what);
        let text = message(&response, route.kind, &what);
        assert!(text.contains("admin"), "{what}: {text}");
    }
    // GET /config is the admin's too.
    let config = app.get_as(Some(&operator), "/config").await;
    assert_status(&config, 403, "operator GET /config");
    assert!(config.is_html(), "{:?}", config.headers);
    assert!(config.body.contains("admin"), "{}", config.body);
    app.stop().await;
}

#[tokio::test]
async fn every_mutation_needs_the_sessions_csrf_token() {
    let app = unlimited().await;
    app.complete_jobs("emails", 1).await;
    let operator = app.sign_in_as("otto", Role::Operator).await;
    // A real token, but another session's: as good as a forged one.
    let other = app.sign_in_as("olga", Role::Operator).await;
    for route in mutating_routes() {
        // The right role for the route.
        let session = if route.needs == Role::Admin {
            &app.session
        } else {
            &operator
        };
        let what = format!("{} with the right role", route.what());
        let missing = route.send(&app, Some(session), None).await;
        assert_status(&missing, 403, &format!("{what}, no CSRF token"));
        message(&missing, route.kind, &what);
        let wrong = route.send(&app, Some(session), Some("forged-token")).await;
        assert_status(&wrong, 403, &format!("{what}, a forged CSRF token"));
        let foreign = route.send(&app, Some(session), Some(&other.csrf)).await;
        assert_status(&foreign, 403, &format!("{what}, another session's token"));
        let empty = route.send(&app, Some(session), Some("")).await;
        assert_status(&empty, 403, &format!("{what}, an empty token"));
    }
    // The refused requests changed nothing.
    assert!(!app.counts("emails").await.paused);
    app.stop().await;
}

#[tokio::test]
async fn the_right_role_with_its_token_may_act() {
    // Default limits: the unblocks below need the dashboard's policies.
    let app = TestApp::spawn().await;
    app.complete_jobs("emails", 1).await;
    let operator = app.sign_in_as("otto", Role::Operator).await;
    let admin = app.sign_in_as("ada", Role::Admin).await;

    // Operator: pause (page form, token in the field), resume (API).
    let paused = app
        .post_form_as(
            Some(&operator),
            "/queues/emails/pause",
            &[("back", "/queues")],
        )
        .await;
    assert_status(&paused, 303, "operator pauses with the form");
    assert_eq!(paused.header("location"), Some("/queues"));
    assert!(app.counts("emails").await.paused);
    let resumed = app
        .post_as(Some(&operator), "/api/queues/emails/resume")
        .await;
    assert_status(&resumed, 200, "operator resumes through the API");
    // A form may carry the token in the header instead of the field.
    let paused = app
        .request_as(
            Some(&operator),
            "POST",
            "/queues/emails/pause",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                (CSRF_HEADER, &operator.csrf),
            ],
            b"back=%2Fqueues",
        )
        .await;
    assert_status(&paused, 303, "operator pauses, token in the header");
    let resumed = app
        .post_form_as(
            Some(&operator),
            "/queues/emails/resume",
            &[("back", "/queues")],
        )
        .await;
    assert_status(&resumed, 303, "operator resumes with the form");
    // Enqueueing.
    let enqueued = app
        .post_json_as(
            Some(&operator),
            "/api/queues/emails/jobs",
            &json!({ "name": "x" }),
        )
        .await;
    assert_status(&enqueued, 201, "operator enqueues");
    // Unblocking a key that is not blocked is harmless, and allowed.
    let unblocked = app
        .post_form_as(
            Some(&operator),
            "/ratelimits/unblock",
            &[("policy", "dashboard.pages"), ("key", "10.9.8.7")],
        )
        .await;
    assert_allowed(&unblocked, "operator unblocks with the form");
    assert_eq!(unblocked.status, 303, "{}", unblocked.body);
    let unblocked = app
        .post_json_as(
            Some(&operator),
            "/api/ratelimits/dashboard.api/unblock",
            &json!({ "key": "10.9.8.7" }),
        )
        .await;
    assert_status(&unblocked, 200, "operator unblocks through the API");
    // Acknowledging an alert that is not firing: allowed, nothing done.
    let acked = app
        .post_form_as(Some(&operator), "/alerts/0000000000000000/ack", &[])
        .await;
    assert_status(&acked, 303, "operator acknowledges with the form");

    // Admin: a rule through the form and the API, then deleted.
    let created = app
        .post_form_as(
            Some(&admin),
            "/alerts/rules",
            &[
                ("name", "auth-rule"),
                ("kind", "queue_backlog"),
                ("target", "emails"),
                ("threshold", "5000"),
            ],
        )
        .await;
    assert_status(&created, 303, "admin creates a rule with the form");
    let updated = app
        .post_json_as(
            Some(&admin),
            "/api/alerts/rules",
            &json!({ "name": "auth-rule", "kind": "queue_backlog", "threshold": 10 }),
        )
        .await;
    assert_status(&updated, 200, "admin saves a rule through the API");
    let deleted = app
        .post_as(Some(&admin), "/api/alerts/rules/auth-rule/delete")
        .await;
    assert_status(&deleted, 200, "admin deletes the rule through the API");
    let config = app.get_as(Some(&admin), "/config").await;
    assert_status(&config, 200, "admin GET /config");
    app.stop().await;
}

// ---------------------------------------------------------------------
// Reading: pages, API, streams

#[tokio::test]
async fn anonymous_pages_redirect_to_the_login_coming_back_here() {
    let app = unlimited().await;
    assert_to_login(&app.get_as(None, "/").await, "/");
    assert_eq!(
        app.get_as(None, "/").await.header("location"),
        Some("/login?next=%2F")
    );
    let with_query = app.get_as(None, "/queues?x=1").await;
    assert_to_login(&with_query, "/queues?x=1");
    assert_eq!(
        with_query.header("location"),
        Some("/login?next=%2Fqueues%3Fx%3D1")
    );
    for page in PAGES.iter().chain(&["/config"]) {
        assert_to_login(&app.get_as(None, page).await, page);
    }
    // A wrong session cookie is no session.
    let forged = Session::new("not-a-session", "whatever");
    assert_to_login(&app.get_as(Some(&forged), "/").await, "/");
    app.stop().await;
}

#[tokio::test]
async fn anonymous_api_reads_and_streams_answer_401() {
    let app = unlimited().await;
    for path in API_READS {
        let response = app.get_as(None, path).await;
        assert_status(&response, 401, &format!("anonymous GET {path}"));
        assert!(response.is_json(), "GET {path}: {:?}", response.headers);
        assert!(!response.error().is_empty(), "GET {path}");
    }
    for path in STREAMS {
        let stream = app.sse_as(None, path).await;
        // Checked before reading on: an open stream would never end.
        assert_eq!(
            stream.status, 401,
            "anonymous GET {path}: {:?}",
            stream.headers
        );
        let response = stream.into_response().await;
        assert!(response.is_html(), "GET {path}: {:?}", response.headers);
    }
    app.stop().await;
}

#[tokio::test]
async fn public_routes_answer_without_a_session() {
    let app = unlimited().await;
    for path in PUBLIC {
        let response = app.get_as(None, path).await;
        assert_status(&response, 200, &format!("anonymous GET {path}"));
    }
    let login = app.get_as(None, "/login").await;
    assert!(login.is_html(), "{:?}", login.headers);
    assert!(login.body.contains("password"), "{}", login.body);
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_may_read_everything_but_the_config() {
    let app = unlimited().await;
    app.complete_jobs("emails", 1).await;
    let viewer = app.sign_in_as("vera", Role::Viewer).await;
    for page in PAGES {
        let response = app.get_as(Some(&viewer), page).await;
        assert_allowed(&response, &format!("viewer GET {page}"));
        assert_ne!(
            response.status, 303,
            "viewer GET {page}: {:?}",
            response.headers
        );
        assert!(response.is_html(), "viewer GET {page}");
    }
    for path in [
        "/",
        "/queues",
        "/queues/emails",
        "/alerts",
        "/audit",
        "/ratelimits",
    ] {
        let response = app.get_as(Some(&viewer), path).await;
        assert_status(&response, 200, &format!("viewer GET {path}"));
    }
    for path in [
        "/api/queues",
        "/api/queues/emails",
        "/api/alerts",
        "/api/audit",
        "/api/ratelimits",
    ] {
        let response = app.get_as(Some(&viewer), path).await;
        assert_status(&response, 200, &format!("viewer GET {path}"));
    }
    for path in API_READS {
        let response = app.get_as(Some(&viewer), path).await;
        assert_allowed(&response, &format!("viewer GET {path}"));
    }
    for path in STREAMS {
        let stream = app.sse_as(Some(&viewer), path).await;
        assert!(
            stream.status != 401 && stream.status != 403,
            "viewer GET {path}: {} {:?}",
            stream.status,
            stream.headers
        );
    }
    let stream = app.sse_as(Some(&viewer), "/events/overview").await;
    assert_eq!(stream.status, 200);
    let config = app.get_as(Some(&viewer), "/config").await;
    assert_status(&config, 403, "viewer GET /config");
    assert!(config.body.contains("admin"), "{}", config.body);
    app.stop().await;
}

#[tokio::test]
async fn the_helpers_session_survives_a_restart() {
    let app = TestApp::spawn().await;
    // The API pauses only queues that exist.
    app.make_failed("emails", 1).await;
    assert_eq!(app.get("/").await.status, 200);
    let app = app.restart().await;
    assert_eq!(app.get("/").await.status, 200);
    assert_eq!(app.post("/api/queues/emails/pause").await.status, 200);
    app.stop().await;
}

// ---------------------------------------------------------------------
// Signing in and out

async fn add_user(app: &TestApp, name: &str, password: &str, role: Role) {
    app.app
        .state
        .users
        .add(
            &UserName::new(name).unwrap(),
            &Password::new(password).unwrap(),
            role,
        )
        .await
        .expect("add user");
}

/// The `switchyard_session` cookie a sign-in set, checked for its
/// attributes; returns the `Set-Cookie` value.
fn session_cookie(response: &TestResponse, secure: bool) -> &str {
    let set = response.set_cookie(SESSION_COOKIE).unwrap_or_else(|| {
        panic!(
            "no {SESSION_COOKIE} cookie set: {} {:?}",
            response.status, response.headers
        )
    });
    let attrs: Vec<String> = set
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    let value = set
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_start_matches(&format!("{SESSION_COOKIE}="));
    assert!(value.len() >= 32, "a long random id: {set}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{set}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{set}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{set}");
    assert_eq!(attrs.iter().any(|a| a == "secure"), secure, "{set}");
    set
}

#[tokio::test]
async fn signing_in_with_the_right_password_starts_a_session() {
    let app = TestApp::spawn().await;
    add_user(&app, "ada", "ada's long password", Role::Operator).await;
    // The API pauses only queues that exist.
    app.make_failed("emails", 1).await;

    // Wrong password, unknown user: one answer, no cookie.
    for (user, password) in [
        ("ada", "not her password"),
        ("nobody", "ada's long password"),
    ] {
        let refused = app.login(user, password, "/").await;
        assert_status(&refused, 401, &format!("sign in as {user}"));
        assert!(refused.is_html(), "{:?}", refused.headers);
        assert!(
            refused
                .body
                .to_lowercase()
                .contains("wrong user name or password"),
            "{}",
            refused.body
        );
        assert!(
            refused.set_cookie(SESSION_COOKIE).is_none(),
            "{:?}",
            refused.headers
        );
    }

    // The right one: back to where the login was asked for.
    let response = app.login("ada", "ada's long password", "/queues?x=1").await;
    assert_status(&response, 303, "sign in as ada");
    assert_eq!(response.header("location"), Some("/queues?x=1"));
    session_cookie(&response, false);
    let session = app.session_from(&response).await.expect("a live session");
    let page = app.get_as(Some(&session), "/").await;
    assert_status(&page, 200, "the new session's GET /");
    assert_status(
        &app.get_as(Some(&session), "/api/queues").await,
        200,
        "its API read",
    );
    // The new session acts, with its token, as the operator it is.
    assert_status(
        &app.post_as(Some(&session), "/api/queues/emails/pause")
            .await,
        200,
        "ada pauses",
    );
    assert_status(
        &app.post_json_as(
            Some(&session),
            "/api/alerts/rules",
            &json!({ "name": "r", "kind": "queue_backlog", "threshold": 1 }),
        )
        .await,
        403,
        "ada is no admin",
    );
    app.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = TestApp::spawn_with(|s| {
        s.alerts.external_url = "https://switchyard.example.com".into();
        // Derived from the external URL when the settings are read; set
        // here too, as these settings are built by hand.
        s.auth.secure_cookies = true;
    })
    .await;
    add_user(&app, "ada", "ada's long password", Role::Viewer).await;
    let response = app.login("ada", "ada's long password", "/").await;
    assert_status(&response, 303, "sign in");
    session_cookie(&response, true);
    app.stop().await;
}

#[tokio::test]
async fn the_login_only_sends_back_to_local_paths() {
    let app = TestApp::spawn().await;
    add_user(&app, "ada", "ada's long password", Role::Viewer).await;
    for (next, location) in [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("http://evil.example/queues", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("/alerts", "/alerts"),
    ] {
        let response = app.login("ada", "ada's long password", next).await;
        assert_status(&response, 303, &format!("sign in with next={next:?}"));
        assert_eq!(
            response.header("location"),
            Some(location),
            "next={next:?}: {:?}",
            response.headers
        );
    }
    // Without a next field at all.
    let response = app
        .post_form_raw(
            None,
            "/login",
            &[("username", "ada"), ("password", "ada's long password")],
        )
        .await;
    assert_status(&response, 303, "sign in without next");
    assert_eq!(response.header("location"), Some("/"));
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_loses_its_sessions() {
    let app = TestApp::spawn().await;
    let session = app.sign_in_as("dan", Role::Operator).await;
    assert_status(&app.get_as(Some(&session), "/").await, 200, "dan's GET /");
    // The password is right (the helpers give every user the same one).
    let before = app.login("dan", TEST_PASSWORD, "/").await;
    assert_status(&before, 303, "dan signs in");
    app.app
        .state
        .users
        .disable(&UserName::new("dan").unwrap())
        .await
        .expect("disable");
    let refused = app.login("dan", TEST_PASSWORD, "/").await;
    assert_status(&refused, 401, "disabled dan signs in");
    assert!(
        refused
            .body
            .to_lowercase()
            .contains("wrong user name or password"),
        "{}",
        refused.body
    );
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());
    assert_to_login(&app.get_as(Some(&session), "/").await, "/");
    assert_status(
        &app.post_as(Some(&session), "/api/queues/emails/pause")
            .await,
        401,
        "disabled dan's old session acts",
    );
    app.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let session = app.sign_in_as("vera", Role::Viewer).await;
    assert_status(
        &app.get_as(Some(&session), "/").await,
        200,
        "GET / signed in",
    );
    // Without its token, signing out is refused like any other post.
    let refused = app.post_form_raw(Some(&session), "/logout", &[]).await;
    assert_status(&refused, 403, "sign out without a CSRF token");
    assert_status(
        &app.get_as(Some(&session), "/").await,
        200,
        "still signed in",
    );

    let response = app.post_form_as(Some(&session), "/logout", &[]).await;
    assert_status(&response, 303, "sign out");
    // To the sign-in page (a query, e.g. for a notice, may follow).
    let location = response.header("location").unwrap_or_default();
    assert_eq!(
        location.split('?').next(),
        Some("/login"),
        "{:?}",
        response.headers
    );
    assert_eq!(
        app.app.state.users.session(session.id()).await.unwrap(),
        None,
        "the store forgot the session"
    );
    assert_to_login(&app.get_as(Some(&session), "/").await, "/");
    assert_status(
        &app.get_as(Some(&session), "/api/queues").await,
        401,
        "the old cookie's API read",
    );
    // The helpers' own session is another one, and still works.
    assert_status(&app.get("/").await, 200, "the admin's GET /");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_session_sends_to_the_login() {
    let app = TestApp::spawn().await;
    let users = &app.app.state.users;
    let (id, csrf) = users
        .create_session(&UserName::new("admin").unwrap(), Duration::from_millis(1))
        .await
        .expect("session");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let expired = Session::new(&id, &csrf);
    assert_to_login(&app.get_as(Some(&expired), "/").await, "/");
    assert_status(
        &app.post_as(Some(&expired), "/api/queues/emails/pause")
            .await,
        401,
        "an expired session acts",
    );
    app.stop().await;
}

#[tokio::test]
async fn the_eleventh_login_attempt_in_a_minute_is_refused() {
    // Only the login's own limit applies here.
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.pages = LimitSpec::Off;
        s.rate_limits.actions = LimitSpec::Off;
        s.rate_limits.api = LimitSpec::Off;
    })
    .await;
    add_user(&app, "ada", "ada's long password", Role::Viewer).await;
    // Each guess names another account, so the per-account throttle (its
    // own test below) stays out of the way of the per-address limit.
    for attempt in 1..=10 {
        let response = app
            .login(
                &format!("guess{attempt}"),
                &format!("guess number {attempt}"),
                "/",
            )
            .await;
        assert_status(&response, 401, &format!("wrong attempt {attempt}"));
    }
    let response = app.login("ada", "ada's long password", "/").await;
    assert_status(&response, 429, "the 11th attempt, with the right password");
    let wait: u64 = response
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", response.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(response.set_cookie(SESSION_COOKIE).is_none());
    // The limit is the dashboard's, listed with its others.
    let policies = app.get("/api/ratelimits").await.json()["policies"].clone();
    assert!(
        policies
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "dashboard.login")),
        "{policies}"
    );
    // Signed-in users are not held up by it.
    assert_status(&app.get("/").await, 200, "a signed-in page");
    app.stop().await;
}

#[tokio::test]
async fn the_login_limit_is_a_setting() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.actions = LimitSpec::Off;
        s.rate_limits.login = LimitSpec::per(3, 60);
    })
    .await;
    for attempt in 1..=3 {
        let response = app
            .login(&format!("nobody{attempt}"), "not a password at all", "/")
            .await;
        assert_status(&response, 401, &format!("attempt {attempt}"));
    }
    let response = app.login("nobody4", "not a password at all", "/").await;
    assert_status(&response, 429, "the 4th attempt");
    assert!(
        response.header("retry-after").is_some(),
        "{:?}",
        response.headers
    );
    app.stop().await;

    // Off: no limit at all.
    let app = TestApp::spawn_with(|s| s.rate_limits.login = LimitSpec::Off).await;
    for attempt in 1..=12 {
        let response = app
            .login(&format!("nobody{attempt}"), "not a password at all", "/")
            .await;
        assert_status(
            &response,
            401,
            &format!("attempt {attempt} without a limit"),
        );
    }
    app.stop().await;
}

/// Guesses spread over addresses stay under each address's limit but not
/// under the account's: after 5 wrong passwords the account's next
/// attempts wait (429 with Retry-After, even with the right password),
/// while other accounts are not affected.
#[tokio::test]
async fn wrong_passwords_for_one_account_hold_back_its_next_attempts() {
    let app = TestApp::spawn_with(|s| s.rate_limits.login = LimitSpec::Off).await;
    add_user(&app, "ada", "ada's long password", Role::Viewer).await;
    for attempt in 1..=5 {
        let response = app
            .login("ada", &format!("guess number {attempt}"), "/")
            .await;
        assert_status(&response, 401, &format!("wrong attempt {attempt}"));
    }
    let response = app.login("ada", "ada's long password", "/").await;
    assert_status(&response, 429, "held back after 5 wrong passwords");
    assert!(
        response.header("retry-after").is_some(),
        "{:?}",
        response.headers
    );
    assert!(
        response
            .body
            .contains("Too many wrong passwords for this account"),
        "{}",
        response.body
    );
    assert!(response.set_cookie(SESSION_COOKIE).is_none());
    // Another account is not held back.
    add_user(&app, "bob", "bob's long password", Role::Viewer).await;
    let bob = app.login("bob", "bob's long password", "/").await;
    assert_status(&bob, 303, "another account");
    // The delay is short: ada gets in once it has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.login("ada", "ada's long password", "/").await;
    assert_status(&response, 303, "after the delay");
    let audit = app
        .get("/api/audit?action=user.sign_in&actor=ada")
        .await
        .json();
    assert!(
        audit["entries"].to_string().contains("held back"),
        "the held-back attempt is audited: {audit}"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------
// Audit

#[tokio::test]
async fn the_audit_log_names_the_signed_in_user() {
    let app = TestApp::spawn().await;
    app.complete_jobs("emails", 1).await;
    let olga = app.sign_in_as("olga", Role::Operator).await;
    let paused = app
        .post_form_as(Some(&olga), "/queues/emails/pause", &[("back", "/queues")])
        .await;
    assert_status(&paused, 303, "olga pauses");
    let resumed = app.post_as(Some(&olga), "/api/queues/emails/resume").await;
    assert_status(&resumed, 200, "olga resumes");
    let entries = app.get("/api/audit").await.json()["entries"].clone();
    let entries = entries.as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in entries {
        assert_eq!(e["actor"], "olga", "{e}");
    }
    let html = app.get("/audit?actor=olga").await.body;
    assert_eq!(
        html.matches(r#"data-test-id="audit-row""#).count(),
        2,
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_open_live_stream_ends_when_its_session_does() {
    let app = TestApp::spawn_with(|s| s.auth.stream_recheck = Duration::from_millis(200)).await;
    let session = app.sign_in_as("vera", Role::Viewer).await;
    let mut signed_out = app.sse_as(Some(&session), "/events/queues").await;
    let mut kept = app.sse("/events/queues").await;
    assert_eq!(signed_out.status, 200);
    // Both streams are open and sending.
    signed_out.expect_event(Duration::from_secs(10)).await;
    kept.expect_event(Duration::from_secs(10)).await;

    let out = app.post_form_as(Some(&session), "/logout", &[]).await;
    assert_status(&out, 303, "sign out");
    // The signed-out tab's stream ends within a recheck or two…
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match signed_out.next(Duration::from_secs(2)).await {
            SseNext::End => break,
            _ if std::time::Instant::now() > deadline => {
                panic!("the stream outlived its session")
            }
            _ => {}
        }
    }
    // …while the other session's stream stays open.
    assert!(
        !matches!(kept.next(Duration::from_millis(800)).await, SseNext::End),
        "another session's stream ended too"
    );
    app.stop().await;
}
