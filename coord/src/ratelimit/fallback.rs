//! Degraded mode: what a shared limiter does while Redis is unreachable.
//!
//! [`Failover`] wraps the shared backend. While it answers, every decision
//! is its. When a decision fails because the backend is unavailable, the
//! limiter switches to its [`FallbackMode`] at once (that request included),
//! records since when and why, and a background task pings the backend
//! every [`PROBE_EVERY`] until it answers again; requests never wait on a
//! dead backend after the first failure. Recovery switches back: the
//! per-instance logs are simply dropped from use (they only held the
//! outage's traffic).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;

use super::local::LocalLimiter;
use super::{
    Decision, FallbackMode, LimiterStatus, Policy, PolicyUsage, RateKey, RateLimitBackend,
};
use crate::error::Result;
use crate::time::now_ms;

/// How often a degraded limiter asks the backend whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A shared backend with a fallback for its outages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Failover {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    primary: Arc<dyn RateLimitBackend>,
    local: LocalLimiter,
    mode: FallbackMode,
    outage: Mutex<Option<Outage>>,
    /// Whether a probe task is running (at most one).
    probing: AtomicBool,
    fallback_decisions: AtomicU64,
}

#[derive(Debug, Clone)]
struct Outage {
    since: i64,
    reason: String,
}

impl Failover {
    /// Wraps `primary`, falling back to `mode` while it is unavailable.
    pub fn new(primary: Arc<dyn RateLimitBackend>, mode: FallbackMode) -> Self {
        Self {
            inner: Arc::new(Inner {
                primary,
                local: LocalLimiter::new(),
                mode,
                outage: Mutex::new(None),
                probing: AtomicBool::new(false),
                fallback_decisions: AtomicU64::new(0),
            }),
        }
    }

    fn outage(&self) -> Option<Outage> {
        self.inner
            .outage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches to the fallback (once per outage) and starts the probe.
    fn degrade(&self, reason: String) {
        {
            let mut outage = self.inner.outage.lock().unwrap_or_else(|p| p.into_inner());
            if outage.is_none() {
                tracing::warn!(
                    mode = %self.inner.mode,
                    "rate limiter backend unavailable, deciding with the fallback: {reason}"
                );
                *outage = Some(Outage {
                    since: now_ms(),
                    reason,
                });
            }
        }
        if !self.inner.probing.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(probe(weak));
        }
    }

    async fn decide_fallback(&self, policy: &Policy, key: &RateKey) -> Result<Decision> {
        self.inner
            .fallback_decisions
            .fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let capacity = policy.capacity();
        Ok(match self.inner.mode {
            FallbackMode::Local => self.inner.local.check(policy, key).await?,
            FallbackMode::Open => Decision {
                allowed: true,
                limit: capacity,
                remaining: capacity,
                reset_after: Duration::ZERO,
                retry_after: None,
                blocked_until: None,
                decided_at: now,
            },
            FallbackMode::Closed => Decision {
                allowed: false,
                limit: capacity,
                remaining: 0,
                reset_after: PROBE_EVERY,
                retry_after: Some(PROBE_EVERY),
                blocked_until: None,
                decided_at: now,
            },
        })
    }
}

/// Pings the backend until it answers, then ends the outage. Holds only a
/// weak reference, so dropping the limiter ends the task.
async fn probe(weak: Weak<Inner>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.primary.ping().await.is_ok() {
            let mut outage = inner.outage.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ended) = outage.take() {
                tracing::info!(
                    after_ms = now_ms() - ended.since,
                    "rate limiter backend is back, deciding with it again"
                );
            }
            inner.probing.store(false, Ordering::Release);
            return;
        }
    }
}

#[async_trait]
impl RateLimitBackend for Failover {
    async fn check(&self, policy: &Policy, key: &RateKey) -> Result<Decision> {
        if self.outage().is_some() {
            return self.decide_fallback(policy, key).await;
        }
        match self.inner.primary.check(policy, key).await {
            Err(e) if e.is_unavailable() => {
                self.degrade(e.to_string());
                self.decide_fallback(policy, key).await
            }
            other => other,
        }
    }

    /// Operator actions go to the shared backend only: during an outage they
    /// fail with the outage's error rather than pretending to have worked.
    async fn unblock(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        self.inner.local.unblock(policy, key).await?;
        self.inner.primary.unblock(policy, key).await
    }

    async fn reset(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        self.inner.local.reset(policy, key).await?;
        self.inner.primary.reset(policy, key).await
    }

    /// During an outage, the usage of this instance's fallback (the status
    /// says so), so the dashboard still shows who is being limited.
    async fn usage(&self, policy: &Policy, top: usize) -> Result<PolicyUsage> {
        if self.outage().is_some() {
            return self.inner.local.usage(policy, top).await;
        }
        match self.inner.primary.usage(policy, top).await {
            Err(e) if e.is_unavailable() => {
                self.degrade(e.to_string());
                self.inner.local.usage(policy, top).await
            }
            other => other,
        }
    }

    async fn register(&self, policies: &[Policy]) -> Result<()> {
        self.inner.local.register(policies).await?;
        self.inner.primary.register(policies).await
    }

    /// During an outage, the policies registered through this limiter.
    async fn registered(&self) -> Result<Vec<Policy>> {
        if self.outage().is_some() {
            return self.inner.local.registered().await;
        }
        match self.inner.primary.registered().await {
            Err(e) if e.is_unavailable() => {
                self.degrade(e.to_string());
                self.inner.local.registered().await
            }
            other => other,
        }
    }

    async fn ping(&self) -> Result<()> {
        self.inner.primary.ping().await
    }

    fn status(&self) -> LimiterStatus {
        let outage = self.outage();
        LimiterStatus {
            backend: self.inner.primary.status().backend,
            fallback: Some(self.inner.mode),
            degraded_since: outage.as_ref().map(|o| o.since),
            reason: outage.map(|o| o.reason),
            fallback_decisions: self.inner.fallback_decisions.load(Ordering::Relaxed),
        }
    }
}
