//! Switchyard's pages, rendered on the server with leptos (SSR only: no
//! WASM, no hydration), from the view models in [`vm`].
//!
//! Each `render_*_page` function returns a complete HTML document. Each
//! `*_fragments` function renders the live regions of the same page, alone,
//! with the same components: the server pushes them over server-sent events
//! and the page script swaps each in by its id. A page and its live updates
//! therefore cannot disagree on markup.
//!
//! The crate is laid out by what changes together: `pages` holds one
//! module per page, `widgets` the parts pages share (the shell, the pager,
//! tables, forms, charts), [`vm`] the view models by capability and
//! [`format`] how values read on every page.

#![warn(missing_docs)]
// A page's view is one nested type, a component boundary one more level of
// it; the default limit (128) is short of the deepest pages.
#![recursion_limit = "256"]

pub mod format;
mod pages;
#[cfg(test)]
mod testing;
pub mod vm;
mod widgets;

pub use pages::alerts::{ALERTS_EVENTS, alerts_fragments, render_alerts_page};
pub use pages::audit::render_audit_page;
pub use pages::bull_job::{bull_job_events, bull_job_fragments, render_bull_job_page};
pub use pages::bull_queue::{bull_queue_events, bull_queue_fragments, render_bull_queue_page};
pub use pages::bullmq::{BULL_SORTS, BULLMQ_EVENTS, bullmq_fragments, render_bullmq_page};
pub use pages::cache::{CACHE_EVENTS, cache_fragments, render_cache_page};
pub use pages::channels::{CHANNELS_EVENTS, channels_fragments, render_channels_page};
pub use pages::config::render_config_page;
pub use pages::error::render_error_page;
pub use pages::errors::{errors_fragments, render_errors_page};
pub use pages::instances::{INSTANCES_EVENTS, instances_fragments, render_instances_page};
pub use pages::job::{job_fragments, job_gone_fragments, render_job_page};
pub use pages::login::render_login_page;
pub use pages::overview::{
    OVERVIEW_EVENTS, overview_events, overview_fragments, render_overview_page,
};
pub use pages::queue::{queue_fragments, render_queue_page};
pub use pages::queues::{QUEUES_EVENTS, queues_fragments, render_queues_page};
pub use pages::ratelimits::{RATELIMITS_EVENTS, ratelimits_fragments, render_ratelimits_page};
pub use pages::redis::{REDIS_EVENTS, redis_fragments, render_redis_page};
pub use pages::retrying::render_retrying_page;
pub use pages::schedules::{
    BULL_SCHEDULERS_REGION, SCHEDULES_EVENTS, render_schedule_form_page, render_schedules_page,
    schedules_events, schedules_fragments,
};
pub use pages::search::render_search_page;
pub use pages::users::render_users_page;
pub use pages::workers::{
    BULL_WORKERS_REGION, WORKERS_EVENTS, render_workers_page, workers_events, workers_fragments,
};
pub use widgets::banner::banner_fragment;
pub use widgets::shell::Fragment;

/// The page script: opens the page's event stream and swaps the regions it
/// receives; pages work without it (forms post and redirect back).
pub const LIVE_SCRIPT: &str = include_str!("live.js");

// The crate root also names the formatting helpers and every view model,
// so the server writes `app::QueueRow` next to `app::render_queue_page`:
// one flat surface for the edge that renders, the modules for reading.
pub use format::{
    counted, encode_query, format_age, format_bytes, format_count, format_timestamp, format_window,
};
pub use vm::alerts::{AlertBannerVm, AlertRow, AlertsVm, DeliveryRow, RuleRow};
pub use vm::audit::{AuditFilterVm, AuditRow, AuditVm};
pub use vm::bullmq::{
    BULL_CHILD_KINDS, BULL_STATES, BullChildCounts, BullChildGroup, BullFlowJobVm, BullFlowVm,
    BullJobPageVm, BullJobRow, BullQueuePageVm, BullQueueRow, BullQueuesVm, CLEAN_AGES,
    bull_job_actions, bull_job_path, bull_queue_path, encode_segment,
};
pub use vm::cache::{
    AgreementVm, CacheInstanceRow, CacheVm, HitChartVm, INSTANCES_SHOWN, NAMESPACES_PER_PAGE,
    NamespaceDetailVm, NamespaceRow,
};
pub use vm::channels::{ChannelRow, ChannelsVm, MessageRow};
pub use vm::config::{ConfigEntry, ConfigVm};
pub use vm::errors::{
    ErrorGroupRow, ErrorsVm, GROUP_SORTS, GROUPS_PER_PAGE, GroupQueueVm, bull_errors_url,
    group_jobs_url, queue_errors_url,
};
pub use vm::glance::{
    AlertsGlance, BullGlance, ChannelsGlance, GlanceVm, InstancesGlance, RateLimitsGlance,
    SILENT_MINUTES,
};
pub use vm::instances::{
    CACHES_PER_INSTANCE, CacheAgreement, InstanceCacheRow, InstanceRow, InstanceState, InstancesVm,
};
pub use vm::queues::{
    AttemptVm, BulkProgressVm, ChartRange, ClusterMasterVm, ClusterVm, DependencyVm, HealthVm,
    JobFilterVm, JobPageVm, JobRow, LatencyVm, MinutePoint, OverviewVm, PercentilesVm,
    QUEUES_PER_PAGE, QueueHealth, QueuePageVm, QueueRow, QueueSort, QueuesQuery, QueuesVm,
    RetryingVm, STATES, StateCounts, ThroughputVm,
};
pub use vm::ratelimits::{
    BlockedRow, KeyUsageRow, LimiterStatusVm, PolicyRow, RateLimitsVm, RateMinute,
};
pub use vm::redis::{
    KeyspaceVm, LatencyEventRow, PrefixRow, RedisNodeRow, RedisVm, SLOWLOG_ROWS, SlowRow,
};
pub use vm::schedules::{
    BULL_SCHEDULERS_PER_PAGE, BullSchedulerRow, BullSchedulersVm, NEXT_RUNS, SCHEDULES_PER_PAGE,
    ScheduleCounts, ScheduleFormVm, ScheduleRow, ScheduleStatus, SchedulesVm,
    bull_scheduler_action_path, schedule_action_path,
};
pub use vm::search::{SearchHitVm, SearchPageVm};
pub use vm::session::{LoginVm, PageCtx, UserVm};
pub use vm::users::{ROLES, SESSIONS_SHOWN, SessionRow, UserRow, UsersVm};
pub use vm::workers::{
    BullWorkerRow, JOBS_PER_ROW, QueueWorkersVm, RunningJobVm, WORKERS_PER_PAGE, WorkerCounts,
    WorkerRow, WorkerStateVm, WorkersVm, queue_workers_url, worker_action_path,
};
