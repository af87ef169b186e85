//! `BullLatencyReader` and `BullMq::latency_since` against the events
//! stream of a queue run by a real Node BullMQ 5 worker (`worker.mjs`
//! with a processor that sleeps 200 ms, one job at a time) fed by BullMQ's
//! own `queue.add` (`produce.mjs`), on one Redis and on the cluster.
//!
//! Needs `node` on PATH and `npm ci` run in `end2end/`.

#[macro_use]
mod common;

use std::time::Duration;

use coord::bullmq::BullLatencyReader;
use coord::queue::latency::{LatencyHistogram, LatencyMinute, minute_of};

use common::{BullFixture as Fixture, run};

/// The processor's sleep.
const WORK_MS: u64 = 200;

/// Every minute's wait and run merged.
fn merged(minutes: &[LatencyMinute]) -> (LatencyHistogram, LatencyHistogram) {
    let mut wait = LatencyHistogram::new();
    let mut run = LatencyHistogram::new();
    for minute in minutes {
        wait.merge(&LatencyHistogram::from_pairs(&minute.wait).expect("wait buckets"));
        run.merge(&LatencyHistogram::from_pairs(&minute.run).expect("run buckets"));
    }
    (wait, run)
}

impl Fixture {
    async fn produce(&self, queue: &str, n: &str, extra: &[&str]) {
        let mut args = vec![self.url.as_str(), self.prefix.as_str(), queue, n];
        args.extend_from_slice(extra);
        run("produce.mjs", &args).await;
    }
}

on_redis_and_cluster!(
    bullmq_latency_pairs_a_real_workers_events: "bull-latency",
);

/// Five jobs added at once to a worker that runs one at a time for 200 ms:
/// five runs of about 200 ms and five waits growing by about 200 ms (the
/// fifth about 800 ms). Then a job delayed 1.5 s: read incrementally (only
/// the new entries), its wait runs from its due time, not from its adding.
async fn bullmq_latency_pairs_a_real_workers_events(fx: Fixture) {
    let q = "timed";
    let mut reader = BullLatencyReader::new(q);
    let work = WORK_MS.to_string();
    let mut worker = fx
        .node_worker(
            q,
            &[
                "--count",
                "6",
                "--work",
                &work,
                "--drain-delay",
                "1",
                "--timeout",
                "30000",
            ],
            Duration::from_secs(15),
        )
        .await;
    fx.produce(q, "5", &[]).await;
    for _ in 0..5 {
        let line = worker.next().await;
        assert_eq!(line["event"], "completed", "{line}");
    }

    let poll = reader.poll(&fx.bull).await.expect("first read");
    assert!(poll.complete && poll.read >= 20, "{poll:?}");
    let (wait, run) = merged(&reader.minutes());
    let (wait, run) = (wait.percentiles(), run.percentiles());
    assert_eq!((run.count, wait.count), (5, 5), "{run:?} {wait:?}");
    assert!(run.p50 >= WORK_MS && run.p50 < 1_000, "{run:?}");
    assert!(run.max < 1_000, "{run:?}");
    // The fifth job waited for the four runs before it, less the few ms
    // between the first add and its own (and the histogram's 1%).
    assert!(wait.max >= 3 * WORK_MS && wait.max < 5_000, "{wait:?}");
    assert!(
        wait.p50 >= WORK_MS,
        "the third waited for two runs: {wait:?}"
    );
    // The headline sums finished minutes: once this one is over, it is in.
    let newest = reader.minutes().last().expect("a minute").minute;
    let (recent_wait, recent_run) = reader.recent(minute_of(newest) + 60_000);
    assert_eq!(recent_run.count + recent_wait.count, 10);
    let last = reader.last_id().expect("an id read");

    fx.produce(q, "1", &["--delay", "1500"]).await;
    let line = worker.next().await;
    assert_eq!(line["event"], "completed", "{line}");
    worker.wait_exit().await;

    // One-off read after the first: only the delayed job's entries.
    let (minutes, newer) = fx.bull.latency_since(q, Some(&last)).await.expect("since");
    assert!(newer.is_some_and(|id| id != last));
    let (wait, run) = merged(&minutes);
    let (wait, run) = (wait.percentiles(), run.percentiles());
    assert_eq!((run.count, wait.count), (1, 1), "{run:?} {wait:?}");
    assert!(run.p50 >= WORK_MS && run.p50 < 1_000, "{run:?}");
    assert!(
        wait.max < 1_000,
        "waited from its due time, not its adding: {wait:?}"
    );

    // The reader reads on from where it stopped.
    let poll = reader.poll(&fx.bull).await.expect("second read");
    assert!(poll.complete && poll.read < 20, "{poll:?}");
    let (wait, run) = merged(&reader.minutes());
    assert_eq!((run.count(), wait.count()), (6, 6));
    assert_eq!(reader.tracked(), 0, "every job finished");
    fx.done().await;
}
