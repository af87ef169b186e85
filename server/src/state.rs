//! What every handler can reach, in a module of its own so that handlers
//! and the parts they call need not import `startup` (which builds the
//! router, which names every handler): the import circle `startup →
//! router → controllers → startup` is gone.

use std::sync::Arc;

use coord::queue::Queues;

use crate::alerts::runner::Alerting;
use crate::audit::AuditLog;
use crate::bullmq::BullMonitor;
use crate::configuration::Settings;
use crate::db::Database;
use crate::fleet::Fleet;
use crate::live::Hub;
use crate::ratelimits::RateLimits;
use crate::users::UserStore;

/// What every handler can reach: the queues, the SQL side, the live hub
/// and the settings the server runs with.
#[derive(Clone)]
pub struct AppState {
    /// The job-queue API on the configured backend.
    pub queues: Queues,
    /// The server's own tables.
    pub db: Database,
    /// Coalesced snapshots for live pages, and retry-all runs.
    pub hub: Hub,
    /// The effective settings (for the configuration page).
    pub settings: Arc<Settings>,
    /// Notification channels, instances and synced state.
    pub fleet: Fleet,
    /// The dashboard's rate limits and the Rate limits page's figures.
    pub ratelimits: RateLimits,
    /// Alert rules, their evaluation and delivery.
    pub alerts: Alerting,
    /// Who did what, for the Audit page; every action records in it.
    pub audit: AuditLog,
    /// Operators' accounts, sessions and API tokens.
    pub users: UserStore,
    /// The BullMQ queues shown next to the native ones, when configured.
    pub bullmq: Option<BullMonitor>,
}
