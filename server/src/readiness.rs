//! Whether each dependency can do its work, checked one by one: the queue
//! store (including whether its writes go through), the SQL database with
//! this version's migrations applied, the rate limiter's Redis and the
//! BullMQ Redis. `/health/ready` answers 503 while any of them is down, and
//! the Overview shows the same checks, so an operator and a load balancer
//! never disagree about what is broken.

use std::time::{Duration, Instant};

use crate::error::one_line;
use crate::startup::AppState;

/// How long one check may take before it counts as down: a probe that
/// hangs must not hang the readiness answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the Overview's copy of the checks is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// How one dependency is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Works.
    Ok,
    /// Works in a reduced way (the rate limiter on its fallback): shown,
    /// but no reason to hold traffic back.
    Degraded,
    /// Cannot do its work: readiness fails.
    Down,
}

impl CheckState {
    /// Name used in JSON and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Ok => "ok",
            CheckState::Degraded => "degraded",
            CheckState::Down => "down",
        }
    }
}

/// One dependency's check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Which dependency: `queues`, `database`, `ratelimits`, `bullmq`.
    pub name: &'static str,
    /// Its state.
    pub state: CheckState,
    /// What it is (`embedded`, `sqlite`…) and, unless ok, why not.
    pub detail: String,
    /// Round trip of the check, when it answered.
    pub latency_ms: Option<f64>,
    /// Memory the queue store reports, where it tells (Redis).
    pub memory_bytes: Option<u64>,
}

impl Check {
    fn new(name: &'static str, state: CheckState, detail: impl Into<String>) -> Self {
        Self {
            name,
            state,
            detail: detail.into(),
            latency_ms: None,
            memory_bytes: None,
        }
    }
}

/// Every dependency's check, in a fixed order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readiness {
    /// The checks, queue store first.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// True when nothing is down.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.state != CheckState::Down)
    }

    /// The checks that are not ok, as one line per dependency.
    pub fn problems(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.state != CheckState::Ok)
            .map(|c| format!("{} {}: {}", c.name, c.state.as_str(), c.detail))
            .collect()
    }
}

/// Runs every check of this server's dependencies, concurrently, each
/// bounded by [`CHECK_TIMEOUT`].
pub async fn check(state: &AppState) -> Readiness {
    let (queues, database) = tokio::join!(check_queues(state), check_database(state));
    let mut checks = vec![queues, database];
    if state.settings.redis_url.is_some() {
        let status = state.ratelimits.limiter.status();
        checks.push(match status.degraded_since {
            None => Check::new("ratelimits", CheckState::Ok, status.backend),
            Some(_) => Check::new(
                "ratelimits",
                CheckState::Degraded,
                format!(
                    "Redis unreachable ({}); deciding with the {} fallback",
                    one_line(status.reason.as_deref().unwrap_or("no reason given")),
                    status.fallback.map_or("no", |m| m.as_str())
                ),
            ),
        });
    }
    if let Some(bull) = &state.bullmq {
        checks.push(check_bullmq(bull).await);
    }
    Readiness { checks }
}

/// The BullMQ Redis answers a `PING`, and the monitor's last read worked.
async fn check_bullmq(bull: &crate::bullmq::BullMonitor) -> Check {
    let latency = match tokio::time::timeout(CHECK_TIMEOUT, bull.client().ping()).await {
        Ok(Ok(latency)) => latency,
        Ok(Err(err)) => {
            return Check::new(
                "bullmq",
                CheckState::Down,
                format!("unreachable: {}", one_line(&err.to_string())),
            );
        }
        Err(_) => {
            return Check::new(
                "bullmq",
                CheckState::Down,
                format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            );
        }
    };
    let snapshot = bull.current();
    match &snapshot.error {
        None => Check {
            latency_ms: Some(latency.as_secs_f64() * 1000.0),
            ..Check::new(
                "bullmq",
                CheckState::Ok,
                format!("{} queues", snapshot.queues.len()),
            )
        },
        Some(err) => Check::new("bullmq", CheckState::Down, one_line(err)),
    }
}

async fn check_queues(state: &AppState) -> Check {
    let kind = state.queues.kind().as_str();
    match tokio::time::timeout(CHECK_TIMEOUT, state.queues.health()).await {
        Ok(Ok(health)) => Check {
            latency_ms: Some(health.latency.as_secs_f64() * 1000.0),
            memory_bytes: health.memory_bytes,
            ..Check::new("queues", CheckState::Ok, kind)
        },
        Ok(Err(err @ coord::CoordError::WritesFailing { .. })) => Check::new(
            "queues",
            CheckState::Down,
            format!("{kind}: {}", one_line(&err.to_string())),
        ),
        Ok(Err(err)) => Check::new(
            "queues",
            CheckState::Down,
            format!("{kind} is unreachable: {}", one_line(&err.to_string())),
        ),
        Err(_) => Check::new(
            "queues",
            CheckState::Down,
            format!("{kind}: no answer within {} s", CHECK_TIMEOUT.as_secs()),
        ),
    }
}

async fn check_database(state: &AppState) -> Check {
    let kind = state.db.kind();
    let started = Instant::now();
    let probe = async {
        state.db.ping().await?;
        let latency = started.elapsed();
        state.db.check_schema().await?;
        Ok::<_, crate::db::DbError>(latency)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(latency)) => Check {
            latency_ms: Some(latency.as_secs_f64() * 1000.0),
            ..Check::new("database", CheckState::Ok, kind)
        },
        Ok(Err(err @ crate::db::DbError::SchemaMissing(_))) => Check::new(
            "database",
            CheckState::Down,
            format!("{kind}: {}", one_line(&err.to_string())),
        ),
        Ok(Err(err)) => Check::new(
            "database",
            CheckState::Down,
            format!("{kind} is unreachable: {}", one_line(&err.to_string())),
        ),
        Err(_) => Check::new(
            "database",
            CheckState::Down,
            format!("{kind}: no answer within {} s", CHECK_TIMEOUT.as_secs()),
        ),
    }
}

/// Keeps the hub's copy of the checks current for the Overview, every
/// [`REFRESH_EVERY`], until the hub closes.
pub fn start(state: AppState) {
    let mut closed = state.hub.closed();
    tokio::spawn(async move {
        loop {
            let readiness = check(&state).await;
            state.hub.set_readiness(readiness);
            tokio::select! {
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
                _ = closed.changed() => return,
            }
        }
    });
}
