//! Stalled recovery across processes: a worker process takes a job and is
//! killed with SIGKILL mid-job (no outcome, no goodbye); a worker in another
//! process finds the expired lease, puts the job back and completes it.
//!
//! The test binary re-runs itself as the doomed worker process: with
//! `SWITCHYARD_CRASH_CHILD` set, the `child_worker` test becomes that worker.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::{JobState, NewJob, QueueName, Queues};
use serde_json::{Value, json};

use common::{queue, until_state};

const CHILD_ENV: &str = "SWITCHYARD_CRASH_CHILD";
const LEASE: Duration = Duration::from_millis(500);

/// Opens the backend described by `spec`: `sqlite:<path>` or `redis:<prefix>`.
async fn open(spec: &str) -> Queues {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        Queues::new(Arc::new(SqlBackend::open(path).await.expect("open sqlite")))
    } else if let Some(prefix) = spec.strip_prefix("redis:") {
        Queues::new(Arc::new(
            RedisBackend::connect(common::REDIS_URL, prefix)
                .await
                .expect("connect redis"),
        ))
    } else {
        panic!("unknown backend spec {spec}")
    }
}

/// In the child process: take jobs and hang on them until killed.
#[tokio::test]
async fn child_worker() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `killed_process_*`.
    };
    let (backend, queue) = spec.rsplit_once('|').expect("spec|queue");
    let queues = open(backend).await;
    let queue = QueueName::new(queue).expect("queue name");
    let _worker = queues
        .worker(queue)
        .lease(LEASE)
        .start(|_job| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Value::Null)
        })
        .expect("start worker");
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn killed_process_job_completes_later(backend: &str) {
    let queues = open(backend).await;
    let queue = queue("crash");
    let id = queues
        .enqueue(&queue, NewJob::new("survive", json!({"important": true})))
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture"])
        .env(CHILD_ENV, format!("{backend}|{queue}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child worker");
    until_state(
        &queues,
        &queue,
        &id,
        JobState::Active,
        "the child process takes the job",
    )
    .await;
    child.kill().expect("SIGKILL the child worker");
    child.wait().expect("reap the child");
    assert_eq!(
        queues.job(&queue, &id).await.unwrap().state,
        JobState::Active,
        "nothing settled the job"
    );

    let rescuer = queues
        .worker(queue.clone())
        .lease(LEASE)
        .stalled_interval(Duration::from_millis(100))
        .start(|job| async move { Ok(json!({ "rescued": job.id.to_string() })) })
        .unwrap();
    until_state(
        &queues,
        &queue,
        &id,
        JobState::Completed,
        "the job completes in this process",
    )
    .await;
    rescuer.shutdown(Duration::from_secs(5)).await;
    let job = queues.job(&queue, &id).await.unwrap();
    assert_eq!((job.stalled_count, job.attempts_made), (1, 2));
    assert_eq!(job.data, json!({"important": true}));
    let counts = queues.counts(&queue).await.unwrap();
    assert_eq!(
        (counts.completed, counts.active, counts.stalled_total),
        (1, 0, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_embedded() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let path = common::temp_db_path("crash");
    let spec = format!("sqlite:{}", path.display());
    killed_process_job_completes_later(&spec).await;
    common::remove_sqlite(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_redis() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let prefix = common::unique("sycrash");
    killed_process_job_completes_later(&format!("redis:{prefix}")).await;
    common::delete_prefix(&prefix).await;
}
