//! `BullMq::schedulers`, `remove_scheduler` and `run_scheduler_now`
//! against job schedulers (`upsertJobScheduler`) and legacy repeatables
//! (`queue.add(…, {repeat})`) made by the real Node BullMQ 5, each read
//! compared with BullMQ's own `getJobSchedulers`, and jobs run by a real
//! BullMQ worker (`worker.mjs`), on one Redis and on the cluster.
//!
//! Needs `node` on PATH and `npm ci` run in `end2end/`.

#[macro_use]
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Timelike};
use coord::CoordError;
use coord::bullmq::{BullScheduler, BullSchedulerKind, BullState, MAX_TEMPLATE_BYTES};
use coord::queue::CUT_MARK;
use serde_json::{Value, json};

use common::{BullFixture as Fixture, run_module};

/// BullMQ's side of the tests: `add '<plan>'` makes the plan's schedulers
/// (`{id, repeat, template, bigData?}`, `bigData` bytes of data made
/// here) and repeatables (`{name, data, repeat}`) and prints the jobs they
/// made; `list` prints what `getJobSchedulers` (soonest first) and
/// `getJobSchedulersCount` say, each template's data by its JSON length.
const BULLMQ: &str = r#"
import { Queue } from 'bullmq';
import { connectionFromUrl, emit } from './bullmq/common.mjs';
const [url, prefix, name, verb, arg] = process.argv.slice(1);
const queue = new Queue(name, { prefix, connection: connectionFromUrl(url) });
const out = {};
if (verb === 'add') {
  const plan = JSON.parse(arg);
  for (const s of plan.schedulers || []) {
    const template = s.template || {};
    if (s.bigData) template.data = { blob: 'x'.repeat(s.bigData) };
    const job = await queue.upsertJobScheduler(s.id, s.repeat, template);
    out[s.id] = { id: job ? job.id : null };
  }
  for (const r of plan.repeatables || []) {
    const job = await queue.add(r.name, r.data, { repeat: r.repeat });
    out[r.name] = { id: job.id, key: job.repeatJobKey };
  }
} else if (verb === 'list') {
  const all = await queue.getJobSchedulers(0, -1, true);
  out.count = await queue.getJobSchedulersCount();
  out.schedulers = all.map((s) => ({
    key: s.key, name: s.name, next: s.next, pattern: s.pattern ?? null,
    every: s.every ?? null, tz: s.tz ?? null, limit: s.limit ?? null,
    iterationCount: s.iterationCount ?? null, startDate: s.startDate ?? null,
    endDate: s.endDate ?? null,
    dataBytes: s.template && s.template.data !== undefined
      ? JSON.stringify(s.template.data).length : null,
  }));
}
emit(out);
process.exit(0);
"#;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Fixture {
    async fn bullmq(&self, queue: &str, verb: &str, arg: &str) -> Value {
        run_module(BULLMQ, &[&self.url, &self.prefix, queue, verb, arg]).await
    }

    /// Every entry of the queue, through our listing.
    async fn entries(&self, queue: &str) -> Vec<BullScheduler> {
        let page = self.bull.schedulers(queue, 0, 100).await.expect("list");
        assert_eq!(page.total as usize, page.items.len());
        page.items
    }

    /// Runs a real worker on `queue` until `n` jobs completed (within
    /// `patience` each): each one's id and name, and when it was reported
    /// (ms).
    async fn work(&self, queue: &str, n: usize, patience: Duration) -> Vec<(String, String, i64)> {
        let count = n.to_string();
        let timeout = (patience * n as u32).as_millis().to_string();
        let args = [
            "--count",
            &count,
            "--drain-delay",
            "1",
            "--timeout",
            &timeout,
        ];
        let mut worker = self.node_worker(queue, &args, patience).await;
        let mut done = Vec::new();
        for _ in 0..n {
            let line = worker.next().await;
            assert_eq!(line["event"], "completed", "{line}");
            let text = |field: &str| line[field].as_str().expect(field).to_owned();
            done.push((text("id"), text("name"), now_ms()));
        }
        worker.wait_exit().await;
        done
    }

    /// The job ids of `state`.
    async fn ids(&self, queue: &str, state: BullState) -> Vec<String> {
        let jobs = self.bull.jobs(queue, state, 0, 100).await.expect("jobs");
        jobs.into_iter().map(|j| j.id).collect()
    }
}

fn entry<'a>(entries: &'a [BullScheduler], key: &str) -> &'a BullScheduler {
    entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("{key} not listed in {entries:?}"))
}

/// The pending iteration's id BullMQ gives an entry.
fn iteration(entry: &BullScheduler) -> String {
    format!("repeat:{}:{}", entry.key, entry.next_run)
}

on_redis_and_cluster!(
    bullmq_schedulers_are_listed_as_bullmq_lists_them: "bull-sched-list",
    bullmq_scheduler_run_now_leaves_the_next_iteration_on_time: "bull-sched-now",
    bullmq_repeatable_run_now_takes_its_template_and_honours_pause: "bull-sched-legacy",
    bullmq_scheduler_removal_takes_its_delayed_iteration: "bull-sched-rm",
);

/// A scheduler by `every` from a start date, one by cron pattern in a time
/// zone with a limit and end date, a legacy repeatable and one with a
/// megabyte of data: each listed with BullMQ's own figures, its kind, its
/// template, soonest first, paged with the exact total; the big one's data
/// cut with the mark.
async fn bullmq_schedulers_are_listed_as_bullmq_lists_them(fx: Fixture) {
    let q = "reports";
    let start = now_ms() + 3_600_000;
    let end = now_ms() + 30 * 86_400_000;
    let made = fx
        .bullmq(
            q,
            "add",
            &json!({
                "schedulers": [
                    {"id": "every-hour", "repeat": {"every": 60_000, "startDate": start},
                     "template": {"name": "tick", "data": {"n": 1}, "opts": {"attempts": 3}}},
                    {"id": "nightly", "repeat": {"pattern": "0 3 * * *", "tz": "America/New_York",
                     "limit": 10, "endDate": end},
                     "template": {"name": "digest", "data": {"to": "ops"}}},
                    {"id": "big", "repeat": {"pattern": "0 0 1 1 *"},
                     "template": {"name": "huge"}, "bigData": 1_048_576},
                ],
                "repeatables": [
                    {"name": "legacy", "data": {"x": 1}, "repeat": {"every": 7_200_000}},
                ],
            })
            .to_string(),
        )
        .await;
    let legacy_key = made["legacy"]["key"]
        .as_str()
        .expect("repeat key")
        .to_owned();
    let theirs = fx.bullmq(q, "list", "").await;
    assert_eq!(theirs["count"], 4, "{theirs}");

    let page = fx.bull.schedulers(q, 0, 100).await.expect("list");
    assert_eq!(page.total, 4);
    let ours = &page.items;
    // The same entries, in the same (soonest first) order, with BullMQ's
    // figures.
    let keys: Vec<&str> = ours.iter().map(|e| e.key.as_str()).collect();
    let their_keys: Vec<&str> = theirs["schedulers"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, their_keys);
    for (mine, theirs) in ours
        .iter()
        .zip(theirs["schedulers"].as_array().expect("array"))
    {
        assert_eq!(
            json!({
                "key": mine.key, "name": mine.name, "next": mine.next_run,
                "pattern": mine.pattern, "every": mine.every, "tz": mine.tz,
                "limit": mine.limit, "iterationCount": mine.iteration_count,
                "startDate": mine.start_date, "endDate": mine.end_date,
            }),
            json!({
                "key": theirs["key"], "name": theirs["name"], "next": theirs["next"],
                "pattern": theirs["pattern"],
                "every": theirs["every"].as_u64().or_else(|| theirs["every"].as_str().and_then(|s| s.parse().ok())),
                "tz": theirs["tz"], "limit": theirs["limit"],
                "iterationCount": if mine.kind == BullSchedulerKind::Scheduler { theirs["iterationCount"].clone() } else { json!(1) },
                "startDate": theirs["startDate"], "endDate": theirs["endDate"],
            }),
            "{mine:?} vs {theirs}"
        );
        // Every entry has its pending iteration in `delayed`.
        let job = fx
            .bull
            .job(q, &iteration(mine))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("no iteration for {mine:?}"));
        assert_eq!(job.state, Some(BullState::Delayed), "{mine:?}");
    }

    let every = entry(ours, "every-hour");
    assert_eq!(every.kind, BullSchedulerKind::Scheduler);
    assert_eq!(every.name, "tick");
    assert_eq!((every.every, every.next_run), (Some(60_000), start));
    let template = every.template.as_ref().expect("template");
    assert_eq!(
        serde_json::from_str::<Value>(&template.data).expect("json"),
        json!({"n": 1})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&template.opts).expect("json")["attempts"],
        3
    );

    let nightly = entry(ours, "nightly");
    assert_eq!(nightly.pattern.as_deref(), Some("0 3 * * *"));
    assert_eq!(nightly.tz.as_deref(), Some("America/New_York"));
    assert_eq!(
        (nightly.limit, nightly.iteration_count),
        (Some(10), Some(1))
    );
    assert_eq!(nightly.end_date, Some(end));
    let at = chrono_tz::America::New_York
        .timestamp_millis_opt(nightly.next_run)
        .single()
        .expect("a time");
    assert_eq!((at.hour(), at.minute(), at.second()), (3, 0, 0), "{at}");
    assert!(nightly.next_run > now_ms() && nightly.next_run <= now_ms() + 86_400_000);

    let legacy = entry(ours, &legacy_key);
    assert_eq!(legacy.kind, BullSchedulerKind::Repeatable);
    assert_eq!(
        (legacy.name.as_str(), legacy.every),
        ("legacy", Some(7_200_000))
    );
    assert_eq!(legacy.next_run % 7_200_000, 0);
    assert_eq!(
        legacy.iteration_count,
        Some(1),
        "from the iteration's repeat.count"
    );
    assert_eq!(made["legacy"]["id"], iteration(legacy));
    let template = legacy.template.as_ref().expect("the iteration's template");
    assert_eq!(
        serde_json::from_str::<Value>(&template.data).expect("json"),
        json!({"x": 1})
    );

    // A megabyte of data costs the listing its cap, marked.
    let big = entry(ours, "big");
    let template = big.template.as_ref().expect("template");
    let whole = theirs["schedulers"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["key"] == "big")
        .and_then(|s| s["dataBytes"].as_u64())
        .expect("BullMQ's data length");
    assert!(
        template.data.ends_with(CUT_MARK),
        "{}",
        &template.data[..40]
    );
    assert!(template.data.len() <= MAX_TEMPLATE_BYTES);
    assert_eq!(template.clipped.len(), 1);
    assert_eq!(template.clipped[0].field, "data");
    assert_eq!(template.clipped[0].bytes, whole);

    // Pages: the exact total, offset and limit honoured.
    let second = fx.bull.schedulers(q, 1, 2).await.expect("page");
    assert_eq!(second.total, 4);
    let second: Vec<&str> = second.items.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(second, keys[1..3].to_vec());
    assert!(
        fx.bull
            .schedulers(q, 4, 10)
            .await
            .expect("past")
            .items
            .is_empty()
    );
    let capped = fx.bull.schedulers(q, 0, 1_000).await.expect("capped");
    assert_eq!(capped.items.len(), 4);
    let none = fx
        .bull
        .schedulers("no-such-queue", 0, 10)
        .await
        .expect("empty");
    assert_eq!((none.total, none.items.len()), (0, 0));
    fx.done().await;
}

/// Run now on a scheduler whose next iteration is due in a few seconds: a
/// ready job from the template (BullMQ's id counter, not an iteration id),
/// the schedule untouched; a real worker runs it at once and then the
/// scheduled iteration at its time.
async fn bullmq_scheduler_run_now_leaves_the_next_iteration_on_time(fx: Fixture) {
    let q = "beats";
    // Far enough ahead that the Node script adding it (seconds to start
    // on a loaded machine) is done before it: a start in the past makes
    // BullMQ schedule from its own now.
    let start = now_ms() + 8_000;
    fx.bullmq(
        q,
        "add",
        &json!({"schedulers": [
            {"id": "beat", "repeat": {"every": 60_000, "startDate": start},
             "template": {"name": "beat", "data": {"k": "v"}, "opts": {"attempts": 2}}},
        ]})
        .to_string(),
    )
    .await;
    let before = fx.entries(q).await;
    let scheduled = iteration(entry(&before, "beat"));
    assert_eq!(entry(&before, "beat").next_run, start);

    let id = fx.bull.run_scheduler_now(q, "beat").await.expect("run now");
    assert!(!id.starts_with("repeat:"), "{id}");
    assert_ne!(id, scheduled);
    let job = fx.bull.job(q, &id).await.expect("read").expect("job");
    assert_eq!(job.state, Some(BullState::Waiting));
    assert_eq!(job.name, "beat");
    assert_eq!(
        serde_json::from_str::<Value>(&job.data).expect("json"),
        json!({"k": "v"})
    );
    let opts: Value = serde_json::from_str(&job.opts).expect("json");
    assert_eq!(opts["attempts"], 2);
    assert!(
        opts.get("repeat").is_none() && opts.get("jobId").is_none(),
        "{opts}"
    );
    assert_eq!((job.delay, job.priority), (0, 0));
    // The schedule is as it was: same next run, its iteration still delayed.
    assert_eq!(fx.entries(q).await, before);
    assert_eq!(fx.ids(q, BullState::Delayed).await, vec![scheduled.clone()]);
    // Two runs asked at once are two jobs.
    let again = fx
        .bull
        .run_scheduler_now(q, "beat")
        .await
        .expect("run again");
    assert_ne!(again, id);

    let done = fx.work(q, 3, Duration::from_secs(20)).await;
    assert!(done.iter().all(|(_, name, _)| name == "beat"), "{done:?}");
    let order: Vec<&str> = done.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(order, vec![id.as_str(), again.as_str(), scheduled.as_str()]);
    let (_, _, at) = done[2];
    assert!(
        at >= start && at < start + 3_000,
        "the scheduled iteration ran at {at}, due at {start}"
    );
    // And the worker made the following one, a minute on.
    let after = fx.entries(q).await;
    assert_eq!(entry(&after, "beat").next_run, start + 60_000);
    assert_eq!(entry(&after, "beat").iteration_count, Some(2));
    fx.done().await;
}

/// A legacy repeatable keeps its template in its iteration: run now copies
/// it (without the repeat bookkeeping, so the worker schedules nothing
/// more), parks the job in `paused` while the queue is paused, and a real
/// worker runs both once resumed; the repeatable and its iteration stay.
async fn bullmq_repeatable_run_now_takes_its_template_and_honours_pause(fx: Fixture) {
    let q = "legacy";
    let made = fx
        .bullmq(
            q,
            "add",
            &json!({"repeatables": [
                {"name": "sync", "data": {"shard": 7}, "repeat": {"every": 3_600_000}},
            ]})
            .to_string(),
        )
        .await;
    let key = made["sync"]["key"].as_str().expect("key").to_owned();
    let before = fx.entries(q).await;

    let first = fx.bull.run_scheduler_now(q, &key).await.expect("run now");
    let job = fx.bull.job(q, &first).await.expect("read").expect("job");
    assert_eq!(
        (job.name.as_str(), job.state),
        ("sync", Some(BullState::Waiting))
    );
    assert_eq!(
        serde_json::from_str::<Value>(&job.data).expect("json"),
        json!({"shard": 7})
    );
    let opts: Value = serde_json::from_str(&job.opts).expect("json");
    for gone in ["repeat", "jobId", "delay", "prevMillis", "timestamp"] {
        assert!(opts.get(gone).is_none(), "{gone} in {opts}");
    }

    fx.bull.pause(q).await.expect("pause");
    let second = fx
        .bull
        .run_scheduler_now(q, &key)
        .await
        .expect("run paused");
    let counts = fx.bull.counts(q).await.expect("counts");
    assert_eq!((counts.paused, counts.waiting), (2, 0), "{counts:?}");
    fx.bull.resume(q).await.expect("resume");

    let done = fx.work(q, 2, Duration::from_secs(15)).await;
    let ids: Vec<String> = done.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids, vec![first, second]);
    assert_eq!(fx.entries(q).await, before, "the repeatable is as it was");
    assert_eq!(
        fx.ids(q, BullState::Delayed).await,
        vec![iteration(&before[0])]
    );
    fx.done().await;
}

/// Removal of a scheduler and of a legacy repeatable: gone from BullMQ's
/// own listing, their delayed iterations deleted with a `removed` event;
/// an unknown (or already removed) key is the typed not-found error, for
/// run now too.
async fn bullmq_scheduler_removal_takes_its_delayed_iteration(fx: Fixture) {
    let q = "cleanup";
    let made = fx
        .bullmq(
            q,
            "add",
            &json!({
                "schedulers": [
                    {"id": "hourly", "repeat": {"pattern": "0 * * * *"}, "template": {"name": "h"}},
                    {"id": "keep", "repeat": {"pattern": "30 * * * *"}, "template": {"name": "k"}},
                ],
                "repeatables": [
                    {"name": "old", "data": {}, "repeat": {"every": 3_600_000}},
                ],
            })
            .to_string(),
        )
        .await;
    let legacy = made["old"]["key"].as_str().expect("key").to_owned();
    let before = fx.entries(q).await;
    assert_eq!(before.len(), 3);
    let doomed = [
        iteration(entry(&before, "hourly")),
        iteration(entry(&before, &legacy)),
    ];

    fx.bull.remove_scheduler(q, "hourly").await.expect("remove");
    fx.bull
        .remove_scheduler(q, &legacy)
        .await
        .expect("remove legacy");

    let theirs = fx.bullmq(q, "list", "").await;
    assert_eq!(theirs["count"], 1, "{theirs}");
    assert_eq!(theirs["schedulers"][0]["key"], "keep");
    let left = fx.entries(q).await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        fx.ids(q, BullState::Delayed).await,
        vec![iteration(&left[0])]
    );
    for id in &doomed {
        assert!(fx.bull.job(q, id).await.expect("read").is_none(), "{id}");
    }
    let events = fx
        .bull
        .read_events(&[(q.to_owned(), "0".to_owned())], Duration::ZERO, 10_000)
        .await
        .expect("events");
    for id in &doomed {
        assert!(
            events.iter().any(|e| e.event == "removed"
                && e.job_id.as_deref() == Some(id.as_str())
                && e.fields
                    .contains(&("prev".to_owned(), "delayed".to_owned()))),
            "no removed event for {id}"
        );
    }

    for key in ["hourly", "never-made"] {
        let err = fx.bull.remove_scheduler(q, key).await.expect_err(key);
        assert!(
            matches!(&err, CoordError::BullSchedulerNotFound { key: k, .. } if k == key),
            "{err:?}"
        );
        assert!(err.is_not_found());
        let err = fx.bull.run_scheduler_now(q, key).await.expect_err(key);
        assert!(
            matches!(err, CoordError::BullSchedulerNotFound { .. }),
            "{err:?}"
        );
    }
    let err = fx.bull.remove_scheduler(q, "").await.expect_err("empty");
    assert!(err.is_bad_input(), "{err:?}");
    fx.done().await;
}
