//! What every handler can reach. It lives outside `startup` (which builds
//! it and the router, and so names every handler) so that handlers and the
//! parts they call never import `startup`.

use std::sync::Arc;

use coord::queue::Queues;

use crate::alerts::runner::Alerting;
use crate::audit::AuditLog;
use crate::auth::throttle::SignInThrottle;
use crate::auth::users::UserStore;
use crate::bullmq::BullMonitor;
use crate::channels::Channels;
use crate::config::Settings;
use crate::db::Database;
use crate::instances::Instances;
use crate::live::Hub;
use crate::live::stream::Streams;
use crate::metrics::Exporter;
use crate::ratelimits::RateLimits;
use crate::schedules::Schedules;
use crate::workers::Workers;

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
    /// The pages' live streams and the work they share.
    pub streams: Streams,
    /// The effective settings (for the configuration page).
    pub settings: Arc<Settings>,
    /// The notification bus and its observed traffic.
    pub channels: Channels,
    /// The instance registry and the synced state's store.
    pub instances: Instances,
    /// The Prometheus exposition behind `GET /metrics`.
    pub metrics: Exporter,
    /// The dashboard's rate limits and the Rate limits page's figures.
    pub ratelimits: RateLimits,
    /// Alert rules, their evaluation and delivery.
    pub alerts: Alerting,
    /// Who did what, for the Audit page; every action records in it.
    pub audit: AuditLog,
    /// Operators' accounts, sessions and API tokens.
    pub users: UserStore,
    /// Wrong passwords per account, which delay further attempts.
    pub sign_ins: Arc<SignInThrottle>,
    /// The BullMQ queues shown next to the native ones, when configured.
    pub bullmq: Option<BullMonitor>,
    /// The worker registry of the queue backend.
    pub workers: Workers,
    /// The queue backend's schedules, and whether this server fires them.
    pub schedules: Schedules,
    /// The configured Redis's reader, for the Redis page (none without
    /// Redis).
    pub redis: Option<crate::redis_health::RedisWatch>,
    /// The services' shared cache tier and bus, for invalidations.
    pub caches: crate::cache::Caches,
}
