//! Tests of what is specific to the embedded (SQLite) backend: durability
//! across a restart, the per-state counters it maintains beside the rows,
//! writers in several tasks and several pools on one file, and how it treats
//! damaged rows. The shared behaviour is covered by the conformance suite.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::queue::sql::SqlBackend;
use coord::queue::{
    Job, JobError, JobId, JobOptions, JobState, NewJob, Outcome, OutcomeResult, QueueBackend,
    QueueName, Queues, Retention, RetentionPolicy,
};
use serde_json::{Value, json};
use sqlx::Row;

const LEASE: Duration = Duration::from_secs(30);

mod common;

use common::queue;

/// A database file of one test, deleted (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(tag: &str) -> Self {
        Self(common::temp_db_path(tag))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        common::remove_sqlite(&self.0);
    }
}

async fn open(db: &TempDb) -> SqlBackend {
    SqlBackend::open(db.path())
        .await
        .expect("open sqlite backend")
}

fn job(n: u64) -> NewJob {
    NewJob::new("test", json!({ "n": n }))
}

fn with(n: u64, options: JobOptions) -> NewJob {
    job(n).with_options(options)
}

fn outcome(job: &Job, result: OutcomeResult) -> Outcome {
    Outcome {
        job_id: job.id.clone(),
        lease_token: job.lease_token.clone().expect("claimed job has a token"),
        started_at: 1,
        finished_at: 2,
        result,
    }
}

fn done(job: &Job) -> Outcome {
    outcome(
        job,
        OutcomeResult::Completed {
            value: json!(job.id.as_str()),
        },
    )
}

fn fail(job: &Job, error: JobError, retry_delay_ms: u64) -> Outcome {
    outcome(
        job,
        OutcomeResult::Failed {
            error,
            retry_delay_ms,
        },
    )
}

async fn claim(b: &SqlBackend, q: &QueueName, n: usize) -> Vec<Job> {
    b.step(q, Vec::new(), n, LEASE).await.expect("step").claimed
}

async fn settle(b: &SqlBackend, q: &QueueName, outcomes: Vec<Outcome>) {
    let result = b.step(q, outcomes, 0, LEASE).await.expect("step");
    assert!(
        result.stale.is_empty(),
        "stale outcomes: {:?}",
        result.stale
    );
}

/// Rows per state, counted the slow way.
async fn row_counts(b: &SqlBackend, q: &QueueName) -> HashMap<String, u64> {
    sqlx::query("SELECT state, count(*) AS n FROM jobs WHERE queue = $1 GROUP BY state")
        .bind(q.as_str())
        .fetch_all(b.pool())
        .await
        .expect("count rows")
        .into_iter()
        .map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n") as u64))
        .collect()
}

/// The maintained counters equal the rows in each state.
async fn assert_counts_match_rows(b: &SqlBackend, q: &QueueName, after: &str) {
    let counts = b.counts(q).await.expect("counts");
    let rows = row_counts(b, q).await;
    for state in JobState::ALL {
        let actual = rows.get(state.as_str()).copied().unwrap_or(0);
        assert_eq!(
            counts.get(state),
            actual,
            "{state} counter after {after}: {counts:?} vs rows {rows:?}"
        );
    }
    assert_groups_match_rows(b, q, after).await;
}

/// The error groups the triggers keep equal the failed rows per group.
async fn assert_groups_match_rows(b: &SqlBackend, q: &QueueName, after: &str) {
    let counted = |sql: &'static str| async move {
        let mut rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .bind(q.as_str())
            .fetch_all(b.pool())
            .await
            .expect("count groups");
        rows.sort();
        rows
    };
    let kept = counted("SELECT group_id, failed FROM error_groups WHERE queue = $1").await;
    let rows = counted(
        "SELECT error_group, count(*) FROM jobs WHERE queue = $1 AND state = 'failed'
         AND error_group IS NOT NULL GROUP BY error_group",
    )
    .await;
    assert_eq!(kept, rows, "error groups after {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loses_no_job() {
    let db = TempDb::new("restart");
    let q = queue("restart");
    let backend = open(&db).await;
    let waiting = backend
        .enqueue_bulk(&q, (0..5).map(job).collect())
        .await
        .expect("enqueue");
    let delayed = backend
        .enqueue_bulk(
            &q,
            vec![with(
                10,
                JobOptions {
                    delay_ms: 3_600_000,
                    ..JobOptions::default()
                },
            )],
        )
        .await
        .expect("enqueue delayed");
    let dead = backend
        .enqueue_bulk(
            &q,
            vec![with(
                20,
                JobOptions {
                    attempts: 1,
                    priority: 0,
                    job_id: Some(JobId::new("dead-1").expect("id")),
                    ..JobOptions::default()
                },
            )],
        )
        .await
        .expect("enqueue doomed");
    // The doomed job went in last but sorts with the rest: claim until it
    // comes up, completing the others on the way.
    let mut claimed = claim(&backend, &q, 6).await;
    let doomed = claimed
        .iter()
        .position(|j| j.id == dead[0])
        .expect("doomed job claimed");
    let doomed = claimed.remove(doomed);
    let survivor = claimed.pop().expect("a job stays active");
    let mut outcomes: Vec<Outcome> = claimed.iter().map(done).collect();
    outcomes.push(fail(&doomed, JobError::new("boom"), 0));
    settle(&backend, &q, outcomes).await;
    backend
        .set_retention(
            &q,
            RetentionPolicy {
                completed: Retention {
                    max_count: Some(100),
                    max_age_ms: None,
                },
                failed: Retention::default(),
            },
        )
        .await
        .expect("retention");
    backend.set_paused(&q, true).await.expect("pause");

    let counts = backend.counts(&q).await.expect("counts");
    assert_eq!(
        (
            counts.waiting,
            counts.active,
            counts.delayed,
            counts.completed,
            counts.failed
        ),
        (0, 1, 1, 4, 1)
    );
    let mut ids: Vec<JobId> = waiting.clone();
    ids.extend(delayed.iter().cloned());
    ids.extend(dead.iter().cloned());
    let mut before = Vec::new();
    for id in &ids {
        before.push(backend.job(&q, id).await.expect("job"));
    }
    let retention = backend.retention(&q).await.expect("retention");
    backend.pool().close().await;
    drop(backend);

    let reopened = open(&db).await;
    assert_eq!(reopened.counts(&q).await.expect("counts"), counts);
    assert_eq!(reopened.retention(&q).await.expect("retention"), retention);
    assert!(reopened.queues().await.expect("queues").contains(&q));
    for job in &before {
        assert_eq!(&reopened.job(&q, &job.id).await.expect("job"), job);
    }
    // The job that was active when the process went away keeps its lease
    // and can still be settled by its worker.
    reopened.set_paused(&q, false).await.expect("resume");
    settle(&reopened, &q, vec![done(&survivor)]).await;
    // Ids keep counting where they were: no reuse after a restart.
    let next = reopened
        .enqueue_bulk(&q, vec![job(99)])
        .await
        .expect("enqueue");
    assert!(!ids.contains(&next[0]), "id {} reused", next[0]);
    assert_eq!(next[0].as_str(), "7");
    reopened
        .retry(&q, &dead[0])
        .await
        .expect("retry the failed job");
    assert_eq!(
        claim(&reopened, &q, 10).await.len(),
        2,
        "the retried job and the new one"
    );
    assert_counts_match_rows(&reopened, &q, "restart").await;
    reopened.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_equal_to_rows() {
    let db = TempDb::new("counts");
    let q = queue("counts");
    let b = open(&db).await;
    let opts = |attempts, delay_ms, priority| JobOptions {
        attempts,
        delay_ms,
        priority,
        ..JobOptions::default()
    };
    b.enqueue_bulk(
        &q,
        (0..40)
            .map(|n| with(n, opts(2, 0, (n % 3) as u32)))
            .collect(),
    )
    .await
    .expect("enqueue");
    b.enqueue_bulk(&q, (0..5).map(|n| with(n, opts(1, 60_000, 0))).collect())
        .await
        .expect("enqueue delayed");
    let given = JobOptions {
        job_id: Some(JobId::new("given").expect("id")),
        ..JobOptions::default()
    };
    b.enqueue_bulk(&q, vec![with(1, given.clone()), with(2, given)])
        .await
        .expect("enqueue duplicate ids");
    assert_counts_match_rows(&b, &q, "enqueue").await;

    let first = claim(&b, &q, 20).await;
    assert_eq!(first.len(), 20);
    assert_counts_match_rows(&b, &q, "claim").await;

    // Completed, retried at once, retried later, failed for good.
    let mut outcomes = Vec::new();
    for (i, job) in first.iter().enumerate() {
        outcomes.push(match i % 4 {
            0 => done(job),
            1 => fail(job, JobError::new("again"), 0),
            2 => fail(job, JobError::new("later"), 60_000),
            _ => fail(job, JobError::fatal("never"), 0),
        });
    }
    // A stale outcome changes nothing.
    let mut forged = outcome(&first[0], OutcomeResult::Completed { value: Value::Null });
    forged.lease_token = "forged".into();
    let result = b
        .step(&q, outcomes, 5, LEASE)
        .await
        .expect("settle and claim");
    assert_eq!(result.claimed.len(), 5);
    assert!(result.next_due_at.is_some());
    let stale = b.step(&q, vec![forged], 0, LEASE).await.expect("stale");
    assert_eq!(stale.stale, vec![first[0].id.clone()]);
    assert_counts_match_rows(&b, &q, "outcomes").await;

    // Leases that expire: one stall puts jobs back, a second fails them.
    let short = b
        .step(&q, Vec::new(), 3, Duration::from_millis(1))
        .await
        .expect("short lease")
        .claimed;
    assert_eq!(short.len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = b.recover_stalled(&q, 0).await.expect("recover");
    assert_eq!(report.failed.len(), 3);
    assert_counts_match_rows(&b, &q, "stalled").await;

    let failed = b.counts(&q).await.expect("counts").failed;
    assert!(failed >= 8, "{failed} failed");
    let dead = b
        .list(&q, JobState::Failed, 0, 1, None)
        .await
        .expect("list failed")
        .jobs;
    b.retry(&q, &dead[0].id).await.expect("retry one");
    assert!(matches!(
        b.retry(&q, &dead[0].id).await,
        Err(CoordError::WrongState {
            actual: JobState::Waiting,
            ..
        })
    ));
    assert_eq!(b.retry_failed_batch(&q, 4).await.expect("retry batch"), 4);
    assert_counts_match_rows(&b, &q, "retries").await;

    let delayed = b
        .list(&q, JobState::Delayed, 0, 2, None)
        .await
        .expect("list delayed")
        .jobs;
    b.promote(&q, &delayed[0].id).await.expect("promote");
    b.remove(&q, &delayed[1].id).await.expect("remove delayed");
    let waiting = b
        .list(&q, JobState::Waiting, 0, 1, None)
        .await
        .expect("list")
        .jobs;
    b.remove(&q, &waiting[0].id).await.expect("remove waiting");
    assert_counts_match_rows(&b, &q, "promote and remove").await;

    // Work everything off, then trim by retention.
    loop {
        let claimed = claim(&b, &q, 50).await;
        if claimed.is_empty() {
            break;
        }
        settle(&b, &q, claimed.iter().map(done).collect()).await;
    }
    assert_counts_match_rows(&b, &q, "draining").await;
    b.set_retention(
        &q,
        RetentionPolicy {
            completed: Retention {
                max_count: Some(3),
                max_age_ms: None,
            },
            failed: Retention {
                max_count: Some(1),
                max_age_ms: None,
            },
        },
    )
    .await
    .expect("set retention");
    let before = b.counts(&q).await.expect("counts");
    let removed = b.clean(&q, 5).await.expect("clean");
    assert_eq!(removed, 5, "clean stops at its limit");
    assert_counts_match_rows(&b, &q, "clean").await;
    b.clean(&q, 1000).await.expect("clean the rest");
    let after = b.counts(&q).await.expect("counts");
    assert_eq!((after.completed, after.failed), (3, 1));
    assert_eq!(after.completed_total, before.completed_total);
    assert_counts_match_rows(&b, &q, "retention").await;
    b.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_steps_never_claim_a_job_twice() {
    const JOBS: u64 = 600;
    let db = TempDb::new("concurrent");
    let q = queue("concurrent");
    // Two backends on one file: writers serialised in process by the mutex
    // and across pools by SQLite's lock (BEGIN IMMEDIATE, busy timeout).
    let a = open(&db).await;
    let b = open(&db).await;
    a.enqueue_bulk(&q, (0..JOBS).map(job).collect())
        .await
        .expect("enqueue");
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let backend = if t % 2 == 0 { a.clone() } else { b.clone() };
        let q = q.clone();
        tasks.spawn(async move {
            let mut seen = Vec::new();
            let mut pending: Vec<Outcome> = Vec::new();
            loop {
                let result = backend
                    .step(&q, std::mem::take(&mut pending), 7, LEASE)
                    .await
                    .expect("step");
                assert!(result.stale.is_empty(), "{:?}", result.stale);
                if result.claimed.is_empty() {
                    return seen;
                }
                for job in &result.claimed {
                    seen.push(job.id.clone());
                    pending.push(done(job));
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(seen) = tasks.join_next().await {
        all.extend(seen.expect("task"));
    }
    let distinct: HashSet<&JobId> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
    assert_eq!(all.len() as u64, JOBS);
    let counts = a.counts(&q).await.expect("counts");
    assert_eq!(
        (
            counts.completed,
            counts.completed_total,
            counts.active,
            counts.waiting
        ),
        (JOBS, JOBS, 0, 0)
    );
    assert_counts_match_rows(&b, &q, "concurrent steps").await;
    a.pool().close().await;
    b.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_keep_their_own_answers() {
    // Concurrent enqueues are written together (group commit); each caller
    // must still get its own ids, in its own order, with its own semantics.
    const TASKS: u64 = 40;
    const ROUNDS: u64 = 25;
    let db = TempDb::new("grouped");
    let b = open(&db).await;
    let queues: Vec<QueueName> = (0..3).map(|_| queue("grouped")).collect();
    let mut events = b.events();
    // Drained while the producers run, so the channel cannot lag.
    let collector = tokio::spawn(async move {
        let mut announced: HashMap<QueueName, usize> = HashMap::new();
        while let Ok(Ok(batch)) =
            tokio::time::timeout(Duration::from_millis(500), events.recv()).await
        {
            let mut kinds = HashSet::new();
            for event in batch.iter() {
                assert!(
                    kinds.insert((event.queue.clone(), event.kind)),
                    "one event per queue and kind"
                );
                *announced.entry(event.queue.clone()).or_default() += event.job_ids.len();
            }
        }
        announced
    });
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let b = b.clone();
        let q = queues[(t % 3) as usize].clone();
        tasks.spawn(async move {
            for r in 0..ROUNDS {
                let given = |id: String| JobOptions {
                    job_id: Some(JobId::new(id).expect("id")),
                    ..JobOptions::default()
                };
                let jobs = vec![
                    NewJob::new("gen", json!({ "t": t, "r": r })),
                    NewJob::new("shared", json!({ "t": t, "r": r }))
                        .with_options(given(format!("shared-{r}"))),
                    NewJob::new("own", json!({ "t": t, "r": r }))
                        .with_options(given(format!("t{t}-r{r}"))),
                ];
                let ids = b.enqueue_bulk(&q, jobs).await.expect("enqueue");
                assert_eq!(ids.len(), 3);
                assert_eq!(ids[1].as_str(), format!("shared-{r}"));
                assert_eq!(ids[2].as_str(), format!("t{t}-r{r}"));
                let generated = b.job(&q, &ids[0]).await.expect("generated job");
                assert_eq!(generated.data, json!({ "t": t, "r": r }));
                assert_eq!(generated.name, "gen");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("producer");
    }
    let announced = collector.await.expect("event collector");
    for (i, q) in queues.iter().enumerate() {
        let producers = (0..TASKS).filter(|t| t % 3 == i as u64).count() as u64;
        // Per producer and round: its generated job and its own id; per
        // round one shared job.
        let expected = producers * ROUNDS * 2 + ROUNDS;
        assert_eq!(b.counts(q).await.expect("counts").waiting, expected);
        assert_eq!(announced.get(q).copied().unwrap_or(0) as u64, expected);
        assert_counts_match_rows(&b, q, "grouped enqueues").await;
        let generated: Vec<Job> = claim(&b, q, 10_000)
            .await
            .into_iter()
            .filter(|j| j.name == "gen")
            .collect();
        assert_eq!(generated.len() as u64, producers * ROUNDS);
        // Each producer's jobs run in the order it enqueued them.
        for t in (0..TASKS).filter(|t| t % 3 == i as u64) {
            let rounds: Vec<u64> = generated
                .iter()
                .filter(|j| j.data["t"] == json!(t))
                .map(|j| j.data["r"].as_u64().expect("round"))
                .collect();
            assert_eq!(rounds, (0..ROUNDS).collect::<Vec<_>>());
        }
    }
    b.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_large_bulks_are_all_written() {
    // More jobs than one group commit takes: the requests are split over
    // several transactions and every caller is still answered.
    const TASKS: u64 = 6;
    const JOBS: u64 = 4_000;
    let db = TempDb::new("bulks");
    let b = open(&db).await;
    let q = queue("bulks");
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let b = b.clone();
        let q = q.clone();
        tasks.spawn(async move {
            let jobs = (0..JOBS)
                .map(|n| NewJob::new("bulk", json!({ "t": t, "n": n })))
                .collect();
            let ids = b.enqueue_bulk(&q, jobs).await.expect("enqueue");
            assert_eq!(ids.len() as u64, JOBS);
            for n in [0, JOBS / 2, JOBS - 1] {
                let job = b.job(&q, &ids[n as usize]).await.expect("job");
                assert_eq!(job.data, json!({ "t": t, "n": n }));
            }
            ids
        });
    }
    let mut all = HashSet::new();
    while let Some(ids) = tasks.join_next().await {
        all.extend(ids.expect("producer"));
    }
    assert_eq!(all.len() as u64, TASKS * JOBS);
    assert_eq!(b.counts(&q).await.expect("counts").waiting, TASKS * JOBS);
    assert_counts_match_rows(&b, &q, "large bulks").await;
    b.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_rows_are_reported_not_fatal() {
    let db = TempDb::new("corrupt");
    let q = queue("corrupt");
    let b = open(&db).await;
    let ids = b
        .enqueue_bulk(&q, (0..3).map(job).collect())
        .await
        .expect("enqueue");
    sqlx::query(
        "UPDATE jobs SET data = '{not json', history = 'garbage' WHERE queue = $1 AND id = $2",
    )
    .bind(q.as_str())
    .bind(ids[1].as_str())
    .execute(b.pool())
    .await
    .expect("damage a row");
    assert!(matches!(
        b.job(&q, &ids[1]).await,
        Err(CoordError::Corrupt(_))
    ));
    let page = b
        .list(&q, JobState::Waiting, 0, 10, None)
        .await
        .expect("list");
    assert_eq!(page.total, 3);
    assert_eq!(page.jobs.len(), 2, "the damaged job is skipped");
    // Claiming hands out the good jobs; the damaged one stays active
    // until stalled recovery fails it.
    let claimed = b
        .step(&q, Vec::new(), 10, Duration::from_millis(1))
        .await
        .expect("step")
        .claimed;
    assert_eq!(claimed.len(), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = b.recover_stalled(&q, 0).await.expect("recover");
    assert_eq!(report.failed.len(), 3);
    let row = sqlx::query("SELECT state, history FROM jobs WHERE queue = $1 AND id = $2")
        .bind(q.as_str())
        .bind(ids[1].as_str())
        .fetch_one(b.pool())
        .await
        .expect("read row");
    assert_eq!(row.get::<String, _>("state"), "failed");
    let history: Value =
        serde_json::from_str(&row.get::<String, _>("history")).expect("history is JSON again");
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_counts_match_rows(&b, &q, "damage").await;
    b.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_urls_and_shared_pools() {
    let db = TempDb::new("url");
    let q = queue("url");
    let url = format!("sqlite://{}?mode=rwc", db.path());
    let first = SqlBackend::open(&url).await.expect("open by URL");
    first.enqueue_bulk(&q, vec![job(1)]).await.expect("enqueue");
    // A second backend on the same pool (as the server does) re-runs the
    // migrations harmlessly and sees the same queues.
    let shared = SqlBackend::from_pool(first.pool().clone())
        .await
        .expect("from pool");
    assert_eq!(shared.counts(&q).await.expect("counts").waiting, 1);
    let queues = Queues::new(Arc::new(shared));
    assert_eq!(queues.kind().as_str(), "embedded");
    assert!(
        queues
            .health()
            .await
            .expect("health")
            .memory_bytes
            .is_none()
    );
    first.pool().close().await;

    let memory = SqlBackend::open("sqlite::memory:")
        .await
        .expect("open in memory");
    memory
        .enqueue_bulk(&q, vec![job(1), job(2)])
        .await
        .expect("enqueue");
    assert_eq!(memory.counts(&q).await.expect("counts").waiting, 2);
    // Worker steps borrow the pool's one connection (an in-memory database
    // has no file for a connection of their own): they see and change the
    // same database as every other call.
    let claimed = claim(&memory, &q, 5).await;
    assert_eq!(claimed.len(), 2);
    settle(&memory, &q, vec![done(&claimed[0])]).await;
    let counts = memory.counts(&q).await.expect("counts");
    assert_eq!((counts.active, counts.completed), (1, 1));
    let finished = memory.job(&q, &claimed[0].id).await.expect("job");
    assert_eq!(finished.state, JobState::Completed);
    assert_eq!(finished.history.len(), 1);
}

#[tokio::test]
async fn a_service_embedding_coord_gets_only_coords_tables() {
    let db = TempDb::new("only-coord-tables");
    let backend = SqlBackend::open(db.path()).await.expect("open");
    let store = coord::sync::StateStore::sqlite(backend.pool().clone())
        .await
        .expect("the synced-state store opens on the same file");
    drop(store);
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(backend.pool())
    .await
    .expect("list tables");
    tables.sort();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "coord_write_probe",
            "error_group_names",
            "error_groups",
            "job_logs",
            // Search: the FTS5 table, its shadow tables, and the indexer's.
            "job_search",
            "job_search_config",
            "job_search_data",
            "job_search_docsize",
            "job_search_idx",
            "job_search_keys",
            "job_search_state",
            "jobs",
            "queues",
            "schedules",
            "synced_state",
            "synced_state_counter",
            "workers"
        ],
        "the dashboard's tables (users, sessions, alerts, audit log, metrics) are the server's to create"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_written_before_error_groups_get_their_group_on_open() {
    let db = TempDb::new("eg-backfill");
    let q = queue("backfill");
    {
        let b = open(&db).await;
        let ids = b
            .enqueue_bulk(
                &q,
                (0..3)
                    .map(|n| {
                        with(
                            n,
                            JobOptions {
                                attempts: 1,
                                ..JobOptions::default()
                            },
                        )
                    })
                    .collect(),
            )
            .await
            .unwrap();
        let jobs = claim(&b, &q, 3).await;
        settle(
            &b,
            &q,
            jobs.iter()
                .zip([
                    "quota exceeded for 1234",
                    "quota exceeded for 5678",
                    "bad input",
                ])
                .map(|(job, reason)| fail(job, JobError::new(reason), 0))
                .collect(),
        )
        .await;
        assert_eq!(ids.len(), 3);
        // As a release before error groups left them: no job has a group
        // (the leave trigger empties the tables as it goes).
        sqlx::query("UPDATE jobs SET error_group = NULL")
            .execute(b.pool())
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM error_groups")
            .fetch_one(b.pool())
            .await
            .unwrap();
        assert_eq!(left, 0);
        b.pool().close().await;
    }
    let b = open(&db).await;
    let groups = Queues::new(Arc::new(b.clone()))
        .error_groups(&q, 10)
        .await
        .unwrap();
    let mut sizes: Vec<(String, u64)> = groups
        .groups
        .iter()
        .map(|g| (g.normalised(), g.failed))
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![
            ("bad input".to_owned(), 1),
            ("quota exceeded for #".to_owned(), 2)
        ]
    );
    assert_groups_match_rows(&b, &q, "the backfill").await;
}

/// Every way a job is deleted takes its log lines along (a trigger):
/// removal, a group's removal, and retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_jobs_leave_no_log_lines() {
    let db = TempDb::new("logs-gone");
    let b = open(&db).await;
    let q = queue("logs-gone");
    let once = JobOptions {
        attempts: 1,
        ..JobOptions::default()
    };
    b.enqueue_bulk(&q, (0..3).map(|n| with(n, once.clone())).collect())
        .await
        .expect("enqueue");
    let claimed = claim(&b, &q, 3).await;
    for job in &claimed {
        let token = job.lease_token.clone().expect("token");
        let lines = ["one".to_owned(), "two".to_owned()];
        assert!(
            b.append_logs(&q, &job.id, &token, &lines)
                .await
                .expect("log")
        );
    }
    let lines = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM job_logs")
            .fetch_one(b.pool())
            .await
            .expect("count")
    };
    assert_eq!(lines().await, 6);
    let [one, two, three] = &claimed[..] else {
        panic!("three claimed");
    };
    settle(
        &b,
        &q,
        vec![
            done(one),
            fail(two, JobError::fatal("boom"), 0),
            done(three),
        ],
    )
    .await;
    b.remove(&q, &one.id).await.expect("remove");
    assert_eq!(lines().await, 4, "removal");
    let group = b.error_groups(&q, 10).await.expect("groups").groups[0].id;
    b.error_group_batch(&q, group, coord::errors::GroupAction::Remove, 10)
        .await
        .expect("group removal");
    assert_eq!(lines().await, 2, "a group's removal");
    b.set_retention(
        &q,
        RetentionPolicy {
            completed: Retention {
                max_count: Some(0),
                max_age_ms: None,
            },
            failed: Retention::default(),
        },
    )
    .await
    .expect("retention");
    b.clean(&q, 100).await.expect("clean");
    assert_eq!(lines().await, 0, "retention");
}
