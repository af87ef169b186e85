//! Fixtures shared by the integration tests: one fresh backend per test (its
//! own SQLite file, or its own Redis key prefix) so tests run in parallel.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::{JobId, JobState, QueueName, Queues};

/// Instantiates every case (`async fn case(q: Queues)` in the calling
/// file's `cases` module) once per backend, each on a fresh fixture: the
/// conformance suite and the lease-race cases share it.
#[allow(unused_macros)]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::common::embedded().await;
                    super::cases::$case(fixture.queues()).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::common::redis().await;
                    super::cases::$case(fixture.queues()).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::common::redis_at(&super::common::cluster_url()).await;
                    super::cases::$case(fixture.queues()).await;
                    fixture.cleanup().await;
                }
            )*
        }
    };
}

/// Runs each BullMQ interop case (`async fn case(fx: BullFixture)` in the
/// calling file) on the shared Redis and on the shared cluster, each on a
/// fresh [`BullFixture`] whose prefix starts with the case's tag.
#[allow(unused_macros)]
macro_rules! on_redis_and_cluster {
    ($($case:ident: $tag:literal),* $(,)?) => {
        mod single {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::common::BullFixture::new($tag).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::common::BullFixture::on_cluster($tag).await).await;
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub use test_support::redis::{REDIS_URL, cluster_url};

/// A unique suffix for names of files, prefixes and queues.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{:016x}", rand::random::<u64>())
}

/// A queue name unique to one test.
pub fn queue(tag: &str) -> QueueName {
    QueueName::new(unique(tag)).expect("valid queue name")
}

/// A backend under test and what must be cleaned up after it.
pub enum Fixture {
    Embedded {
        queues: Queues,
        path: PathBuf,
    },
    Redis {
        queues: Queues,
        prefix: String,
        url: String,
    },
}

impl Fixture {
    pub fn queues(&self) -> Queues {
        match self {
            Fixture::Embedded { queues, .. } | Fixture::Redis { queues, .. } => queues.clone(),
        }
    }

    /// Deletes the SQLite files or the Redis keys of this test.
    pub async fn cleanup(self) {
        match self {
            Fixture::Embedded { path, .. } => remove_sqlite(&path),
            Fixture::Redis { prefix, url, .. } => delete_prefix_at(&url, &prefix).await,
        }
    }
}

/// A fresh embedded backend on its own temporary SQLite file.
pub async fn embedded() -> Fixture {
    let path = temp_db_path("conformance");
    let backend = SqlBackend::open(path.to_str().expect("utf-8 temp path"))
        .await
        .expect("open sqlite backend");
    Fixture::Embedded {
        queues: Queues::new(Arc::new(backend)),
        path,
    }
}

/// A fresh Redis backend under its own key prefix.
pub async fn redis() -> Fixture {
    redis_at(REDIS_URL).await
}

/// A fresh Redis backend at `url` (the shared server or the shared
/// cluster) under its own key prefix.
pub async fn redis_at(url: &str) -> Fixture {
    let prefix = unique("sytest");
    let backend = RedisBackend::connect(url, &prefix)
        .await
        .expect("connect to the test Redis (or cluster)");
    Fixture::Redis {
        queues: Queues::new(Arc::new(backend)),
        prefix,
        url: url.to_owned(),
    }
}

/// A temporary SQLite path unique to one test.
pub fn temp_db_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.db", unique(tag)))
}

/// Removes an SQLite database with its WAL files.
pub fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// A plain connection for test bookkeeping. No response timeout: the
/// default (500 ms) is too short for a scan of a Redis that other tests fill
/// at the same time, and a cleanup that silently times out leaks keys.
pub async fn raw_redis() -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(REDIS_URL)
        .expect("client")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("raw connection to the test Redis")
}

/// Every key under a prefix on the shared Redis, by SCAN so that a busy
/// shared Redis is not blocked.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    test_support::redis::keys_matching(REDIS_URL, &format!("{prefix}:*")).await
}

/// Deletes every key under a test prefix on the Redis (or cluster) at
/// `url`.
pub async fn delete_prefix_at(url: &str, prefix: &str) {
    test_support::redis::delete_matching(url, &format!("{prefix}:*")).await;
}

/// Deletes every Redis key under a test prefix on the shared Redis.
pub async fn delete_prefix(prefix: &str) {
    delete_prefix_at(REDIS_URL, prefix).await;
}

/// Polls `check` every 20 ms until it returns true; panics with `what`
/// after 15 s. A bound for a test that waits on background work, not a
/// speed assertion.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(15), check).await;
}

/// [`eventually`] with a bound of `limit`.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Waits until a job reaches `state` (see [`eventually`]).
pub async fn until_state(q: &Queues, queue: &QueueName, id: &JobId, state: JobState, what: &str) {
    eventually(what, move || async move {
        matches!(q.job(queue, id).await, Ok(job) if job.state == state)
    })
    .await;
}

// The Node BullMQ 5 helpers (`end2end/bullmq/*.mjs`) the interop tests run.

/// `end2end/`, where the helpers and `node_modules` live.
pub fn end2end() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end")
}

/// Fails clearly when BullMQ is not installed.
pub fn require_bullmq() {
    let manifest = end2end().join("node_modules/bullmq/package.json");
    assert!(
        manifest.exists(),
        "BullMQ is not installed: run `npm ci` in end2end/ (looked for {})",
        manifest.display()
    );
}

/// A helper script's command line.
pub fn helper(script: &str, args: &[&str]) -> tokio::process::Command {
    require_bullmq();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(end2end().join("bullmq").join(script))
        .args(args)
        .current_dir(end2end())
        .kill_on_drop(true);
    cmd
}

/// Runs a helper to completion and parses its last stdout line.
pub async fn run(script: &str, args: &[&str]) -> serde_json::Value {
    finish(helper(script, args), script, args).await
}

/// Runs an ES module given as text (`node --input-type=module -e`) in
/// `end2end/`, so it imports `bullmq` and `./bullmq/common.mjs` like the
/// helpers do, and parses its last stdout line; `process.argv.slice(1)`
/// is `args`. For a test's one-off use of BullMQ's API.
pub async fn run_module(source: &str, args: &[&str]) -> serde_json::Value {
    require_bullmq();
    let mut cmd = tokio::process::Command::new("node");
    cmd.args(["--input-type=module", "-e", source])
        .args(args)
        .current_dir(end2end())
        .kill_on_drop(true);
    finish(cmd, "an inline module", args).await
}

/// Waits (30 s at most) for a node process to succeed and parses its last
/// stdout line.
async fn finish(mut cmd: tokio::process::Command, what: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        cmd.stderr(std::process::Stdio::piped()).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} did not finish"))
    .unwrap_or_else(|e| panic!("cannot run node {what}: {e} (is node on PATH?)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{what} printed {last:?}: {e}"))
}

/// A test's own BullMQ prefix and handle on the shared Redis or the shared
/// cluster; its keys are deleted by [`BullFixture::done`].
pub struct BullFixture {
    pub bull: coord::bullmq::BullMq,
    pub prefix: String,
    pub url: String,
}

impl BullFixture {
    pub async fn new(tag: &str) -> Self {
        Self::at(REDIS_URL, unique(tag)).await
    }

    /// On the cluster, under a hash-tagged prefix (`{bull-…}`), as BullMQ
    /// itself needs there (a flow is added in one transaction, so all its
    /// queues share the tag too).
    pub async fn on_cluster(tag: &str) -> Self {
        Self::at(&cluster_url(), format!("{{{}}}", unique(tag))).await
    }

    pub async fn at(url: &str, prefix: String) -> Self {
        let bull = coord::bullmq::BullMq::connect(url, &prefix)
            .await
            .expect("connect to the test Redis (or cluster)");
        Self {
            bull,
            prefix,
            url: url.to_owned(),
        }
    }

    /// Starts `worker.mjs` on this prefix's `queue` (with `extra`
    /// arguments) and waits until it listens; its lines are awaited for at
    /// most `patience` each.
    pub async fn node_worker(&self, queue: &str, extra: &[&str], patience: Duration) -> NodeWorker {
        let mut args = vec![self.url.as_str(), self.prefix.as_str(), queue];
        args.extend_from_slice(extra);
        let mut child = helper("worker.mjs", &args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start node worker.mjs (is node on PATH?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut worker = NodeWorker {
            child,
            lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
            patience,
        };
        let ready = worker.next().await;
        assert_eq!(ready["event"], "ready", "{ready}");
        worker
    }

    pub async fn done(self) {
        test_support::redis::delete_matching(&self.url, &format!("{}:*", self.prefix)).await;
    }
}

/// A running `worker.mjs` and its JSON lines.
pub struct NodeWorker {
    pub child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    patience: Duration,
}

impl NodeWorker {
    /// The next line, within the worker's patience.
    pub async fn next(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(self.patience, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("worker printed nothing for {:?}", self.patience))
            .expect("read worker output")
            .expect("worker exited early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("worker printed {line:?}: {e}"))
    }

    /// Waits (up to 15 s) for the worker to exit, successfully.
    pub async fn wait_exit(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("worker exits")
            .expect("worker status");
        assert!(status.success(), "worker exited with {status}");
    }
}

/// One test per case and backend — `embedded`, `redis` (the shared test
/// Redis) and `cluster` — from cases written once as `async fn(&World)`
/// against the calling test file's `World` (`embedded()`, `redis(url)`,
/// `cleanup()`), so a suite cannot forget a backend.
#[allow(unused_macros)]
macro_rules! world_suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let world = super::World::embedded();
                    super::$case(&world).await;
                    world.cleanup().await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let world = super::World::redis(super::common::REDIS_URL);
                    super::$case(&world).await;
                    world.cleanup().await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let world = super::World::redis(&super::common::cluster_url());
                    super::$case(&world).await;
                    world.cleanup().await;
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use world_suite;
