//! In-process backend: the embedded default, and the per-instance limit a
//! service falls back to. One mutex-guarded map of sliding logs; decisions
//! never await, so the lock is held for microseconds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Decision, KeyUsage, LimiterStatus, Policy, PolicyUsage, RateKey, RateLimitBackend,
    USAGE_MINUTES, minute_series, ms,
};
use crate::error::Result;
use crate::time::now_ms;

/// How often a decision also sweeps idle keys out of the map, so memory
/// tracks the keys active within their window rather than every key ever
/// seen, while a busy limiter does not rescan the map on every request.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Rate limiting within one process. Instances do not share limits; use
/// [`super::redis::RedisLimiter`] for that.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<(String, RateKey), Entry>,
    last_sweep: i64,
    /// Per policy: (minute, allowed, rejected) for the last hour, oldest
    /// first.
    minutes: HashMap<String, VecDeque<(i64, u64, u64)>>,
    /// Definitions published with `register`.
    registered: HashMap<String, Policy>,
}

impl State {
    /// Counts one decision in its policy's current minute.
    fn count(&mut self, policy: &str, now: i64, allowed: bool) {
        let minute = now.div_euclid(60_000);
        let series = match self.minutes.get_mut(policy) {
            Some(series) => series,
            None => self.minutes.entry(policy.to_owned()).or_default(),
        };
        if series.back().is_none_or(|&(m, _, _)| m != minute) {
            series.push_back((minute, 0, 0));
            while series.len() > USAGE_MINUTES + 1 {
                series.pop_front();
            }
        }
        if let Some(last) = series.back_mut() {
            if allowed {
                last.1 += 1;
            } else {
                last.2 += 1;
            }
        }
    }
}

/// One `(policy, key)`: admitted timestamps, recent rejections, block end.
#[derive(Debug, Default)]
struct Entry {
    log: VecDeque<i64>,
    rejections: VecDeque<i64>,
    blocked_until: Option<i64>,
    /// When this entry holds nothing worth keeping any more.
    idle_at: i64,
}

impl LocalLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `(policy, key)` pairs currently held, for tests and
    /// metrics: after a sweep, only keys active within their window (or
    /// blocked) remain.
    pub fn tracked_keys(&self) -> usize {
        self.lock().entries.len()
    }

    /// Drops every entry that has been idle for its whole window (and block
    /// period). Runs on its own at most once per second during checks;
    /// public so that tests and idle services can force it.
    pub fn sweep(&self) {
        let now = now_ms();
        let mut state = self.lock();
        state.last_sweep = now;
        state.entries.retain(|_, e| e.idle_at > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an entry half-updated
        // in a way that breaks the invariant worse than losing it would.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides at `now`, or at the clock read under the lock when `None`:
    /// reading it before locking would let two threads record their
    /// decisions out of time order (never admitting too many, but possibly
    /// rejecting one that an exact log would admit).
    fn decide(&self, policy: &Policy, key: &RateKey, now: Option<i64>) -> Decision {
        let mut state = self.lock();
        let now = now.unwrap_or_else(now_ms);
        let decision = Self::decide_locked(&mut state, policy, key, now);
        state.count(policy.name(), now, decision.allowed);
        decision
    }

    fn decide_locked(state: &mut State, policy: &Policy, key: &RateKey, now: i64) -> Decision {
        if now - state.last_sweep >= SWEEP_EVERY.as_millis() as i64 {
            state.last_sweep = now;
            state.entries.retain(|_, e| e.idle_at > now);
        }
        let entry = state
            .entries
            .entry((policy.name().to_owned(), key.clone()))
            .or_default();
        let window = policy.window_ms();
        let capacity = policy.capacity();
        while entry.log.front().is_some_and(|&t| t <= now - window) {
            entry.log.pop_front();
        }
        let reset_after = |log: &VecDeque<i64>| log.front().map_or(0, |&t| t + window - now);

        if let Some(until) = entry.blocked_until {
            if until > now {
                return Decision {
                    allowed: false,
                    limit: capacity,
                    remaining: capacity.saturating_sub(entry.log.len() as u32),
                    reset_after: ms(reset_after(&entry.log)),
                    retry_after: Some(ms(until - now)),
                    blocked_until: Some(until),
                    decided_at: now,
                };
            }
            entry.blocked_until = None;
        }

        if (entry.log.len() as u32) < capacity {
            entry.log.push_back(now);
            entry.idle_at = entry.idle_at.max(now + window);
            return Decision {
                allowed: true,
                limit: capacity,
                remaining: capacity - entry.log.len() as u32,
                reset_after: ms(reset_after(&entry.log)),
                retry_after: None,
                blocked_until: None,
                decided_at: now,
            };
        }

        // Full: the next slot frees when the oldest admission leaves.
        let free_in = reset_after(&entry.log).max(1);
        let mut decision = Decision {
            allowed: false,
            limit: capacity,
            remaining: 0,
            reset_after: ms(free_in),
            retry_after: Some(ms(free_in)),
            blocked_until: None,
            decided_at: now,
        };
        if let Some(rule) = policy.block() {
            let period = rule.period.as_millis() as i64;
            while entry.rejections.front().is_some_and(|&t| t <= now - period) {
                entry.rejections.pop_front();
            }
            entry.rejections.push_back(now);
            entry.idle_at = entry.idle_at.max(now + period);
            if entry.rejections.len() as u32 >= rule.after {
                let until = now + rule.block_for.as_millis() as i64;
                entry.rejections.clear();
                entry.blocked_until = Some(until);
                entry.idle_at = entry.idle_at.max(until);
                decision.retry_after = Some(ms(until - now));
                decision.blocked_until = Some(until);
            }
        }
        decision
    }
}

#[async_trait]
impl RateLimitBackend for LocalLimiter {
    async fn check(&self, policy: &Policy, key: &RateKey) -> Result<Decision> {
        Ok(self.decide(policy, key, None))
    }

    async fn unblock(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        let mut state = self.lock();
        if let Some(entry) = state
            .entries
            .get_mut(&(policy.name().to_owned(), key.clone()))
        {
            entry.blocked_until = None;
            entry.rejections.clear();
        }
        Ok(())
    }

    async fn reset(&self, policy: &Policy, key: &RateKey) -> Result<()> {
        self.lock()
            .entries
            .remove(&(policy.name().to_owned(), key.clone()));
        Ok(())
    }

    async fn usage(&self, policy: &Policy, top: usize) -> Result<PolicyUsage> {
        let now = now_ms();
        let since = now - policy.window_ms();
        let state = self.lock();
        let mut usage = PolicyUsage {
            now,
            ..PolicyUsage::default()
        };
        // One pass over this process's keys: the map only holds keys active
        // within their window (swept every second), not a keyspace.
        for ((name, key), entry) in &state.entries {
            if name != policy.name() {
                continue;
            }
            let count = entry.log.iter().filter(|&&t| t > since).count() as u32;
            let blocked_until = entry.blocked_until.filter(|&until| until > now);
            if count > 0 {
                usage.active_keys += 1;
                usage.top.push(KeyUsage {
                    key: key.clone(),
                    count,
                    blocked_until,
                });
            }
            if let Some(until) = blocked_until {
                usage.blocked_keys += 1;
                usage.blocked.push((key.clone(), until));
            }
        }
        usage.rank(top);
        let series = state.minutes.get(policy.name());
        usage.minutes = minute_series(now, |m| {
            series
                .and_then(|s| s.iter().find(|&&(minute, _, _)| minute == m))
                .map_or((0, 0), |&(_, a, r)| (a, r))
        });
        Ok(usage)
    }

    async fn register(&self, policies: &[Policy]) -> Result<()> {
        let mut state = self.lock();
        for policy in policies {
            state
                .registered
                .insert(policy.name().to_owned(), policy.clone());
        }
        Ok(())
    }

    async fn registered(&self) -> Result<Vec<Policy>> {
        let mut all: Vec<Policy> = self.lock().registered.values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(all)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn status(&self) -> LimiterStatus {
        LimiterStatus::healthy("in-process")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_log_is_exact_at_the_boundary() {
        let limiter = LocalLimiter::new();
        let policy = Policy::new("p", 2, Duration::from_secs(1)).unwrap();
        let key = RateKey::new("k").unwrap();
        assert!(limiter.decide(&policy, &key, Some(1_000)).allowed);
        assert!(limiter.decide(&policy, &key, Some(1_500)).allowed);
        let full = limiter.decide(&policy, &key, Some(1_999));
        assert!(!full.allowed);
        assert_eq!(full.retry_after, Some(Duration::from_millis(1)));
        // At 2000 the request of 1000 has left [1001, 2000].
        assert!(limiter.decide(&policy, &key, Some(2_000)).allowed);
        assert!(!limiter.decide(&policy, &key, Some(2_499)).allowed);
        assert!(limiter.decide(&policy, &key, Some(2_500)).allowed);
    }

    #[test]
    fn idle_entries_are_swept() {
        let limiter = LocalLimiter::new();
        let policy = Policy::new("p", 2, Duration::from_secs(1)).unwrap();
        let a = RateKey::new("a").unwrap();
        let b = RateKey::new("b").unwrap();
        limiter.decide(&policy, &a, Some(10_000));
        limiter.decide(&policy, &b, Some(10_500));
        assert_eq!(limiter.tracked_keys(), 2);
        // The next decision a second later sweeps `a` (idle since 11_000).
        limiter.decide(&policy, &b, Some(11_200));
        assert_eq!(limiter.tracked_keys(), 1);
    }
}
