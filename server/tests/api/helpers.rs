//! Starting a real server for a test and talking to it.
//!
//! Every test gets its own server on port 0 with its own backend state: a
//! fresh SQLite file in a temporary directory (embedded), or a unique key
//! prefix on the local Redis. Nothing is mocked.

use std::path::PathBuf;
use std::time::Duration;

use coord::queue::{JobError, JobId, NewJob, Outcome, OutcomeResult, QueueName, Queues};
use coord::time::now_ms;
use serde_json::Value;
use server::configuration::Settings;
use server::secret::SecretUrl;
use server::startup::{RunningApp, spawn_app};

pub use crate::http::TestResponse;
use crate::http::request;

/// Where the Redis tests connect.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A temporary directory removed when dropped (also when the test panics).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-{label}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deletes every key under a Redis prefix when dropped.
pub struct RedisKeys(pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        use redis::Commands;
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
        let dir = TempDir::new("api");
        let app = spawn_app(&embedded_settings(&dir))
            .await
            .expect("the embedded server starts");
        Self {
            app,
            _dir: dir,
            _redis: None,
        }
    }

    /// A server on the local Redis under a unique key prefix (SQLite for
    /// the SQL side).
    pub async fn spawn_redis() -> Self {
        let dir = TempDir::new("redis");
        let prefix = format!("switchyard-test-{:016x}", rand::random::<u64>());
        let settings = Settings {
            redis_url: Some(SecretUrl::new(REDIS_URL)),
            redis_prefix: prefix.clone(),
            ..embedded_settings(&dir)
        };
        let keys = RedisKeys(prefix);
        let app = spawn_app(&settings)
            .await
            .expect("the Redis server starts (is Redis running on 127.0.0.1:6379?)");
        Self {
            app,
            _dir: dir,
            _redis: Some(keys),
        }
    }

    /// The queue API of the running server, for setting up data.
    pub fn queues(&self) -> &Queues {
        &self.app.state.queues
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        request(self.app.address, "GET", path, &[], b"").await
    }

    pub async fn post(&self, path: &str) -> TestResponse {
        request(self.app.address, "POST", path, &[], b"").await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.post_raw(path, "application/json", body.to_string().as_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> TestResponse {
        request(
            self.app.address,
            "POST",
            path,
            &[("Content-Type", content_type)],
            body,
        )
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
        let name = QueueName::new(queue).expect("valid queue");
        let jobs = (0..n)
            .map(|i| NewJob::new("doomed", serde_json::json!({ "i": i })))
            .collect();
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
                result: OutcomeResult::Failed {
                    error: JobError::fatal("upstream said no"),
                    retry_delay_ms: 0,
                },
            })
            .collect();
        backend
            .step(&name, outcomes, 0, lease)
            .await
            .expect("record failures");
        claimed.into_iter().map(|job| job.id).collect()
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

/// The text of the `<td>` with `data-test-id="count-<state>"` in the row of
/// `queue` on the overview page.
pub fn overview_count(html: &str, queue: &str, state: &str) -> String {
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
    cell[open_end..close].trim().to_string()
}
