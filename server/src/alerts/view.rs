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
}
