//! The alerting loop: every interval, the dashboard instance holding the
//! evaluation lease evaluates the rules against the hub's latest figures,
//! writes the outcome and its webhook deliveries in one transaction, and
//! sends what is due; every instance then reloads what the pages show.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::queue::Queues;
use coord::time::now_ms;
use tokio::sync::{Notify, watch};

use super::defaults::{default_rules, validate};
use super::eval::{Change, evaluate};
use super::model::{Alert, Rule, RuleKind};
pub use super::settings::{AlertSettings, WebhookTarget};
use super::store::{AlertStore, NewDelivery, RuleSource, Write};
use super::view::{AlertsView, EvaluationTimes};
use super::webhook::{
    MAX_ATTEMPTS, WebhookClient, WebhookFormat, alertmanager_payload, backoff, chat_payload,
};
use crate::db::{Database, DbError};
use crate::http::error::one_line;
use crate::live::{Hub, Snapshot};
use crate::sync::lock;

/// The lease's name in `alert_lease`.
const LEASE: &str = "alert-evaluator";
/// Deliveries shown on the Alerts page.
const SHOWN_DELIVERIES: u64 = 50;
/// Resolved alerts per page of history.
pub const HISTORY_PAGE: u64 = 50;
/// Deliveries attempted per tick, so one tick stays short.
const SENT_PER_TICK: u64 = 20;

/// The channel alerting publishes its state on: made before the hub,
/// which shows it on every page, and handed to [`Alerting::start`].
pub fn view_channel() -> (
    watch::Sender<Arc<AlertsView>>,
    watch::Receiver<Arc<AlertsView>>,
) {
    watch::channel(Arc::new(AlertsView::default()))
}

struct Inner {
    store: AlertStore,
    queues: Queues,
    /// The hub's snapshots, without keeping the hub alive (the hub shows
    /// this alerting's view, and asks for a snapshot when it changes).
    snapshots: watch::Receiver<Arc<Snapshot>>,
    client: WebhookClient,
    receivers: Vec<(String, WebhookTarget)>,
    external_url: String,
    holder: String,
    interval: Duration,
    observing_since: i64,
    /// The oldest waiting job of each queue, read again only when the
    /// queue changed.
    oldest_waiting: super::observe::OldestWaiting,
    view: watch::Sender<Arc<AlertsView>>,
    /// Reloads read and publish one at a time, so a reload that read
    /// before an operator's action cannot publish after the action's own
    /// reload and show the old state again.
    reloading: tokio::sync::Mutex<()>,
    wake: Arc<Notify>,
    timings: Mutex<Timings>,
}

/// The latest evaluations' durations (seconds), at most
/// [`EvaluationTimes::WINDOW`], and the totals since start.
#[derive(Default)]
struct Timings {
    recent: VecDeque<f64>,
    count: u64,
    sum: f64,
}

impl Timings {
    fn record(&mut self, seconds: f64) {
        if self.recent.len() == EvaluationTimes::WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(seconds);
        self.count += 1;
        self.sum += seconds;
    }

    fn figures(&self) -> EvaluationTimes {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of them at or
        // below it.
        let quantile = |q: f64| {
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted.get(rank.saturating_sub(1)).copied()
        };
        EvaluationTimes {
            count: self.count,
            sum_seconds: self.sum,
            p50_seconds: quantile(0.5),
            p99_seconds: quantile(0.99),
        }
    }
}

/// Alerting of one dashboard instance. Cheap to clone.
#[derive(Clone)]
pub struct Alerting {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("holder", &self.inner.holder)
            .finish_non_exhaustive()
    }
}

impl Alerting {
    /// Seeds the shipped rules (only those absent, so edits survive) and
    /// the file's rules (always), then starts the loop on the current
    /// runtime. `holder` names this instance in the lease.
    pub async fn start(
        db: Database,
        hub: Hub,
        queues: Queues,
        settings: &AlertSettings,
        holder: String,
        view: watch::Sender<Arc<AlertsView>>,
    ) -> Result<Self, DbError> {
        let store = AlertStore::new(db);
        let now = now_ms();
        for rule in default_rules() {
            store
                .add_rule_if_absent(&rule, RuleSource::Default, now)
                .await?;
        }
        for rule in &settings.rules {
            store.save_rule(rule, RuleSource::File, now).await?;
        }
        let receivers = settings
            .webhooks
            .iter()
            .map(|w| (w.url.redacted(), w.clone()))
            .collect();
        let alerting = Self {
            inner: Arc::new(Inner {
                store,
                queues,
                snapshots: hub.subscribe(),
                client: WebhookClient::new(),
                receivers,
                external_url: settings.external_url.trim_end_matches('/').to_owned(),
                holder,
                interval: settings.interval,
                observing_since: now,
                oldest_waiting: super::observe::OldestWaiting::default(),
                view,
                reloading: tokio::sync::Mutex::new(()),
                wake: Arc::new(Notify::new()),
                timings: Mutex::default(),
            }),
        };
        alerting.refresh().await;
        let weak = Arc::downgrade(&alerting.inner);
        let wake = alerting.inner.wake.clone();
        let mut closed = hub.closed();
        tokio::spawn(async move {
            loop {
                let Some(interval) = weak.upgrade().map(|i| i.interval) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = wake.notified() => {}
                    _ = closed.changed() => {
                        if let Some(inner) = weak.upgrade() {
                            let _ = inner.store.release_lease(LEASE, &inner.holder).await;
                        }
                        return;
                    }
                }
                let Some(inner) = weak.upgrade() else { return };
                Alerting { inner }.tick(now_ms()).await;
            }
        });
        Ok(alerting)
    }

    /// The store, for the pages' actions and history.
    pub fn store(&self) -> &AlertStore {
        &self.inner.store
    }

    /// What the pages show now.
    pub fn view(&self) -> Arc<AlertsView> {
        self.inner.view.borrow().clone()
    }

    /// Changes of the view, for a stream that waits for the next one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AlertsView>> {
        self.inner.view.subscribe()
    }

    /// This instance's name in the lease.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Asks for an evaluation now rather than at the next interval (after a
    /// rule changed).
    pub fn evaluate_soon(&self) {
        self.inner.wake.notify_one();
    }

    /// One round: evaluate and send if this instance holds the lease, then
    /// reload the view. Errors are shown on the Alerts page and logged; the
    /// next round tries again.
    pub async fn tick(&self, now: i64) {
        let inner = &self.inner;
        let ttl = i64::try_from(inner.interval.as_millis() * 3).unwrap_or(i64::MAX) + 1000;
        let problem = match inner
            .store
            .acquire_lease(LEASE, &inner.holder, ttl, now)
            .await
        {
            Ok(true) => self.evaluate_and_send(now).await.err(),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        if let Some(e) = &problem {
            tracing::warn!("alert evaluation failed: {e}");
        }
        self.reload(problem.map(|e| one_line(&e.to_string()))).await;
    }

    async fn evaluate_and_send(&self, now: i64) -> Result<(), DbError> {
        let started = Instant::now();
        let inner = &self.inner;
        let rules = inner.store.rules().await?;
        let active = inner.store.active().await?;
        let snapshot = inner.snapshots.borrow().clone();
        let with_latency = rules
            .iter()
            .any(|r| r.enabled && r.kind == RuleKind::JobLatency);
        // The minutes the longest failure-rate window reaches back into,
        // counting the one under way.
        let minutes = rules
            .iter()
            .filter(|r| r.enabled && r.kind == RuleKind::FailureRate)
            .map(|r| usize::try_from(r.window_secs.div_ceil(60)).unwrap_or(usize::MAX) + 1)
            .max()
            .unwrap_or(0);
        let obs = super::observe::observe(
            &snapshot,
            &inner.queues,
            with_latency.then_some(&inner.oldest_waiting),
            minutes,
            inner.observing_since,
            now,
        )
        .await;
        let evaluation = evaluate(&rules, &obs, &active, now);
        let mut write = Write {
            upsert: evaluation.active.clone(),
            ..Write::default()
        };
        for change in &evaluation.changes {
            match change {
                Change::Pending(_) => {}
                Change::Cleared(alert) => write.cleared.push(alert.fingerprint.clone()),
                Change::Firing(alert) => self.deliveries(&mut write, alert, "firing", now),
                Change::Resolved(alert) => {
                    write.resolved.push(alert.clone());
                    self.deliveries(&mut write, alert, "resolved", now);
                }
            }
            log_change(change);
        }
        inner.store.write(&write, now).await?;
        let took = started.elapsed().as_secs_f64();
        lock(&inner.timings).record(took);
        self.send_due(now).await
    }

    /// One delivery per receiver for an alert that fired or resolved,
    /// unless it is silenced.
    fn deliveries(&self, write: &mut Write, alert: &Alert, event: &'static str, now: i64) {
        if alert.is_silenced(now) {
            return;
        }
        let external = &self.inner.external_url;
        for (name, target) in &self.inner.receivers {
            let payload = match target.format {
                WebhookFormat::Alertmanager => {
                    alertmanager_payload(std::slice::from_ref(alert), name, external)
                }
                WebhookFormat::Chat => chat_payload(alert, external),
            };
            write.deliveries.push(NewDelivery {
                fingerprint: alert.fingerprint.clone(),
                rule: alert.rule.clone(),
                event,
                receiver: name.clone(),
                payload: payload.to_string(),
            });
        }
    }

    /// Posts the deliveries that are due; a failure is retried with
    /// backoff, up to [`MAX_ATTEMPTS`].
    async fn send_due(&self, now: i64) -> Result<(), DbError> {
        let inner = &self.inner;
        for delivery in inner.store.due_deliveries(now, SENT_PER_TICK).await? {
            let Some((_, target)) = inner
                .receivers
                .iter()
                .find(|(n, _)| *n == delivery.receiver)
            else {
                inner
                    .store
                    .delivery_failed(delivery.id, "this receiver is no longer configured", None)
                    .await?;
                continue;
            };
            let body: serde_json::Value = match serde_json::from_str(&delivery.payload) {
                Ok(body) => body,
                Err(e) => {
                    let reason = format!("stored payload is unreadable: {e}");
                    inner
                        .store
                        .delivery_failed(delivery.id, &reason, None)
                        .await?;
                    continue;
                }
            };
            match inner.client.post_json(target.url.expose(), &body).await {
                Ok(()) => inner.store.delivery_sent(delivery.id, now_ms()).await?,
                Err(e) => {
                    let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
                    let retry_at = (attempts < MAX_ATTEMPTS).then(|| {
                        now_ms()
                            + i64::try_from(backoff(attempts.saturating_sub(1)).as_millis())
                                .unwrap_or(i64::MAX)
                    });
                    tracing::warn!(
                        receiver = %delivery.receiver,
                        attempts,
                        "webhook delivery failed: {e}"
                    );
                    inner
                        .store
                        .delivery_failed(delivery.id, &one_line(&e.to_string()), retry_at)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Reloads the view from the database (after a tick or an action) and
    /// asks the hub for a snapshot.
    pub async fn refresh(&self) {
        self.reload(None).await;
    }

    async fn reload(&self, problem: Option<String>) {
        let inner = &self.inner;
        let _one_at_a_time = inner.reloading.lock().await;
        let now = now_ms();
        let evaluation = lock(&inner.timings).figures();
        let read = async {
            let active = inner.store.active().await?;
            let rules = inner.store.rules().await?;
            let deliveries = inner.store.deliveries(SHOWN_DELIVERIES).await?;
            let evaluator = inner.store.lease_holder(LEASE, now).await?;
            let history = inner.store.history(0, HISTORY_PAGE).await?;
            Ok::<_, DbError>((active, rules, deliveries, evaluator, history))
        };
        let view = match read.await {
            Ok((active, rules, deliveries, evaluator, (history, history_total))) => AlertsView {
                active,
                rules,
                deliveries,
                history,
                history_total,
                receivers: inner.receivers.iter().map(|(n, _)| n.clone()).collect(),
                evaluator,
                problem,
                at: now,
                evaluation,
            },
            Err(e) => AlertsView {
                problem: Some(one_line(&e.to_string())),
                at: now,
                evaluation,
                ..(**inner.view.borrow()).clone()
            },
        };
        inner.view.send_replace(Arc::new(view));
    }
}

fn log_change(change: &Change) {
    match change {
        Change::Pending(a) => tracing::info!(rule = %a.rule, subject = %a.subject, "alert pending"),
        Change::Firing(a) => {
            tracing::warn!(rule = %a.rule, subject = %a.subject, "alert firing: {}", a.summary)
        }
        Change::Resolved(a) => {
            tracing::info!(rule = %a.rule, subject = %a.subject, "alert resolved")
        }
        Change::Cleared(a) => tracing::info!(rule = %a.rule, subject = %a.subject, "alert cleared"),
    }
}

/// Validates a rule from a form, the API or the config file, with the
/// reason as one line.
pub fn check_rule(rule: &Rule) -> Result<(), String> {
    validate(rule)
}

#[cfg(test)]
mod tests {
    use super::{EvaluationTimes, Timings};

    #[test]
    fn quantiles_are_of_the_latest_window_and_totals_of_all() {
        let mut timings = Timings::default();
        assert_eq!(timings.figures(), EvaluationTimes::default());
        // One slow evaluation, then a full window of fast ones: the slow
        // one leaves the quantiles but stays in the totals.
        timings.record(9.0);
        for i in 0..EvaluationTimes::WINDOW {
            timings.record(if i % 100 == 0 { 0.5 } else { 0.001 });
        }
        let figures = timings.figures();
        assert_eq!(figures.count, EvaluationTimes::WINDOW as u64 + 1);
        assert!((figures.sum_seconds - (9.0 + 3.0 * 0.5 + 253.0 * 0.001)).abs() < 1e-9);
        assert_eq!(figures.p50_seconds, Some(0.001));
        // Three of 256 are slow: the 99th percentile (rank 254) is one.
        assert_eq!(figures.p99_seconds, Some(0.5));
    }
}
