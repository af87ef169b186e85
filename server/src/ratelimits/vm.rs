//! The Rate limits page's view model from the rate-limit figures.

use app::vm::ratelimits::{
    BlockedRow, KeyUsageRow, LimiterStatusVm, PolicyRow, RateLimitsVm, RateMinute,
};
use coord::ratelimit::{MinuteCount, Policy, PolicyUsage};

use super::{RateLimitFigures, TOP_KEYS, rejected_this_minute};

/// The page; an empty one before the first reading.
pub fn page(figures: Option<&RateLimitFigures>) -> RateLimitsVm {
    let Some(figures) = figures else {
        return RateLimitsVm::default();
    };
    let status = &figures.status;
    // When not even the policy list could be read, that is the reason to
    // show; otherwise the limiter's own reason comes first.
    let reason = if figures.policies.is_empty() && figures.problem.is_some() {
        figures.problem.clone()
    } else {
        status.reason.clone().or_else(|| figures.problem.clone())
    };
    let mut vm = RateLimitsVm {
        status: LimiterStatusVm {
            backend: status.backend.to_owned(),
            fallback: status
                .fallback
                .map_or_else(|| "none".to_owned(), |m| m.as_str().to_owned()),
            degraded: status.degraded(),
            degraded_since: status.degraded_since,
            reason,
            fallback_decisions: status.fallback_decisions,
        },
        now: figures.now,
        ..RateLimitsVm::default()
    };
    let mut minutes: Vec<RateMinute> = Vec::new();
    for (policy, usage) in &figures.policies {
        add_minutes(&mut minutes, &usage.minutes);
        vm.policies.push(policy_row(policy, usage));
        let keys = if is_own(policy.name()) {
            &mut vm.own_keys
        } else {
            &mut vm.top_keys
        };
        keys.extend(usage.top.iter().map(|k| KeyUsageRow {
            policy: policy.name().to_owned(),
            key: k.key.as_str().to_owned(),
            count: k.count,
            limit: policy.limit(),
            capacity: policy.capacity(),
            percent: f64::from(k.count) * 100.0 / f64::from(policy.limit()),
            blocked_until: k.blocked_until,
        }));
        vm.blocked
            .extend(usage.blocked.iter().map(|(key, until)| BlockedRow {
                policy: policy.name().to_owned(),
                key: key.as_str().to_owned(),
                until: *until,
            }));
    }
    for keys in [&mut vm.top_keys, &mut vm.own_keys] {
        keys.sort_by(|a, b| {
            b.percent
                .total_cmp(&a.percent)
                .then_with(|| a.policy.cmp(&b.policy))
                .then_with(|| a.key.cmp(&b.key))
        });
        keys.truncate(TOP_KEYS);
    }
    vm.blocked
        .sort_by(|a, b| a.until.cmp(&b.until).then_with(|| a.key.cmp(&b.key)));
    vm.per_minute = minutes;
    vm
}

/// Sums one policy's minutes into the page's series (aligned by minute:
/// every series ends at its read's current minute).
fn add_minutes(total: &mut Vec<RateMinute>, series: &[MinuteCount]) {
    for m in series {
        match total.iter_mut().find(|t| t.minute == m.minute) {
            Some(t) => {
                t.allowed += m.allowed;
                t.rejected += m.rejected;
            }
            None => total.push(RateMinute {
                minute: m.minute,
                allowed: m.allowed,
                rejected: m.rejected,
            }),
        }
    }
    total.sort_by_key(|t| t.minute);
    let keep = coord::ratelimit::USAGE_MINUTES;
    if total.len() > keep {
        total.drain(..total.len() - keep);
    }
}

fn policy_row(policy: &Policy, usage: &PolicyUsage) -> PolicyRow {
    let this_minute = usage.minutes.last().copied().unwrap_or_default();
    PolicyRow {
        name: policy.name().to_owned(),
        limit: policy.limit(),
        burst: policy.burst(),
        window_ms: policy.window().as_millis() as i64,
        block: policy.block().map(|b| {
            format!(
                "{} rejections in {} → blocked {}",
                b.after,
                app::format_window(b.period.as_millis() as i64),
                app::format_window(b.block_for.as_millis() as i64)
            )
        }),
        active_keys: usage.active_keys,
        blocked_keys: usage.blocked_keys,
        allowed_this_minute: this_minute.allowed,
        rejected_this_minute: rejected_this_minute(usage),
        own: is_own(policy.name()),
    }
}

/// Whether a policy is the dashboard's own (its pages, buttons, API and
/// sign-in: `dashboard.*`) rather than a service's.
fn is_own(name: &str) -> bool {
    name.starts_with(super::OWN_POLICY_PREFIX)
}

/// The overview's rate-limits card: the services' policies only (the
/// dashboard's own are about its viewers, not the services), rejections in
/// the last full minute and keys blocked now.
pub fn glance(figures: &RateLimitFigures) -> app::RateLimitsGlance {
    let mut glance = app::RateLimitsGlance {
        degraded: figures.status.degraded_since.is_some(),
        ..app::RateLimitsGlance::default()
    };
    for (policy, usage) in &figures.policies {
        if is_own(policy.name()) {
            continue;
        }
        glance.policies += 1;
        glance.blocked_keys += usage.blocked_keys;
        // The minute before the current one: the current is still filling.
        glance.rejected_per_min += usage.minutes.iter().rev().nth(1).map_or(0, |m| m.rejected);
    }
    glance
}
