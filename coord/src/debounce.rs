//! Debounced handlers: a burst of notifications becomes one reload.
//!
//! When one instance changes shared state, every other instance is told so
//! and reloads its cache from the database. A bulk change can produce
//! hundreds of notifications in a second; reloading once per notification
//! would hammer the database for no gain, because the first reload after
//! the burst already sees every change. A [`Debouncer`] sits between the
//! subscriber and the reload and guarantees:
//!
//! * **Collapsing.** Notifications that arrive before a run starts are all
//!   covered by that one run.
//! * **Quiet period, bounded.** A run starts once no notification arrived
//!   for [`DebounceConfig::delay`] (classic trailing-edge debounce), but never
//!   later than [`DebounceConfig::max_wait`] after the first notification it
//!   covers, so a continuous stream cannot starve the handler.
//! * **No lost wake-up.** A notification that arrives while the handler runs
//!   may describe a change the running reload already missed, so it
//!   schedules exactly one more run after the current one ends (however
//!   many such notifications arrive).
//! * **No overlap.** The handler never runs concurrently with itself, so it
//!   needs no locking of its own and two reloads never race to install
//!   different snapshots.
//! * **Errors do not stop it.** A failed (or panicking) run is counted, its
//!   message kept, and the next notification triggers the next attempt.
//!
//! # Why "delay after the last" rather than "delay after the first"
//!
//! Starting the run a fixed `delay` after the *first* notification splits a
//! burst that lasts longer than `delay` into several reloads. Restarting the
//! quiet period on every notification collapses a burst of any length into
//! one reload, which is what the issue asks for ("a burst of 1,000 changes
//! causes at most a handful of reloads"). Its known flaw, starvation under a
//! stream that never pauses, is closed by `max_wait`. Setting
//! `max_wait == delay` gives exactly "delay after the first" for callers who
//! prefer a fixed staleness bound over maximal collapsing.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a [`Debouncer`] waits before running its handler.
///
/// Kept separate from the handler so services can read it from their own
/// configuration (e.g. a `notification_delay_ms` setting) and pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebounceConfig {
    /// Quiet period: the run starts once no notification arrived for this
    /// long. Zero means "run as soon as the handler is free", for callers that
    /// value propagation latency over database load.
    pub delay: Duration,
    /// Upper bound on how long a notification may wait for its run while
    /// notifications keep arriving, so a continuous stream still reloads
    /// regularly. Values below `delay` are treated as `delay`.
    pub max_wait: Duration,
}

impl DebounceConfig {
    /// How many delays `max_wait` defaults to: long enough that a burst
    /// several delays long still collapses into one run, short enough that a
    /// never-ending stream leaves caches at most a few delays stale.
    pub const DEFAULT_MAX_WAIT_FACTOR: u32 = 4;

    /// A debounce of `delay` with the default bound on starvation
    /// ([`Self::DEFAULT_MAX_WAIT_FACTOR`] delays), which is what most callers
    /// want without having to reason about continuous streams.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            max_wait: delay.saturating_mul(Self::DEFAULT_MAX_WAIT_FACTOR),
        }
    }

    /// No debounce at all: for latency-critical consumers (and the
    /// propagation benchmark) that still need the no-overlap and
    /// one-more-run guarantees.
    pub fn immediate() -> Self {
        Self::new(Duration::ZERO)
    }

    /// Overrides the starvation bound, e.g. `max_wait == delay` to start
    /// runs a fixed time after the first notification of a burst.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// `max_wait` as actually applied, so a misconfigured bound below the
    /// delay cannot make runs start before the quiet period could end.
    fn effective_max_wait(&self) -> Duration {
        self.max_wait.max(self.delay)
    }
}

/// A snapshot of what a [`Debouncer`] has done, for the instance heartbeat,
/// the dashboard and tests ("did the burst really collapse?").
///
/// Runs that are in flight are counted in `runs_started` only, so
/// `runs_started - runs_completed - runs_failed` is the number of runs in
/// progress (0 or 1), or abandoned by [`Debouncer::abort`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebounceStats {
    /// Notifications accepted since start (those sent after shutdown are not
    /// counted, since nothing will ever act on them).
    pub notifications: u64,
    /// Runs of the handler that began.
    pub runs_started: u64,
    /// Runs that ended with `Ok`.
    pub runs_completed: u64,
    /// Runs that ended with `Err` or panicked.
    pub runs_failed: u64,
    /// Runs that covered more than one notification: the debounce saving
    /// database work. Compare with `runs_started` for its effectiveness.
    pub batches: u64,
    /// Notifications that arrived and are waiting for the next run.
    pub pending: u64,
    /// How many notifications the most recent run covered.
    pub last_run_notifications: u64,
    /// How long the most recently finished run took, to spot slow reloads.
    pub last_run_duration: Option<Duration>,
    /// Message of the most recent failure. Kept after later successes so an
    /// operator can still see why `runs_failed` went up.
    pub last_error: Option<String>,
}

/// Runs an async handler after notifications, debounced, one run at a time.
///
/// The handle owns the background task: dropping it or calling
/// [`shutdown`](Self::shutdown) stops the task, so a service that forgets to
/// shut down cleanly still does not leak reloads. Hand [`Notifier`]s to the
/// code that receives notifications; they do not keep the task alive.
///
/// Shutdown semantics: a pending run (notifications received, handler not yet
/// started) is cancelled. A run already in flight is allowed to finish by
/// [`shutdown`](Self::shutdown) and by drop, because a half-applied cache
/// reload is worse than a late one and handlers need not be cancel-safe;
/// [`abort`](Self::abort) is there for handlers that are.
#[derive(Debug)]
pub struct Debouncer {
    notifier: Notifier,
    task: Option<JoinHandle<()>>,
}

impl Debouncer {
    /// Starts the background task that runs `handler`.
    ///
    /// The handler takes no arguments because it is expected to reload from
    /// the source of truth rather than apply individual messages: that is
    /// what makes collapsing notifications safe.
    ///
    /// # Panics
    ///
    /// Panics when called outside a Tokio runtime, like `tokio::spawn`.
    pub fn spawn<F, Fut, E>(config: DebounceConfig, handler: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(run_worker(Arc::clone(&shared), config, handler));
        Self {
            notifier: Notifier { shared },
            task: Some(task),
        }
    }

    /// Records a notification; see [`Notifier::notify`].
    pub fn notify(&self) -> bool {
        self.notifier.notify()
    }

    /// A cheap, cloneable sender of notifications for subscriber tasks,
    /// so the handle itself can stay with whoever owns the lifecycle.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Current counters; see [`DebounceStats`].
    pub fn stats(&self) -> DebounceStats {
        self.notifier.stats()
    }

    /// Stops the task: cancels a pending run, lets an in-flight run finish,
    /// and returns once the task has ended, so callers can close the
    /// database pool the handler uses right afterwards.
    pub async fn shutdown(mut self) {
        self.notifier.shared.close();
        if let Some(task) = self.task.take() {
            // The worker catches handler panics, so an error here can only
            // mean the runtime is shutting down; nothing left to do.
            let _ = task.await;
        }
    }

    /// Stops the task without waiting for an in-flight run: the handler's
    /// future is dropped at its next await point. For handlers that are
    /// cancel-safe and may hang (e.g. on an unreachable database), where
    /// shutdown must not wait. Returns once the task has ended.
    pub async fn abort(mut self) {
        self.notifier.shared.close();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Debouncer {
    /// Signals the task to stop (same semantics as `shutdown`, without
    /// waiting), so dropping the handle never leaves reloads running forever.
    fn drop(&mut self) {
        self.notifier.shared.close();
    }
}

/// The sending side of a [`Debouncer`], for the tasks that receive
/// notifications (pub/sub subscribers, the polling fallback).
///
/// Holding one does not keep the runner alive: once the [`Debouncer`] is shut
/// down or dropped, notifications are ignored rather than queued for a run
/// that will never happen.
#[derive(Debug, Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    /// Records that the state may have changed and a run is needed.
    ///
    /// Synchronous and non-blocking (a few field updates under a lock that
    /// is never held across an await), so it can be called from a pub/sub
    /// callback, a sync context or a hot loop. Returns `false`, and does
    /// nothing, if the runner has shut down; it never panics, because a
    /// late message during shutdown is normal and must not crash the
    /// subscriber.
    pub fn notify(&self) -> bool {
        let now = Instant::now();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return false;
            }
            state.stats.notifications += 1;
            match &mut state.window {
                Some(window) => {
                    window.last = now;
                    window.count += 1;
                }
                None => {
                    state.window = Some(Window {
                        first: now,
                        last: now,
                        count: 1,
                    })
                }
            }
        }
        self.shared.wake.notify_one();
        true
    }

    /// Current counters; see [`DebounceStats`].
    pub fn stats(&self) -> DebounceStats {
        let state = self.shared.lock();
        let mut stats = state.stats.clone();
        stats.pending = state.window.map_or(0, |w| w.count);
        stats
    }

    /// Whether the runner has been shut down, so a subscriber can stop
    /// listening instead of sending notifications nobody acts on.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

/// State shared between the handle, notifiers and the worker task.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the worker on a notification or on shutdown. `notify_one`
    /// stores a permit when the worker is busy, so no wake-up is lost.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than
        // propagate a poison so `notify` can never panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Notifications not yet run are cancelled.
        state.window = None;
        drop(state);
        self.wake.notify_one();
    }
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    /// Notifications not yet covered by a run.
    window: Option<Window>,
    stats: DebounceStats,
}

/// The notifications waiting for the next run.
#[derive(Debug, Clone, Copy)]
struct Window {
    first: Instant,
    last: Instant,
    count: u64,
}

impl Window {
    fn deadline(&self, config: &DebounceConfig) -> Instant {
        let quiet = add_saturating(self.last, config.delay);
        let bound = add_saturating(self.first, config.effective_max_wait());
        quiet.min(bound)
    }
}

/// `Instant + Duration` without the overflow panic of huge configured
/// durations; "practically never" is the intended meaning anyway.
fn add_saturating(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

/// What the worker should do next, decided under one lock.
enum Next {
    Stop,
    Idle,
    WaitUntil(Instant),
    Run(u64),
}

async fn run_worker<F, Fut, E>(shared: Arc<Shared>, config: DebounceConfig, handler: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + 'static,
{
    loop {
        let next = {
            let mut state = shared.lock();
            match state.window {
                _ if state.closed => Next::Stop,
                None => Next::Idle,
                Some(window) => {
                    let deadline = window.deadline(&config);
                    if Instant::now() >= deadline {
                        state.window = None;
                        let stats = &mut state.stats;
                        stats.runs_started += 1;
                        stats.last_run_notifications = window.count;
                        if window.count > 1 {
                            stats.batches += 1;
                        }
                        Next::Run(window.count)
                    } else {
                        Next::WaitUntil(deadline)
                    }
                }
            }
        };
        match next {
            Next::Stop => return,
            Next::Idle => shared.wake.notified().await,
            Next::WaitUntil(deadline) => {
                // A new notification may push the deadline back, and
                // shutdown must be seen promptly: re-decide on either.
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = shared.wake.notified() => {}
                }
            }
            Next::Run(count) => {
                let started = Instant::now();
                // Catch panics so one bad reload does not silently end all
                // future reloads for the life of the process.
                // Calling the handler is split from awaiting its future so
                // the handler need not be `Sync`.
                let outcome = match std::panic::catch_unwind(AssertUnwindSafe(&handler)) {
                    Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                let elapsed = started.elapsed();
                let error = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(panic) => Some(panic_message(panic.as_ref())),
                };
                if let Some(message) = &error {
                    tracing::warn!(error = %message, notifications = count, "debounced handler failed");
                }
                let mut state = shared.lock();
                let stats = &mut state.stats;
                stats.last_run_duration = Some(elapsed);
                match error {
                    None => stats.runs_completed += 1,
                    Some(message) => {
                        stats.runs_failed += 1;
                        stats.last_error = Some(message);
                    }
                }
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string payload".to_owned());
    format!("handler panicked: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Counts runs, records their start times and detects overlap.
    #[derive(Default)]
    struct Probe {
        active: AtomicUsize,
        max_active: AtomicUsize,
        starts: Mutex<Vec<Instant>>,
        calls: AtomicU64,
    }

    impl Probe {
        /// A handler that takes `work` to run and fails when `fail` says so
        /// for the (1-based) call number.
        fn handler(
            self: &Arc<Self>,
            work: Duration,
            fail: fn(u64) -> bool,
        ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + 'static {
            let probe = Arc::clone(self);
            move || {
                let probe = Arc::clone(&probe);
                Box::pin(async move {
                    let n = probe.calls.fetch_add(1, Ordering::SeqCst) + 1;
                    probe.starts.lock().unwrap().push(Instant::now());
                    let now_active = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
                    probe.max_active.fetch_max(now_active, Ordering::SeqCst);
                    if !work.is_zero() {
                        tokio::time::sleep(work).await;
                    }
                    probe.active.fetch_sub(1, Ordering::SeqCst);
                    if fail(n) {
                        Err(format!("db down #{n}"))
                    } else {
                        Ok(())
                    }
                })
            }
        }

        fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }

        fn starts(&self) -> Vec<Instant> {
            self.starts.lock().unwrap().clone()
        }
    }

    fn never(_: u64) -> bool {
        false
    }

    /// Lets the worker react to what just happened without moving the clock.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn debounce_burst_of_1000_within_delay_is_one_run() {
        let probe = Arc::new(Probe::default());
        let config = DebounceConfig::new(100 * MS).with_max_wait(Duration::from_secs(10));
        let debouncer = Debouncer::spawn(config, probe.handler(Duration::ZERO, never));
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(debouncer.notify());
            tokio::time::advance(Duration::from_micros(50)).await;
        }
        // 50 ms of burst: still inside the quiet period.
        settle().await;
        assert_eq!(probe.calls(), 0);
        assert_eq!(debouncer.stats().pending, 1000);
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(probe.calls(), 1);
        // Trailing edge: `delay` after the last notification of the burst.
        let started = probe.starts()[0] - t0;
        assert!(started >= 149 * MS && started <= 151 * MS, "{started:?}");
        let stats = debouncer.stats();
        assert_eq!(stats.notifications, 1000);
        assert_eq!(stats.runs_started, 1);
        assert_eq!(stats.runs_completed, 1);
        assert_eq!(stats.runs_failed, 0);
        assert_eq!(stats.batches, 1);
        assert_eq!(stats.pending, 0);
        assert_eq!(stats.last_run_notifications, 1000);
        assert_eq!(stats.last_run_duration, Some(Duration::ZERO));
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_burst_longer_than_delay_still_collapses_below_max_wait() {
        let probe = Arc::new(Probe::default());
        let config = DebounceConfig::new(100 * MS).with_max_wait(Duration::from_secs(1));
        let debouncer = Debouncer::spawn(config, probe.handler(Duration::ZERO, never));
        // 400 ms of notifications every 50 ms: four delays long.
        for _ in 0..8 {
            debouncer.notify();
            tokio::time::sleep(50 * MS).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(probe.calls(), 1);
        assert_eq!(debouncer.stats().last_run_notifications, 8);
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_notifications_during_slow_run_schedule_exactly_one_more() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::new(10 * MS),
            probe.handler(Duration::from_secs(1), never),
        );
        debouncer.notify();
        tokio::time::sleep(20 * MS).await;
        assert_eq!(probe.calls(), 1, "first run in flight");
        for _ in 0..50 {
            debouncer.notify();
            tokio::time::sleep(5 * MS).await;
        }
        assert_eq!(
            probe.calls(),
            1,
            "no overlap while the first run is in flight"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;

        assert_eq!(probe.calls(), 2);
        assert_eq!(probe.max_active.load(Ordering::SeqCst), 1);
        let stats = debouncer.stats();
        assert_eq!(stats.runs_started, 2);
        assert_eq!(stats.runs_completed, 2);
        assert_eq!(stats.last_run_notifications, 50);
        assert_eq!(stats.last_run_duration, Some(Duration::from_secs(1)));
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_single_notification_during_run_is_not_lost() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::new(10 * MS),
            probe.handler(Duration::from_secs(1), never),
        );
        debouncer.notify();
        tokio::time::sleep(500 * MS).await;
        debouncer.notify();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(probe.calls(), 2);
        let starts = probe.starts();
        // The second run waits for the first to end, not a second delay.
        assert_eq!(starts[1] - starts[0], Duration::from_secs(1));
        assert_eq!(debouncer.stats().batches, 0);
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_zero_delay_runs_promptly_never_overlapping() {
        let probe = Arc::new(Probe::default());
        let debouncer =
            Debouncer::spawn(DebounceConfig::immediate(), probe.handler(10 * MS, never));
        let t0 = Instant::now();
        debouncer.notify();
        settle().await;
        assert_eq!(probe.calls(), 1, "ran without the clock moving");
        assert_eq!(probe.starts()[0], t0);

        // Notifications while it runs: one more run, right after.
        for _ in 0..5 {
            debouncer.notify();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(probe.calls(), 2);
        assert_eq!(probe.starts()[1] - t0, 10 * MS);

        // Spaced notifications: one run each.
        for _ in 0..20 {
            debouncer.notify();
            tokio::time::sleep(50 * MS).await;
        }
        assert_eq!(probe.calls(), 22);
        assert_eq!(probe.max_active.load(Ordering::SeqCst), 1);
        let stats = debouncer.stats();
        assert_eq!(stats.runs_completed, 22);
        assert_eq!(stats.batches, 1);
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_continuous_stream_runs_at_least_every_max_wait() {
        let probe = Arc::new(Probe::default());
        let config = DebounceConfig::new(100 * MS).with_max_wait(500 * MS);
        let debouncer = Debouncer::spawn(config, probe.handler(Duration::ZERO, never));
        let t0 = Instant::now();
        // A notification every 50 ms for 3 s: the quiet period never ends.
        for _ in 0..60 {
            debouncer.notify();
            tokio::time::sleep(50 * MS).await;
        }
        let starts = probe.starts();
        assert!(starts.len() >= 5, "starved: {} runs", starts.len());
        assert!(
            starts[0] - t0 <= 500 * MS,
            "first run at {:?}",
            starts[0] - t0
        );
        for pair in starts.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap <= 550 * MS, "gap {gap:?}");
        }
        assert!(debouncer.stats().batches >= 5);
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_max_wait_below_delay_is_raised_to_delay() {
        let probe = Arc::new(Probe::default());
        let config = DebounceConfig::new(100 * MS).with_max_wait(MS);
        let debouncer = Debouncer::spawn(config, probe.handler(Duration::ZERO, never));
        let t0 = Instant::now();
        debouncer.notify();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(probe.starts(), vec![t0 + 100 * MS]);
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_errors_are_counted_and_runner_continues() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::new(10 * MS),
            probe.handler(Duration::ZERO, |n| n <= 2),
        );
        for _ in 0..3 {
            debouncer.notify();
            tokio::time::sleep(100 * MS).await;
        }
        let stats = debouncer.stats();
        assert_eq!(stats.runs_started, 3);
        assert_eq!(stats.runs_failed, 2);
        assert_eq!(stats.runs_completed, 1);
        assert_eq!(stats.last_error.as_deref(), Some("db down #2"));
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_panicking_handler_is_counted_and_runner_continues() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let debouncer = Debouncer::spawn(DebounceConfig::new(10 * MS), move || {
            let counter = Arc::clone(&counter);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom");
                }
                Ok::<(), String>(())
            }
        });
        debouncer.notify();
        tokio::time::sleep(100 * MS).await;
        debouncer.notify();
        tokio::time::sleep(100 * MS).await;
        let stats = debouncer.stats();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(stats.runs_failed, 1);
        assert_eq!(stats.runs_completed, 1);
        assert_eq!(stats.last_error.as_deref(), Some("handler panicked: boom"));
        debouncer.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_shutdown_cancels_pending_run_and_stops_further_runs() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::new(100 * MS),
            probe.handler(Duration::ZERO, never),
        );
        let notifier = debouncer.notifier();
        assert!(notifier.notify());
        tokio::time::sleep(50 * MS).await;
        let t0 = Instant::now();
        debouncer.shutdown().await;
        assert_eq!(Instant::now(), t0, "shutdown did not wait for the delay");

        assert!(notifier.is_closed());
        assert!(!notifier.notify(), "notify after shutdown is a no-op");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(probe.calls(), 0);
        let stats = notifier.stats();
        assert_eq!(stats.notifications, 1);
        assert_eq!(stats.pending, 0);
        assert_eq!(stats.runs_started, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_shutdown_lets_in_flight_run_finish() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::immediate(),
            probe.handler(Duration::from_secs(1), never),
        );
        let notifier = debouncer.notifier();
        debouncer.notify();
        settle().await;
        assert_eq!(probe.calls(), 1);
        // Arrives during the run: would schedule another run, but shutdown
        // cancels it.
        debouncer.notify();
        let t0 = Instant::now();
        debouncer.shutdown().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
        let stats = notifier.stats();
        assert_eq!(stats.runs_completed, 1);
        assert_eq!(stats.runs_started, 1);
        assert_eq!(probe.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_abort_drops_in_flight_run() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::immediate(),
            probe.handler(Duration::from_secs(3600), never),
        );
        let notifier = debouncer.notifier();
        debouncer.notify();
        settle().await;
        let t0 = Instant::now();
        debouncer.abort().await;
        assert_eq!(Instant::now(), t0);
        let stats = notifier.stats();
        assert_eq!(stats.runs_started, 1);
        assert_eq!(stats.runs_completed + stats.runs_failed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_drop_of_handle_stops_the_task() {
        let probe = Arc::new(Probe::default());
        let debouncer = Debouncer::spawn(
            DebounceConfig::new(100 * MS),
            probe.handler(Duration::ZERO, never),
        );
        let notifier = debouncer.notifier();
        notifier.notify();
        drop(debouncer);
        assert!(!notifier.notify());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(probe.calls(), 0);
        // The task has exited: only the notifier still holds the state.
        assert_eq!(Arc::strong_count(&notifier.shared), 1);
    }

    #[test]
    fn debounce_notify_without_runtime_after_drop_does_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let notifier = runtime.block_on(async {
            Debouncer::spawn(DebounceConfig::immediate(), || async {
                Ok::<(), String>(())
            })
            .notifier()
        });
        drop(runtime);
        assert!(!notifier.notify());
    }
}
