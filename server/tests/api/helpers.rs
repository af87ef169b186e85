//! Starting a real server for a test and talking to it.
//!
//! Every test gets its own server on port 0 with its own backend state: a
//! fresh SQLite file in a temporary directory (embedded), or a unique key
//! prefix on the local Redis. Nothing is mocked.
//!
//! Every [`TestApp`] is signed in: it creates an admin named
//! [`TEST_ADMIN`] in its own SQL database and a session for it, and the
//! plain request helpers ([`TestApp::get`], [`TestApp::post_form`]…) send
//! that session's cookie, and on anything but `GET` its CSRF token, as a
//! browser would. Tests of the access rules use the `*_as` helpers, which
//! take an explicit [`Session`] (or `None`, for an anonymous visitor) and
//! add nothing on their own.

use std::time::{Duration, Instant};

use coord::queue::{
    JobError, JobId, NewJob, Outcome, OutcomeResult, QueueCounts, QueueName, Queues,
};
use coord::time::now_ms;
use serde_json::Value;
use server::auth::users::{Password, Role, UserError, UserName};
use server::config::Settings;
use server::config::secret::SecretUrl;
use server::db::Database;
use server::startup::{RunningApp, spawn_app};
use test_support::html::strip_tags;
use test_support::http::{SseStream, TestResponse, form_encode, open_sse, request};
use test_support::redis::REDIS_URL;
use test_support::{TempDir, each_database};

/// The longest a test waits for something that happens eventually (a hub
/// snapshot, a background run, a worker): far above what it takes, so
/// only a real failure reaches it.
pub const WAIT: Duration = Duration::from_secs(20);

/// Name of the cookie carrying a notice across a redirect.
pub const NOTICE_COOKIE: &str = "switchyard_notice";

/// Name of the cookie carrying the session id.
pub const SESSION_COOKIE: &str = "switchyard_session";

/// Name of the header carrying the CSRF token of a non-form request.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Name of the form field carrying the CSRF token of a form post.
pub const CSRF_FIELD: &str = "csrf_token";

/// The user every [`TestApp`] is signed in as (an admin).
pub const TEST_ADMIN: &str = "admin";

/// The password of every user the helpers create ([`TestApp`]'s admin,
/// [`TestApp::sign_in_as`]), for tests that sign in over HTTP.
pub const TEST_PASSWORD: &str = "test password 1234";

/// How long the helpers' sessions last: far longer than any test.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

/// A signed-in session: what a browser holds after signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The `Cookie` pair, `switchyard_session=<id>`.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Session {
    /// A session from its id and CSRF token (as
    /// `UserStore::create_session` returns them).
    pub fn new(id: &str, csrf: &str) -> Self {
        Self {
            cookie: format!("{SESSION_COOKIE}={id}"),
            csrf: csrf.to_owned(),
        }
    }

    /// The session id (the cookie's value).
    pub fn id(&self) -> &str {
        self.cookie.split_once('=').map_or("", |(_, value)| value)
    }
}

/// Deletes every key under a Redis prefix when dropped.
pub struct RedisKeys(pub String, pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        use redis::Commands;
        if self.1.contains("+cluster://") {
            // Keys spread over the masters: the async helper scans each,
            // on a runtime of its own (a drop cannot await).
            let (url, pattern) = (self.1.clone(), format!("{}:*", self.0));
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(test_support::redis::delete_matching(&url, &pattern));
                }
            })
            .join();
            return;
        }
        let Ok(client) = redis::Client::open(REDIS_URL) else {
            return;
        };
        let Ok(mut con) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = match con.scan_match(format!("{}:*", self.0)) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for key in keys {
            let _: Result<(), _> = con.del(key);
        }
    }
}

/// A running server and the state behind it.
pub struct TestApp {
    pub app: RunningApp,
    /// The session the plain request helpers send (an admin's,
    /// [`TEST_ADMIN`]).
    pub session: Session,
    /// What it was started with, so [`TestApp::restart`] can start it again.
    settings: Settings,
    _dir: TempDir,
    _redis: Option<RedisKeys>,
}

/// Settings for an embedded server on a fresh SQLite file in `dir`.
pub fn embedded_settings(dir: &TempDir) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretUrl::new(format!(
            "sqlite://{}?mode=rwc",
            dir.0.join("test.db").display()
        )),
        log: "warn".into(),
        ..Settings::default()
    }
}

impl TestApp {
    /// A server on the embedded backend.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server on the embedded backend with settings changed by `change`.
    pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> Self {
        let dir = TempDir::new("api");
        let mut settings = embedded_settings(&dir);
        change(&mut settings);
        let app = spawn_app(&settings)
            .await
            .expect("the embedded server starts");
        Self::signed_in(app, settings, dir, None).await
    }

    /// The test app of a started server, signed in as [`TEST_ADMIN`]
    /// (created unless this database has it already: after a restart, or
    /// for a second instance sharing a PostgreSQL schema).
    async fn signed_in(
        app: RunningApp,
        settings: Settings,
        dir: TempDir,
        redis: Option<RedisKeys>,
    ) -> Self {
        let session = sign_in(&app, TEST_ADMIN, Role::Admin).await;
        Self {
            app,
            session,
            settings,
            _dir: dir,
            _redis: redis,
        }
    }

    /// A server on the local Redis under a unique key prefix (SQLite for
    /// the SQL side).
    pub async fn spawn_redis() -> Self {
        Self::spawn_redis_at(REDIS_URL).await
    }

    /// As [`TestApp::spawn_redis`], connecting with `url` (e.g. one with
    /// credentials).
    pub async fn spawn_redis_at(url: &str) -> Self {
        Self::spawn_redis_with(url, None, |_| {}).await
    }

    /// A second server on the local Redis under another server's `prefix`
    /// (a second dashboard instance of one deployment). It leaves the keys
    /// to the first one to delete.
    pub async fn spawn_redis_sharing(prefix: &str) -> Self {
        Self::spawn_redis_with(REDIS_URL, Some(prefix), |_| {}).await
    }

    /// A server on Redis at `url`, under `prefix` (shared with another
    /// server, which deletes the keys) or a fresh one (deleted when this
    /// server's test ends), with settings changed by `change`.
    pub async fn spawn_redis_with(
        url: &str,
        prefix: Option<&str>,
        change: impl FnOnce(&mut Settings),
    ) -> Self {
        let dir = TempDir::new("redis");
        let fresh = prefix.is_none();
        let prefix = prefix.map_or_else(
            || format!("switchyard-test-{:016x}", rand::random::<u64>()),
            str::to_owned,
        );
        let mut settings = Settings {
            redis_url: Some(SecretUrl::new(url)),
            redis_prefix: prefix.clone(),
            ..embedded_settings(&dir)
        };
        change(&mut settings);
        let app = spawn_app(&settings)
            .await
            .expect("the Redis server starts (is Redis running on 127.0.0.1:6379?)");
        Self::signed_in(
            app,
            settings,
            dir,
            // Lazily: a `RedisKeys` made and dropped here would delete the
            // shared prefix's keys under the first server.
            fresh.then(|| RedisKeys(prefix, url.to_owned())),
        )
        .await
    }

    /// Stops the server and starts a new one with the same settings, on
    /// the same database (and Redis prefix): a restart, as after a deploy.
    /// The new server listens on a new port. The session lives in the
    /// database, so it still signs in.
    pub async fn restart(self) -> Self {
        let Self {
            app,
            session,
            settings,
            _dir,
            _redis,
        } = self;
        app.stop().await;
        let app = spawn_app(&settings).await.expect("the server starts again");
        Self {
            app,
            session,
            settings,
            _dir,
            _redis,
        }
    }

    /// Starts a new session for [`TEST_ADMIN`] and sends it from now on:
    /// with Redis, sessions live there, so a Redis that came back without
    /// its data signed everybody out. Retried until the store answers.
    pub async fn sign_in_again(&mut self) {
        let users = self.app.state.users.clone();
        let admin = UserName::new(TEST_ADMIN).expect("valid user name");
        let (id, csrf) = eventually("a new session", async || {
            users
                .create_session(&admin, SESSION_TTL)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        self.session = Session::new(&id, &csrf);
    }

    /// Creates user `name` with `role` and password [`TEST_PASSWORD`]
    /// (or gives an existing one that role) and starts a session for it.
    pub async fn sign_in_as(&self, name: &str, role: Role) -> Session {
        sign_in(&self.app, name, role).await
    }

    /// The queue API of the running server, for setting up data.
    pub fn queues(&self) -> &Queues {
        &self.app.state.queues
    }

    /// `GET`, signed in.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.get_as(Some(&self.session), path).await
    }

    /// A bodiless `POST`, signed in, with the CSRF token in its header.
    pub async fn post(&self, path: &str) -> TestResponse {
        self.post_as(Some(&self.session), path).await
    }

    /// `GET` sending a `Cookie` header (e.g. the notice cookie an action
    /// set) along with the session's.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> TestResponse {
        let cookies = format!("{}; {cookie}", self.session.cookie);
        request(self.app.address, "GET", path, &[("Cookie", &cookies)], b"").await
    }

    /// Posts an HTML form (`application/x-www-form-urlencoded`), as a
    /// browser submitting one of the dashboard's buttons would: signed
    /// in, with the CSRF token as the form's last field. Redirects are not
    /// followed.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.post_form_as(Some(&self.session), path, fields).await
    }

    /// Opens a live (server-sent events) stream, signed in.
    pub async fn sse(&self, path: &str) -> SseStream {
        self.sse_as(Some(&self.session), path).await
    }

    /// Opens a live stream as `session` (`None`: anonymous).
    pub async fn sse_as(&self, session: Option<&Session>, path: &str) -> SseStream {
        match session {
            Some(s) => open_sse(self.app.address, path, &[("Cookie", &s.cookie)]).await,
            None => open_sse(self.app.address, path, &[]).await,
        }
    }

    /// Sends one request as `session` (`None`: anonymous, no cookie). Only
    /// the session's cookie is added: no CSRF token, so a test can leave
    /// it out or forge it in `headers` or `body`.
    pub async fn request_as(
        &self,
        session: Option<&Session>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResponse {
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
        if let Some(s) = session {
            all.push(("Cookie", &s.cookie));
        }
        all.extend_from_slice(headers);
        request(self.app.address, method, path, &all, body).await
    }

    /// `GET` as `session` (`None`: anonymous).
    pub async fn get_as(&self, session: Option<&Session>, path: &str) -> TestResponse {
        self.request_as(session, "GET", path, &[], b"").await
    }

    /// A bodiless `POST` as `session`, with its CSRF token in the header
    /// (`None`: anonymous, no token).
    pub async fn post_as(&self, session: Option<&Session>, path: &str) -> TestResponse {
        match session {
            Some(s) => {
                self.request_as(session, "POST", path, &[(CSRF_HEADER, &s.csrf)], b"")
                    .await
            }
            None => self.request_as(None, "POST", path, &[], b"").await,
        }
    }

    /// Posts an HTML form as `session`, with its CSRF token appended as
    /// the field `csrf_token` (`None`: anonymous, no token).
    pub async fn post_form_as(
        &self,
        session: Option<&Session>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let mut all = fields.to_vec();
        if let Some(s) = session {
            all.push((CSRF_FIELD, &s.csrf));
        }
        self.post_form_raw(session, path, &all).await
    }

    /// Posts an HTML form as `session` with exactly `fields`: no CSRF
    /// token added (to leave it out, or forge it).
    pub async fn post_form_raw(
        &self,
        session: Option<&Session>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        self.request_as(
            session,
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form_encode(fields).as_bytes(),
        )
        .await
    }

    /// Posts JSON as `session`, with its CSRF token in the header (`None`:
    /// anonymous, no token).
    pub async fn post_json_as(
        &self,
        session: Option<&Session>,
        path: &str,
        body: &Value,
    ) -> TestResponse {
        self.post_raw_as(
            session,
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
        .await
    }

    /// Posts `body` as `session`, with its CSRF token in the header
    /// (`None`: anonymous, no token).
    pub async fn post_raw_as(
        &self,
        session: Option<&Session>,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> TestResponse {
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(s) = session {
            headers.push((CSRF_HEADER, &s.csrf));
        }
        self.request_as(session, "POST", path, &headers, body).await
    }

    /// Signs in over HTTP as a browser would (`POST /login`, anonymous)
    /// and returns the response, not followed.
    pub async fn login(&self, username: &str, password: &str, next: &str) -> TestResponse {
        self.post_form_raw(
            None,
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// The session a response's `Set-Cookie` started, with its CSRF token
    /// read from the store; `None` when no session cookie was set or the
    /// store does not know it.
    pub async fn session_from(&self, response: &TestResponse) -> Option<Session> {
        let set = response.set_cookie(SESSION_COOKIE)?;
        let pair = set.split(';').next().unwrap_or_default().trim();
        let id = pair.split_once('=').map_or("", |(_, v)| v);
        let (_, csrf) = self.app.state.users.session(id).await.ok()??;
        Some(Session::new(id, &csrf))
    }

    /// A queue's counts, straight from the backend.
    pub async fn counts(&self, queue: &str) -> QueueCounts {
        self.queues()
            .counts(&qn(queue))
            .await
            .expect("counts of the queue")
    }

    /// Posts JSON, signed in, with the CSRF token in its header.
    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.post_json_as(Some(&self.session), path, body).await
    }

    /// Posts `body`, signed in, with the CSRF token in its header.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> TestResponse {
        self.post_raw_as(Some(&self.session), path, content_type, body)
            .await
    }

    /// Enqueues through the API and returns the new job's id.
    pub async fn enqueue(&self, queue: &str, body: &Value) -> String {
        let response = self
            .post_json(&format!("/api/queues/{queue}/jobs"), body)
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        response.json()["id"]
            .as_str()
            .expect("id in the answer")
            .to_string()
    }

    /// Enqueues `n` jobs directly and moves them to the failed set, as a
    /// worker whose handler fails for good would, without running one.
    pub async fn make_failed(&self, queue: &str, n: usize) -> Vec<JobId> {
        let jobs = (0..n)
            .map(|i| NewJob::new("doomed", serde_json::json!({ "i": i })))
            .collect();
        self.fail_jobs(queue, jobs, JobError::fatal("upstream said no"))
            .await
    }

    /// Enqueues `jobs` and moves them all to the failed set with `error`
    /// (one claim and one recorded outcome each, as a worker would).
    pub async fn fail_jobs(&self, queue: &str, jobs: Vec<NewJob>, error: JobError) -> Vec<JobId> {
        self.finish_jobs(
            queue,
            jobs,
            OutcomeResult::Failed {
                error,
                retry_delay_ms: 0,
            },
        )
        .await
    }

    /// Enqueues `n` jobs and completes them, as a worker whose handler
    /// succeeds would, without running one.
    pub async fn complete_jobs(&self, queue: &str, n: usize) -> Vec<JobId> {
        let jobs = (0..n)
            .map(|i| NewJob::new("fine", serde_json::json!({ "i": i })))
            .collect();
        self.finish_jobs(
            queue,
            jobs,
            OutcomeResult::Completed {
                value: serde_json::json!("ok"),
            },
        )
        .await
    }

    /// Enqueues `jobs`, claims them all and records `result` for each.
    async fn finish_jobs(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
        result: OutcomeResult,
    ) -> Vec<JobId> {
        let name = qn(queue);
        let n = jobs.len();
        self.queues()
            .enqueue_bulk(&name, jobs)
            .await
            .expect("enqueue");
        let backend = self.queues().backend().clone();
        let lease = Duration::from_secs(30);
        let claimed = backend
            .step(&name, Vec::new(), n, lease)
            .await
            .expect("claim")
            .claimed;
        assert_eq!(claimed.len(), n, "all jobs claimed");
        let now = now_ms();
        let outcomes = claimed
            .iter()
            .map(|job| Outcome {
                job_id: job.id.clone(),
                lease_token: job.lease_token.clone().unwrap_or_default(),
                started_at: now,
                finished_at: now,
                result: result.clone(),
            })
            .collect();
        backend
            .step(&name, outcomes, 0, lease)
            .await
            .expect("record outcomes");
        claimed.into_iter().map(|job| job.id).collect()
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

/// Creates user `name` with `role` and [`TEST_PASSWORD`] on `app`'s
/// store, unless it exists (then it is given `role`), and starts a session
/// of [`SESSION_TTL`] for it.
async fn sign_in(app: &RunningApp, name: &str, role: Role) -> Session {
    let users = &app.state.users;
    let user = UserName::new(name).expect("valid user name");
    let password = Password::new(TEST_PASSWORD).expect("valid password");
    match users.add(&user, &password, role).await {
        Ok(_) => {}
        Err(UserError::Exists(_)) => users
            .set_role(&user, role)
            .await
            .unwrap_or_else(|e| panic!("give {name} the role {role}: {e}")),
        Err(e) => panic!("create user {name}: {e}"),
    }
    let (id, csrf) = users
        .create_session(&user, SESSION_TTL)
        .await
        .unwrap_or_else(|e| panic!("start a session for {name}: {e}"));
    Session::new(&id, &csrf)
}

/// Runs `body` on the server's database, migrated, on SQLite and then on
/// PostgreSQL ([`each_database`]), and closes it after: where the tests of
/// the SQL stores start, so that both implementations pass the same ones.
pub async fn each_migrated_database(mut body: impl AsyncFnMut(&Database)) {
    each_database(async |test_db| {
        let db = Database::connect(&SecretUrl::new(test_db.url()))
            .await
            .unwrap_or_else(|e| panic!("connect to {test_db}: {e}"));
        db.migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate {test_db}: {e}"));
        body(&db).await;
        db.close().await;
    })
    .await;
}

/// A queue name known to be valid.
pub fn qn(name: &str) -> QueueName {
    QueueName::new(name).expect("valid queue name")
}

/// Polls `check` (every 50 ms) until it answers `Ok`, for at most [`WAIT`];
/// panics with `what` and the last `Err` (what was seen instead) then.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not so within {WAIT:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The `name=value` pair of the notice cookie an action response sets, to
/// send back as a `Cookie` header; panics when there is none.
pub fn notice_cookie(response: &TestResponse) -> String {
    let set = response.set_cookie(NOTICE_COOKIE).unwrap_or_else(|| {
        panic!(
            "no {NOTICE_COOKIE} cookie set: {:?} {}",
            response.headers, response.body
        )
    });
    set.split(';').next().unwrap_or_default().to_string()
}

/// Asserts an action answered `303 See Other` to `location`, with a
/// notice cookie; returns the cookie pair.
pub fn assert_redirect(response: &TestResponse, location: &str) -> String {
    assert_eq!(
        response.status, 303,
        "{:?} {}",
        response.headers, response.body
    );
    assert_eq!(
        response.header("location"),
        Some(location),
        "{:?}",
        response.headers
    );
    notice_cookie(response)
}

/// The text of the `<td>` with `data-test-id="count-<state>"` in the row of
/// `queue` on the queues page.
pub fn row_count(html: &str, queue: &str, state: &str) -> String {
    let row_start = html
        .find(&format!(r#"data-test-id="queue-row-{queue}""#))
        .unwrap_or_else(|| panic!("no row for {queue} in {html}"));
    let row = &html[row_start..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    let cell_start = row
        .find(&format!(r#"data-test-id="count-{state}""#))
        .unwrap_or_else(|| panic!("no {state} cell in {row}"));
    let cell = &row[cell_start..];
    let open_end = cell.find('>').expect("cell tag end") + 1;
    let close = cell.find("</td>").expect("cell end");
    // The count is a link to that state's jobs: keep only the text.
    strip_tags(&cell[open_end..close])
}

/// The audit entries of `action`, newest first (at most 50), read from the
/// app's log directly.
pub async fn audited(app: &TestApp, action: &str) -> Vec<server::audit::AuditEntry> {
    let filter = server::audit::AuditFilter {
        action: Some(action.to_owned()),
        ..server::audit::AuditFilter::default()
    };
    app.app
        .state
        .audit
        .list(&filter, 0, 50)
        .await
        .expect("list the audit log")
        .0
}
