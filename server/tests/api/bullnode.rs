//! Real BullMQ 5 from Node (`end2end/bullmq/*.mjs`) for the BullMQ
//! tests: a script run to its end, and a worker run until it completed a
//! number of jobs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use server::bullmq::BullSettings;
use server::config::secret::SecretUrl;
use test_support::redis::REDIS_URL;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::TestApp;

/// A dashboard watching the BullMQ queues under `prefix` on the test
/// Redis, discovering new ones every 200 ms.
pub async fn spawn_watching(prefix: &str) -> TestApp {
    let prefix = prefix.to_owned();
    TestApp::spawn_with(move |s| {
        s.bullmq = Some(BullSettings {
            url: SecretUrl::new(REDIS_URL),
            prefix,
            queues: Vec::new(),
            discover_every: Duration::from_millis(200),
        });
    })
    .await
}

pub fn node(script: &str, args: &[&str]) -> Command {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/bullmq");
    assert!(
        dir.join("../node_modules/bullmq").exists(),
        "bullmq is not installed: run `npm ci` in end2end (scripts/prepare does)"
    );
    let mut command = Command::new("node");
    command
        .arg(dir.join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Runs a script to its end and returns its last JSON line.
pub async fn run(script: &str, args: &[&str]) -> Value {
    let output = tokio::time::timeout(Duration::from_secs(30), node(script, args).output())
        .await
        .expect("node finishes within 30 s")
        .expect("run node");
    assert!(output.status.success(), "{script} failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{script} printed {text:?}: {e}"))
}

/// Runs a real worker on `queue` until it completed `n` jobs.
pub async fn work(prefix: &str, queue: &str, n: usize) {
    work_for(prefix, queue, n, 0).await;
}

/// Runs a real worker on `queue`, taking `work_ms` a job, until it
/// completed `n` jobs.
pub async fn work_for(prefix: &str, queue: &str, n: usize, work_ms: u64) {
    let count = n.to_string();
    let work = work_ms.to_string();
    let args = [
        REDIS_URL,
        prefix,
        queue,
        "--count",
        &count,
        "--drain-delay",
        "1",
        "--work",
        &work,
    ];
    let mut child = node("worker.mjs", &args).spawn().expect("start the worker");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut completed = 0;
    while completed < n {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the worker answers within 30 s")
            .expect("read the worker")
            .expect("the worker printed a line");
        let line: Value = serde_json::from_str(&line).expect("json line");
        match line["event"].as_str() {
            Some("ready") => {}
            Some("completed") => completed += 1,
            _ => panic!("unexpected worker line {line}"),
        }
    }
    let _ = child.wait().await;
}
