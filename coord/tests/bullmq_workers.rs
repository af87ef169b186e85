//! `BullMq::workers` against real BullMQ 5 workers (Node, from
//! `end2end/node_modules`): listed from `CLIENT LIST` while they run, with
//! their `name` option, and gone once they close.
//!
//! Needs `node` on PATH and `npm ci` run in `end2end/`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use coord::bullmq::{BullMq, BullWorker};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use common::{REDIS_URL, eventually, unique};
use test_support::redis::PrivateRedis;

/// `end2end/`, where `node_modules` and the helpers' `common.mjs` live.
fn end2end() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end")
}

/// A BullMQ worker that does nothing with its jobs: it prints
/// `{"event":"ready"}` once connected, and closes (`worker.close()`, then
/// `{"event":"closed"}`) when its stdin ends.
const WORKER: &str = r#"
import { Worker } from 'bullmq';
import { connectionFromUrl, emit } from 'COMMON';
const { BULL_URL, BULL_PREFIX, BULL_QUEUE, BULL_NAME } = process.env;
const opts = { prefix: BULL_PREFIX, connection: connectionFromUrl(BULL_URL), drainDelay: 1 };
if (BULL_NAME) opts.name = BULL_NAME;
const worker = new Worker(BULL_QUEUE, async () => {}, opts);
worker.on('error', (err) => process.stderr.write(`worker error: ${err}\n`));
await worker.waitUntilReady();
emit({ event: 'ready' });
process.stdin.resume();
process.stdin.on('end', async () => {
  await worker.close();
  emit({ event: 'closed' });
  process.exit(0);
});
"#;

/// A running worker process.
struct Worker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    /// Starts a worker of `queue` and waits until it is connected.
    async fn start(url: &str, prefix: &str, queue: &str, name: Option<&str>) -> Self {
        let manifest = end2end().join("node_modules/bullmq/package.json");
        assert!(
            manifest.exists(),
            "BullMQ is not installed: run `npm ci` in end2end/ (looked for {})",
            manifest.display()
        );
        let common = end2end().join("bullmq/common.mjs");
        let script = WORKER.replace("COMMON", &format!("file://{}", common.display()));
        let mut child = Command::new("node")
            .args(["--input-type=module", "-e", &script])
            .current_dir(end2end())
            .env("BULL_URL", url)
            .env("BULL_PREFIX", prefix)
            .env("BULL_QUEUE", queue)
            .env("BULL_NAME", name.unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (is node on PATH?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut worker = Self {
            child,
            lines: BufReader::new(stdout).lines(),
        };
        assert_eq!(worker.next().await["event"], "ready");
        worker
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(15), self.lines.next_line())
            .await
            .expect("worker printed nothing for 15 s")
            .expect("read worker output")
            .expect("worker exited early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("worker printed {line:?}: {e}"))
    }

    /// Closes the worker as BullMQ does (`worker.close()`), then waits for
    /// the process to end.
    async fn close(mut self) {
        drop(self.child.stdin.take());
        assert_eq!(self.next().await["event"], "closed");
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("worker exits")
            .expect("worker status");
        assert!(status.success(), "worker exited with {status}");
    }
}

/// The workers of `queue`, sorted by name (unnamed first).
async fn names(bull: &BullMq, queue: &str) -> Vec<Option<String>> {
    let mut names: Vec<_> = bull
        .workers(queue)
        .await
        .expect("workers")
        .into_iter()
        .map(|w| w.name)
        .collect();
    names.sort();
    names
}

fn assert_connection(worker: &BullWorker) {
    assert!(
        worker.addr.parse::<SocketAddr>().is_ok(),
        "an ip:port address: {worker:?}"
    );
    assert!(worker.id > 0, "{worker:?}");
}

#[tokio::test]
async fn bullmq_workers_are_listed_while_connected() {
    let prefix = unique("bull-workers");
    let bull = &BullMq::connect(REDIS_URL, &prefix).await.expect("connect");
    // Its base64 is "cS/DqSs=": '/', '+' and '=' in the connection name.
    let odd = "q/é+";
    assert!(bull.workers("mail").await.expect("workers").is_empty());

    let plain = Worker::start(REDIS_URL, &prefix, "mail", None).await;
    let named = Worker::start(REDIS_URL, &prefix, "mail", Some("resizer-1")).await;
    let other = Worker::start(REDIS_URL, &prefix, odd, Some("x")).await;
    eventually("both workers of mail are listed", move || async move {
        names(bull, "mail").await == vec![None, Some("resizer-1".to_owned())]
    })
    .await;
    let workers = bull.workers("mail").await.expect("workers");
    for worker in &workers {
        assert_connection(worker);
        assert_eq!(worker.node, None);
        assert!(
            worker
                .client_name
                .starts_with(&format!("{prefix}:bWFpbA=="))
        );
    }
    let mut sorted = workers.clone();
    sorted.sort_by_key(|w| w.addr.parse::<SocketAddr>().ok());
    assert_eq!(workers, sorted, "sorted by address");

    // One read for many queues.
    let queues = ["mail", odd, "idle"].map(str::to_owned);
    let by_queue = bull.workers_by_queue(&queues).await.expect("by queue");
    let counts: Vec<usize> = queues.iter().map(|q| by_queue[q].len()).collect();
    assert_eq!(counts, vec![2, 1, 0]);
    assert_eq!(by_queue[odd][0].name.as_deref(), Some("x"));
    assert!(bull.workers_by_queue(&[]).await.expect("none").is_empty());

    // Another prefix sees none of them.
    let stranger = BullMq::connect(REDIS_URL, &unique("bull-workers"))
        .await
        .expect("connect");
    assert!(stranger.workers("mail").await.expect("workers").is_empty());

    named.close().await;
    eventually("the closed worker is gone", move || async move {
        names(bull, "mail").await == vec![None]
    })
    .await;
    plain.close().await;
    other.close().await;
    eventually("every worker is gone", move || async move {
        bull.workers("mail").await.expect("workers").is_empty()
            && bull.workers(odd).await.expect("workers").is_empty()
    })
    .await;

    let err = bull.workers("a:b").await.expect_err("bad name");
    assert!(err.is_bad_input(), "{err:?}");
}

/// On a cluster a worker's connection is named on every master its client
/// touched: it is listed once, from the master serving its queue, where it
/// blocks waiting for jobs.
#[tokio::test]
async fn cluster_bullmq_workers_are_listed_once() {
    let url = test_support::redis::cluster_url();
    let prefix = format!("{{{}}}", unique("bull-workers"));
    let bull = &BullMq::connect(&url, &prefix).await.expect("connect");
    assert!(bull.workers("mail").await.expect("workers").is_empty());

    let named = Worker::start(&url, &prefix, "mail", Some("resizer-1")).await;
    let plain = Worker::start(&url, &prefix, "mail", None).await;
    eventually(
        "both workers are listed once, blocked on the queue's node",
        move || async move {
            let workers = bull.workers("mail").await.expect("workers");
            workers.len() == 2 && workers.iter().all(|w| w.cmd.as_deref() == Some("bzpopmin"))
        },
    )
    .await;
    let workers = bull.workers("mail").await.expect("workers");
    for worker in &workers {
        assert_connection(worker);
        assert!(worker.node.is_some(), "{worker:?}");
    }
    assert_eq!(workers[0].node, workers[1].node);
    let mut raw = test_support::redis::raw(&url).await;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut raw)
        .await
        .expect("CLUSTER NODES");
    let topology = coord::redis::Topology::parse(&nodes);
    let owner = topology
        .master_of(format!("{prefix}:mail:marker").as_bytes())
        .map(|n| n.address.clone());
    assert_eq!(workers[0].node, owner, "listed from the queue's master");
    assert_eq!(
        names(bull, "mail").await,
        vec![None, Some("resizer-1".to_owned())]
    );

    named.close().await;
    plain.close().await;
    eventually("the workers are gone", move || async move {
        bull.workers("mail").await.expect("workers").is_empty()
    })
    .await;
}

/// A user whose ACL forbids `CLIENT LIST` gets an error saying so.
#[tokio::test]
async fn bullmq_workers_refused_by_an_acl_say_so() {
    let server = PrivateRedis::started().await;
    let mut admin = test_support::redis::raw(&server.url()).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("watcher")
        .arg("on")
        .arg(">secret")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-client|list")
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let url = server.url().replace("redis://", "redis://watcher:secret@");
    let bull = BullMq::connect(&url, "bull").await.expect("connect");
    let err = bull.workers("mail").await.expect_err("CLIENT LIST refused");
    assert!(err.is_unavailable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("refuses CLIENT LIST") && text.contains("+client|list"),
        "{text}"
    );
}
