//! What a readiness check found, per dependency: figures the hub carries
//! to every page's health line and `/health/ready` answers with.

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
    pub(crate) fn new(name: &'static str, state: CheckState, detail: impl Into<String>) -> Self {
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
