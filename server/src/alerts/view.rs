//! Alerting's state as the pages, the banner and `/metrics` read it: a
//! figure the hub carries, kept apart from the runner that produces it so
//! readers need not depend on the runner.

use super::model::{Alert, Rule};
use super::store::Delivery;

/// What the pages show about alerting, reloaded after every tick and
/// every operator action.
#[derive(Debug, Clone, Default)]
pub struct AlertsView {
    /// Pending and firing alerts, firing first.
    pub active: Vec<Alert>,
    /// Every rule, by name.
    pub rules: Vec<Rule>,
    /// The newest webhook deliveries.
    pub deliveries: Vec<Delivery>,
    /// The first page of history (newest resolved alerts).
    pub history: Vec<Alert>,
    /// How many resolved alerts there are.
    pub history_total: u64,
    /// The receivers' names.
    pub receivers: Vec<String>,
    /// The instance evaluating right now.
    pub evaluator: Option<String>,
    /// Why the last tick could not read or write the database.
    pub problem: Option<String>,
    /// When this view was read.
    pub at: i64,
    /// How long this instance's recent evaluations took.
    pub evaluation: EvaluationTimes,
}

/// How long the latest evaluations took on this instance (reading the
/// figures, evaluating every rule and writing the changes; webhook
/// deliveries not included): the figure that shows whether alerting keeps
/// up at 10,000 queues, exported as a Prometheus summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvaluationTimes {
    /// Evaluations since this dashboard started.
    pub count: u64,
    /// Their total time, seconds.
    pub sum_seconds: f64,
    /// Median over the latest [`EvaluationTimes::WINDOW`] evaluations,
    /// seconds; `None` before the first.
    pub p50_seconds: Option<f64>,
    /// 99th percentile over the same window.
    pub p99_seconds: Option<f64>,
}

impl EvaluationTimes {
    /// Evaluations the quantiles are taken over: at the default interval,
    /// the last quarter of an hour or so.
    pub const WINDOW: usize = 256;
}
