//! Whether each dependency can do its work, checked one by one: the queue
//! store (including whether its writes go through), the SQL database with
//! this version's migrations applied, the rate limiter's Redis and the
//! BullMQ Redis. `/health/ready` answers 503 while any of them is down, and
//! the Overview shows the same checks, so an operator and a load balancer
//! never disagree about what is broken.

use std::future::Future;
use std::time::{Duration, Instant};

use super::check::{Check, CheckState, Readiness};
use crate::http::error::one_line;
use crate::state::AppState;

/// How long one check may take before it counts as down: a probe that
/// hangs must not hang the readiness answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the Overview's copy of the checks is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Runs every check of this server's dependencies, concurrently, each
/// bounded by [`CHECK_TIMEOUT`], so the answer never takes longer than one
/// check may.
pub async fn check(state: &AppState) -> Readiness {
    let bullmq = async {
        match &state.bullmq {
            Some(bull) => Some(check_bullmq(bull).await),
            None => None,
        }
    };
    let ratelimits = async {
        match state.settings.redis_url.is_some() {
            true => Some(check_ratelimits(state).await),
            false => None,
        }
    };
    let (queues, database, bullmq, ratelimits) = tokio::join!(
        check_queues(state),
        check_database(state),
        bullmq,
        ratelimits
    );
    let mut checks = vec![queues, database];
    checks.extend(ratelimits);
    checks.extend(bullmq);
    Readiness { checks }
}

/// The rate limiter's Redis: degraded (decisions on the fallback) while
/// it is unreachable, but down when it answers wrongly for good — a
/// Redis Cluster reached with a plain URL, or commands crossing slots —
/// which no wait repairs.
async fn check_ratelimits(state: &AppState) -> Check {
    let limiter = &state.ratelimits.limiter;
    if let Ok(Err(err @ coord::CoordError::Misconfigured(_))) =
        tokio::time::timeout(CHECK_TIMEOUT, limiter.ping()).await
    {
        return Check::new("ratelimits", CheckState::Down, one_line(&err.to_string()));
    }
    let status = limiter.status();
    match status.degraded_since {
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
    }
}

/// Runs one probe within [`CHECK_TIMEOUT`]: its answer, or why there was
/// none, as the `detail` of a down check.
async fn timed<T, E: std::fmt::Display>(
    name: &'static str,
    probe: impl Future<Output = Result<T, E>>,
    why: impl FnOnce(&E) -> String,
) -> Result<T, Check> {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Check::new(name, CheckState::Down, why(&err))),
        Err(_) => Err(Check::new(
            name,
            CheckState::Down,
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
        )),
    }
}

async fn check_queues(state: &AppState) -> Check {
    let kind = state.queues.kind().as_str();
    let why = |err: &coord::CoordError| match err {
        coord::CoordError::WritesFailing { .. } | coord::CoordError::Misconfigured(_) => {
            format!("{kind}: {}", one_line(&err.to_string()))
        }
        _ => format!("{kind} is unreachable: {}", one_line(&err.to_string())),
    };
    match timed("queues", state.queues.health(), why).await {
        Ok(health) => Check {
            latency_ms: Some(health.latency.as_secs_f64() * 1000.0),
            memory_bytes: health.memory_bytes,
            ..Check::new("queues", CheckState::Ok, kind)
        },
        Err(down) => down,
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
    let why = |err: &crate::db::DbError| match err {
        crate::db::DbError::SchemaMissing(_) => format!("{kind}: {}", one_line(&err.to_string())),
        _ => format!("{kind} is unreachable: {}", one_line(&err.to_string())),
    };
    match timed("database", probe, why).await {
        Ok(latency) => Check {
            latency_ms: Some(latency.as_secs_f64() * 1000.0),
            ..Check::new("database", CheckState::Ok, kind)
        },
        Err(down) => down,
    }
}

/// The BullMQ Redis answers a `PING` (the monitor reads nothing while there
/// is no queue to watch, so its last read alone cannot tell), and the
/// monitor's last read worked.
async fn check_bullmq(bull: &crate::bullmq::BullMonitor) -> Check {
    let why = |err: &coord::CoordError| format!("unreachable: {}", one_line(&err.to_string()));
    let latency = match timed("bullmq", bull.client().ping(), why).await {
        Ok(latency) => latency,
        Err(down) => return down,
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
