//! How long BullMQ jobs wait and run, from their queue's `events` stream:
//! BullMQ workers report nothing to Switchyard, but every transition they
//! make is an entry of that stream, and a stream id starts with Redis's
//! clock in ms, so pairing a job's entries gives its times with no skew
//! between the machines that wrote them.
//!
//! The entries BullMQ 5 writes (field `jobId` names the job):
//!
//! - `added`, then `waiting` (ready) or `delayed` (field `delay`: the
//!   due time in ms) or `waiting-children`;
//! - `waiting` with `prev` `delayed` when a delayed job is promoted — by a
//!   worker fetching jobs, so possibly well after its due time — `failed`
//!   (retried by hand), `waiting-children` (its children done) or `active`
//!   (an attempt ended and the job is back in line);
//! - `active` when a worker takes it; `completed` or `failed` when the
//!   attempt ends for good; `delayed` when it ends with a backoff;
//!   `stalled` when its worker's lock lapsed; `removed`.
//!
//! An attempt's **run** is from its `active` entry to whichever entry ends
//! it (`completed`, `failed`, `delayed`, `waiting`, `waiting-children`); a
//! stalled attempt's end is unknown, so it has none. Its **wait** is from
//! when the job was ready to its `active`: the `added`/`waiting` entry, or
//! for a delayed job the due time its `delayed` entry names (the
//! promotion's own entry can be late, so the delay's end is what it
//! waited from). Unlike native workers, retries' waits count too: the end
//! of their backoff is written down here. Both go, as a native worker's
//! do, into the minute the attempt ended in, as [`LatencyMinute`]s.
//!
//! What the stream no longer holds is not guessed: it is trimmed (about
//! 10,000 entries by default), so an attempt whose `active` was trimmed
//! has no run and no wait, and one whose ready entry was trimmed has a run
//! but no wait.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{BullMq, parse_stream_id};
use crate::error::{CoordError, Result};
use crate::queue::latency::{LatencyHistogram, LatencyMinute, Percentiles, minute_of};

/// Most entries one read takes, newest first: a stream's default length,
/// so a first read covers what BullMQ keeps, and a read after a burst
/// costs at most this much (the older part of the burst is skipped).
pub const MAX_EVENTS_READ: usize = 10_000;

/// Entries per `XREVRANGE` of a read.
const PAGE: usize = 1_000;

/// Jobs a reader follows at once (ready, delayed or running): beyond this
/// a job newly made ready is not followed (its attempt then has a run but
/// no wait), so the oldest followed ones, which run first, keep theirs.
pub const MAX_TRACKED_JOBS: usize = 10_000;

/// Minutes a reader keeps: the hour a queue's page charts.
pub const KEPT_MINUTES: usize = 60;

/// Finished minutes [`BullLatencyReader::recent`] sums, as for native
/// queues.
pub const RECENT_MINUTES: usize = 5;

const MINUTE_MS: i64 = 60_000;

/// One job between entries.
#[derive(Debug, Clone, Copy, Default)]
struct Tracked {
    /// When it became ready to run, when known.
    ready: Option<i64>,
    /// When its delay ends (its `delayed` entry's `delay`).
    due: Option<i64>,
    /// Its running attempt: start and wait.
    started: Option<(i64, Option<i64>)>,
    /// Its newest entry's time, so entries left over by jobs that vanished
    /// without one (a drained queue) are dropped after a day.
    touched: i64,
}

/// What one [`BullLatencyReader::poll`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullLatencyPoll {
    /// Entries read.
    pub read: usize,
    /// False when more new entries existed than [`MAX_EVENTS_READ`]: the
    /// older ones were skipped.
    pub complete: bool,
}

/// Follows one queue's `events` stream across reads: the stream id read
/// up to, the jobs between entries (at most [`MAX_TRACKED_JOBS`]) and the
/// last [`KEPT_MINUTES`] minutes' histograms. A dashboard polls it every
/// few seconds; each poll reads only the entries written since the last.
#[derive(Debug, Clone)]
pub struct BullLatencyReader {
    queue: String,
    last: Option<(u64, u64)>,
    jobs: HashMap<String, Tracked>,
    minutes: BTreeMap<i64, (LatencyHistogram, LatencyHistogram)>,
}

impl BullLatencyReader {
    /// A reader of `queue` whose first poll reads the newest
    /// [`MAX_EVENTS_READ`] entries.
    pub fn new(queue: &str) -> Self {
        Self {
            queue: queue.to_owned(),
            last: None,
            jobs: HashMap::new(),
            minutes: BTreeMap::new(),
        }
    }

    /// A reader that starts after stream id `after` (`<ms>-<seq>`).
    pub fn after(queue: &str, after: &str) -> Result<Self> {
        let last = parse_stream_id(after).ok_or_else(|| {
            CoordError::InvalidOptions(format!("invalid event stream id {after:?}"))
        })?;
        Ok(Self {
            last: Some(last),
            ..Self::new(queue)
        })
    }

    /// The queue it follows.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The id of the newest entry read (`<ms>-<seq>`), to start a later
    /// reader from.
    pub fn last_id(&self) -> Option<String> {
        self.last.map(|(ms, seq)| format!("{ms}-{seq}"))
    }

    /// Reads the entries written since the last poll (at most
    /// [`MAX_EVENTS_READ`], newest first in pages, so a burst costs a
    /// bounded read) and records the attempts they end.
    pub async fn poll(&mut self, bull: &BullMq) -> Result<BullLatencyPoll> {
        bull.check(&self.queue)?;
        let key = bull.key(&self.queue, "events");
        let stop = match self.last {
            Some((ms, seq)) => format!("({ms}-{seq}"),
            None => "-".to_owned(),
        };
        let mut end = "+".to_owned();
        let mut entries: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut complete = false;
        let mut conn = bull.conn.clone();
        while entries.len() < MAX_EVENTS_READ {
            let count = PAGE.min(MAX_EVENTS_READ - entries.len());
            let page: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg(&end)
                .arg(&stop)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await
                .map_err(CoordError::from)?;
            let got = page.len();
            if let Some((oldest, _)) = page.last() {
                end = format!("({oldest}");
            }
            entries.extend(page);
            if got < count {
                complete = true;
                break;
            }
        }
        let read = entries.len();
        for (id, flat) in entries.into_iter().rev() {
            let Some(parsed) = parse_stream_id(&id) else {
                continue;
            };
            self.last = Some(parsed);
            self.apply(i64::try_from(parsed.0).unwrap_or(i64::MAX), &flat);
        }
        self.forget_old();
        Ok(BullLatencyPoll { read, complete })
    }

    /// One entry, written at `at` (ms).
    fn apply(&mut self, at: i64, flat: &[Vec<u8>]) {
        let mut event = None;
        let mut job = None;
        let mut prev = None;
        let mut delay = None;
        for pair in flat.chunks_exact(2) {
            match pair[0].as_slice() {
                b"event" => event = Some(pair[1].as_slice()),
                b"jobId" => job = Some(String::from_utf8_lossy(&pair[1]).into_owned()),
                b"prev" => prev = Some(pair[1].as_slice()),
                b"delay" => delay = std::str::from_utf8(&pair[1]).ok().and_then(super::parse_ms),
                _ => {}
            }
        }
        let (Some(event), Some(job)) = (event, job) else {
            return;
        };
        if event == b"removed" {
            self.jobs.remove(&job);
            return;
        }
        let ends_attempt = matches!(
            event,
            b"completed" | b"failed" | b"delayed" | b"waiting" | b"waiting-children"
        );
        let makes_ready = matches!(event, b"added" | b"waiting" | b"stalled");
        if !ends_attempt && !makes_ready && event != b"active" {
            return;
        }
        // A job not yet followed is taken on only while there is room,
        // except at its start, always worth a run (the running jobs are
        // bounded by the workers' concurrency); an untracked job has no
        // attempt for its other entries to end.
        if !self.jobs.contains_key(&job)
            && self.jobs.len() >= MAX_TRACKED_JOBS
            && event != b"active"
        {
            return;
        }
        let tracked = self.jobs.entry(job.clone()).or_default();
        tracked.touched = at;
        if ends_attempt && let Some((start, wait)) = tracked.started.take() {
            let (waits, runs) = self.minutes.entry(minute_of(at)).or_default();
            if let Some(wait) = wait {
                waits.record_ms(wait);
            }
            runs.record_ms(at - start);
        }
        match event {
            b"added" => tracked.ready = Some(at),
            b"stalled" => {
                // When the lock lapsed is all that is known: no run.
                tracked.started = None;
                tracked.ready = Some(at);
            }
            b"waiting" => {
                // A promotion's entry is written when a worker fetches:
                // the job was ready from its due time on.
                let due = tracked.due.take().filter(|_| prev == Some(&b"delayed"[..]));
                tracked.ready = Some(due.map_or(at, |due| due.min(at)));
            }
            b"delayed" => {
                tracked.ready = None;
                tracked.due = delay;
            }
            b"waiting-children" => tracked.ready = None,
            b"active" => {
                let wait = tracked.ready.take().map(|ready| at - ready);
                tracked.started = Some((at, wait));
            }
            _ => {
                // completed or failed: nothing more to pair.
                self.jobs.remove(&job);
            }
        }
    }

    /// Drops minutes beyond the kept hour and jobs untouched for a day
    /// (vanished without an entry), counting from the newest entry read.
    fn forget_old(&mut self) {
        let Some((newest, _)) = self.last else {
            return;
        };
        let newest = i64::try_from(newest).unwrap_or(i64::MAX);
        let oldest_minute = minute_of(newest) - (KEPT_MINUTES as i64 - 1) * MINUTE_MS;
        self.minutes = self.minutes.split_off(&oldest_minute);
        let stale = newest - crate::queue::latency::HIGHEST_MS as i64;
        self.jobs.retain(|_, tracked| tracked.touched >= stale);
    }

    /// The kept minutes with attempts, oldest first, as (value, count)
    /// buckets like a native worker's report, so one merge serves both.
    pub fn minutes(&self) -> Vec<LatencyMinute> {
        self.minutes
            .iter()
            .map(|(minute, (wait, run))| LatencyMinute {
                minute: *minute,
                wait: wait.pairs(),
                run: run.pairs(),
            })
            .collect()
    }

    /// Wait and run over the last [`RECENT_MINUTES`] minutes finished by
    /// `now` (ms), for a queue's headline p50/p95/p99.
    pub fn recent(&self, now: i64) -> (Percentiles, Percentiles) {
        let current = minute_of(now);
        let from = current - RECENT_MINUTES as i64 * MINUTE_MS;
        let mut wait = LatencyHistogram::new();
        let mut run = LatencyHistogram::new();
        for (w, r) in self.minutes.range(from..current).map(|(_, h)| h) {
            wait.merge(w);
            run.merge(r);
        }
        (wait.percentiles(), run.percentiles())
    }

    /// Jobs followed between entries now (at most [`MAX_TRACKED_JOBS`]
    /// plus those running).
    pub fn tracked(&self) -> usize {
        self.jobs.len()
    }
}

impl BullMq {
    /// Wait and run times of the attempts that ended in the entries of
    /// `queue`'s `events` stream after `after` (a stream id; `None` for
    /// the newest [`MAX_EVENTS_READ`]), per minute, with the id of the
    /// newest entry read (`after` again when there was none). Attempts
    /// whose start lies at or before `after` are not paired: a dashboard
    /// that polls keeps a [`BullLatencyReader`] instead, which carries the
    /// jobs between reads.
    pub async fn latency_since(
        &self,
        queue: &str,
        after: Option<&str>,
    ) -> Result<(Vec<LatencyMinute>, Option<String>)> {
        let mut reader = match after {
            Some(after) => BullLatencyReader::after(queue, after)?,
            None => BullLatencyReader::new(queue),
        };
        reader.poll(self).await?;
        Ok((reader.minutes(), reader.last_id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry: time, event, job, extra field pairs.
    type Entry<'a> = (i64, &'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// Feeds entries to a reader.
    fn feed(reader: &mut BullLatencyReader, entries: &[Entry<'_>]) {
        for (at, event, job, extra) in entries {
            let mut flat = vec![
                b"event".to_vec(),
                event.as_bytes().to_vec(),
                b"jobId".to_vec(),
                job.as_bytes().to_vec(),
            ];
            for (k, v) in *extra {
                flat.push(k.as_bytes().to_vec());
                flat.push(v.as_bytes().to_vec());
            }
            reader.apply(*at, &flat);
        }
    }

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn waits_and_runs_pair_by_job_into_the_minute_they_end() {
        let mut r = BullLatencyReader::new("q");
        feed(
            &mut r,
            &[
                (T, "added", "1", &[]),
                (T, "waiting", "1", &[]),
                (T + 300, "active", "1", &[("prev", "waiting")]),
                (T + 500, "completed", "1", &[("prev", "active")]),
                // Its ready entry trimmed: a run, no wait.
                (T + 600, "active", "2", &[]),
                (T + 60_700, "failed", "2", &[]),
            ],
        );
        let minutes = r.minutes();
        assert_eq!(minutes.len(), 2);
        let first = &minutes[0];
        assert_eq!(first.minute, T);
        let wait = LatencyHistogram::from_pairs(&first.wait).unwrap();
        let run = LatencyHistogram::from_pairs(&first.run).unwrap();
        assert_eq!((wait.count(), run.count()), (1, 1));
        assert!((299..=301).contains(&wait.percentiles().p50));
        assert!((199..=201).contains(&run.percentiles().p50));
        let second = &minutes[1];
        assert!(second.wait.is_empty());
        assert_eq!(
            LatencyHistogram::from_pairs(&second.run).unwrap().count(),
            1
        );
        assert_eq!(r.tracked(), 0, "finished jobs are forgotten");
    }

    #[test]
    fn a_delayed_job_waits_from_its_due_time_not_its_promotion() {
        let mut r = BullLatencyReader::new("q");
        let due = (T + 1_000).to_string();
        feed(
            &mut r,
            &[
                (T, "added", "7", &[]),
                (T, "delayed", "7", &[("delay", &due)]),
                // Promoted by a worker's fetch 4 s late, started at once.
                (T + 5_000, "waiting", "7", &[("prev", "delayed")]),
                (T + 5_010, "active", "7", &[]),
                // A failure with a backoff ends the attempt…
                (
                    T + 5_110,
                    "delayed",
                    "7",
                    &[("delay", &(T + 6_000).to_string())],
                ),
                (T + 6_000, "waiting", "7", &[("prev", "delayed")]),
                (T + 6_050, "active", "7", &[]),
                (T + 6_060, "completed", "7", &[]),
            ],
        );
        let minute = &r.minutes()[0];
        let wait = LatencyHistogram::from_pairs(&minute.wait).unwrap();
        let run = LatencyHistogram::from_pairs(&minute.run).unwrap();
        assert_eq!((wait.count(), run.count()), (2, 2));
        // 4,010 ms from the due time, then 50 ms after the backoff.
        assert!((3_990..=4_030).contains(&wait.percentiles().max));
        assert!((49..=51).contains(&wait.percentiles().p50));
        assert!((99..=101).contains(&run.percentiles().max));
    }

    #[test]
    fn stalled_attempts_have_no_run_and_removed_jobs_are_forgotten() {
        let mut r = BullLatencyReader::new("q");
        feed(
            &mut r,
            &[
                (T, "waiting", "1", &[]),
                (T + 10, "active", "1", &[]),
                (T + 30_000, "stalled", "1", &[]),
                (T + 30_100, "active", "1", &[]),
                (T + 30_200, "completed", "1", &[]),
                (T, "waiting", "2", &[]),
                (T + 1, "removed", "2", &[]),
            ],
        );
        let minute = &r.minutes()[0];
        let run = LatencyHistogram::from_pairs(&minute.run).unwrap();
        let wait = LatencyHistogram::from_pairs(&minute.wait).unwrap();
        assert_eq!(run.count(), 1);
        assert!((99..=101).contains(&run.percentiles().max));
        assert!(
            (99..=101).contains(&wait.percentiles().max),
            "from the stall"
        );
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn the_reader_is_bounded() {
        let mut r = BullLatencyReader::new("q");
        for n in 0..MAX_TRACKED_JOBS + 10 {
            feed(&mut r, &[(T, "added", &n.to_string(), &[])]);
        }
        assert_eq!(r.tracked(), MAX_TRACKED_JOBS);
        // A start is still followed, for its run.
        feed(&mut r, &[(T + 5, "active", "new", &[])]);
        assert_eq!(r.tracked(), MAX_TRACKED_JOBS + 1);
        for m in 0..(KEPT_MINUTES as i64 + 5) {
            let at = T + m * MINUTE_MS;
            let job = format!("m{m}");
            feed(
                &mut r,
                &[(at, "active", &job, &[]), (at + 1, "completed", &job, &[])],
            );
        }
        r.last = Some(((T + (KEPT_MINUTES as i64 + 4) * MINUTE_MS) as u64, 0));
        r.forget_old();
        assert_eq!(r.minutes().len(), KEPT_MINUTES);
        assert_eq!(r.tracked(), MAX_TRACKED_JOBS + 1, "a day is not over");
        r.last = Some(((T + 2 * crate::queue::latency::HIGHEST_MS as i64) as u64, 0));
        r.forget_old();
        assert_eq!((r.tracked(), r.minutes().len()), (0, 0));
    }

    #[test]
    fn recent_sums_the_last_five_finished_minutes() {
        let mut r = BullLatencyReader::new("q");
        for m in 0..8i64 {
            let at = T + m * MINUTE_MS;
            let job = format!("{m}");
            feed(
                &mut r,
                &[
                    (at, "waiting", &job, &[]),
                    (at + 10, "active", &job, &[]),
                    (at + 10 + 100 * (m + 1), "completed", &job, &[]),
                ],
            );
        }
        // At minute 7: minutes 2..=6 are the finished ones.
        let (wait, run) = r.recent(T + 7 * MINUTE_MS + 30_000);
        assert_eq!((wait.count, run.count), (5, 5));
        assert!((695..=705).contains(&run.max), "{run:?}");
        assert!((495..=505).contains(&run.p50), "{run:?}");
    }
}
