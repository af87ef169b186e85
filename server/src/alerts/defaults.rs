//! The rules Switchyard ships with, and the checks every rule must pass
//! wherever it comes from (defaults, the config file, the UI, the API), so
//! the evaluator never has to second-guess what it is given.
//!
//! There is no shipped `channel_silent` rule: a channel is only expected to
//! carry traffic when someone names it, so such a rule needs a channel name
//! that only an operator can supply (a `*` target is rejected). Nor is there
//! a `wait_p95` or `run_p95` rule: how long a job may wait or run depends on
//! the job (a thumbnail, a nightly export), so no threshold fits every queue.
//! Nor are there Redis rules: whether Redis is one the dashboard is given
//! (and with which `maxmemory` and replicas) depends on the deployment, and
//! a rule on a Redis that is not configured would watch nothing.

use super::model::{ANY_SUBJECT, Rule, RuleKind, Severity};

/// Longest rule name: long enough to be descriptive, short enough for
/// labels, URLs and table columns.
const MAX_NAME: usize = 64;
/// Longest target (queue, instance, policy or channel name).
const MAX_TARGET: usize = 200;
/// Longest window a failure rate can use: the live hub keeps per-minute
/// throughput for the last hour, so a longer window would silently be
/// shorter.
const MAX_RATE_WINDOW: u64 = 3_600;
/// Longest window any rule can carry (a week of channel silence).
const MAX_WINDOW: u64 = 604_800;
/// Longest `for`: beyond a day, an alert that never fires is more likely a
/// mistake than a wish.
const MAX_FOR: u64 = 86_400;

/// The rules seeded into a fresh database (existing ones, possibly edited,
/// are kept), so a new dashboard alerts on the usual trouble without any
/// setup. `for` durations ride out one bad sample; every target is `*`.
pub fn default_rules() -> Vec<Rule> {
    let rule = |name: &str, kind, threshold, window_secs, for_secs, severity| Rule {
        name: name.to_owned(),
        kind,
        target: ANY_SUBJECT.to_owned(),
        threshold,
        window_secs,
        for_secs,
        severity,
        enabled: true,
    };
    use RuleKind::*;
    use Severity::*;
    // A window of 0 marks kinds that do not use one.
    vec![
        rule("failure-rate", FailureRate, 5.0, 300, 120, Warning),
        rule("queue-backlog", QueueBacklog, 1000.0, 0, 300, Warning),
        rule("no-active-worker", NoActiveWorker, 0.0, 0, 120, Warning),
        rule("job-latency", JobLatency, 600.0, 0, 120, Warning),
        // Stale already means three missed heartbeats: no need to wait more.
        rule("instance-stale", InstanceStale, 0.0, 0, 0, Warning),
        rule("instance-drifted", InstanceDrifted, 5.0, 0, 120, Warning),
        rule(
            "backend-unreachable",
            BackendUnreachable,
            0.0,
            0,
            30,
            Critical,
        ),
        rule("backend-slow", BackendSlow, 500.0, 0, 120, Warning),
        rule(
            "ratelimit-rejections",
            RateLimitRejections,
            100.0,
            0,
            120,
            Warning,
        ),
    ]
}

/// Checks a rule before it is stored, returning the first problem as one
/// line fit for a form or an API error, so bad rules are refused at the
/// door instead of misbehaving at evaluation.
pub fn validate(rule: &Rule) -> Result<(), String> {
    let name_len = rule.name.chars().count();
    if name_len == 0
        || name_len > MAX_NAME
        || !rule
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "rule name {:?} must be 1–{MAX_NAME} characters of a-z, 0-9, '_', '.' and '-'",
            rule.name
        ));
    }
    let target_len = rule.target.chars().count();
    if target_len == 0 || target_len > MAX_TARGET {
        return Err(format!(
            "target must be 1–{MAX_TARGET} characters (a name, or {ANY_SUBJECT:?} for all), got {target_len}"
        ));
    }
    if rule.target.chars().any(char::is_control) {
        return Err(format!(
            "target {:?} must not contain control characters",
            rule.target
        ));
    }
    if !rule.threshold.is_finite() || rule.threshold < 0.0 {
        return Err(format!(
            "threshold must be a finite number >= 0, got {}",
            rule.threshold
        ));
    }
    if matches!(
        rule.kind,
        RuleKind::FailureRate | RuleKind::RedisMemory | RuleKind::CacheHitRatio
    ) && rule.threshold > 100.0
    {
        return Err(format!(
            "a {} threshold is a percentage (0–100), got {}",
            rule.kind, rule.threshold
        ));
    }
    match rule.kind {
        RuleKind::FailureRate | RuleKind::CacheHitRatio => {
            if !(60..=MAX_RATE_WINDOW).contains(&rule.window_secs)
                || !rule.window_secs.is_multiple_of(60)
            {
                return Err(format!(
                    "a {} window must be a whole number of minutes from 60 to {MAX_RATE_WINDOW} s, got {} s",
                    rule.kind, rule.window_secs
                ));
            }
        }
        RuleKind::ChannelSilent => {
            if !(60..=MAX_WINDOW).contains(&rule.window_secs) {
                return Err(format!(
                    "a channel_silent window must be 60 to {MAX_WINDOW} s, got {} s",
                    rule.window_secs
                ));
            }
        }
        _ => {
            if rule.window_secs > MAX_WINDOW {
                return Err(format!(
                    "window must be at most {MAX_WINDOW} s, got {} s",
                    rule.window_secs
                ));
            }
        }
    }
    if rule.for_secs > MAX_FOR {
        return Err(format!(
            "for must be at most {MAX_FOR} s, got {} s",
            rule.for_secs
        ));
    }
    if rule.kind == RuleKind::ChannelSilent && rule.target == ANY_SUBJECT {
        return Err(
            "a channel_silent rule needs a channel name as its target, not \"*\"".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(kind: RuleKind) -> Rule {
        Rule {
            name: "r".to_owned(),
            kind,
            // A channel rule needs a name; the others watch everything.
            target: if kind == RuleKind::ChannelSilent {
                "settings"
            } else {
                "*"
            }
            .to_owned(),
            threshold: 1.0,
            window_secs: 300,
            for_secs: 60,
            severity: Severity::Warning,
            enabled: true,
        }
    }

    /// The error for `rule` after `change`, or a panic if it was accepted.
    fn reject(kind: RuleKind, change: impl FnOnce(&mut Rule)) -> String {
        let mut rule = base(kind);
        assert_eq!(validate(&rule), Ok(()));
        change(&mut rule);
        let err = validate(&rule).expect_err("should be rejected");
        assert!(!err.contains('\n'), "{err}");
        err
    }

    #[test]
    fn defaults_are_valid_unique_and_as_documented() {
        let rules = default_rules();
        for rule in &rules {
            assert_eq!(validate(rule), Ok(()), "{}", rule.name);
            assert_eq!(rule.target, "*");
            assert!(rule.enabled);
        }
        let summary: Vec<(&str, RuleKind, f64, u64, u64, Severity)> = rules
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.kind,
                    r.threshold,
                    r.window_secs,
                    r.for_secs,
                    r.severity,
                )
            })
            .collect();
        use RuleKind::*;
        use Severity::*;
        assert_eq!(
            summary,
            [
                ("failure-rate", FailureRate, 5.0, 300, 120, Warning),
                ("queue-backlog", QueueBacklog, 1000.0, 0, 300, Warning),
                ("no-active-worker", NoActiveWorker, 0.0, 0, 120, Warning),
                ("job-latency", JobLatency, 600.0, 0, 120, Warning),
                ("instance-stale", InstanceStale, 0.0, 0, 0, Warning),
                ("instance-drifted", InstanceDrifted, 5.0, 0, 120, Warning),
                (
                    "backend-unreachable",
                    BackendUnreachable,
                    0.0,
                    0,
                    30,
                    Critical
                ),
                ("backend-slow", BackendSlow, 500.0, 0, 120, Warning),
                (
                    "ratelimit-rejections",
                    RateLimitRejections,
                    100.0,
                    0,
                    120,
                    Warning
                ),
            ]
        );
        assert!(!rules.iter().any(|r| r.kind == ChannelSilent));
    }

    #[test]
    fn names() {
        use RuleKind::QueueBacklog as K;
        assert!(reject(K, |r| r.name.clear()).contains("1–64"));
        assert!(reject(K, |r| r.name = "a".repeat(65)).contains("1–64"));
        assert!(reject(K, |r| r.name = "Upper".to_owned()).contains("\"Upper\""));
        assert!(reject(K, |r| r.name = "with space".to_owned()).contains("rule name"));
        let mut ok = base(K);
        ok.name = format!("{}_.-9", "a".repeat(60));
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn targets() {
        use RuleKind::QueueBacklog as K;
        assert!(reject(K, |r| r.target.clear()).starts_with("target must be 1–200"));
        assert!(reject(K, |r| r.target = "q".repeat(201)).contains("got 201"));
        assert_eq!(
            reject(K, |r| r.target = "a\nb".to_owned()),
            "target \"a\\nb\" must not contain control characters"
        );
        let mut ok = base(K);
        ok.target = "q".repeat(200);
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn thresholds() {
        use RuleKind::{FailureRate, QueueBacklog};
        assert_eq!(
            reject(QueueBacklog, |r| r.threshold = -1.0),
            "threshold must be a finite number >= 0, got -1"
        );
        assert!(reject(QueueBacklog, |r| r.threshold = f64::NAN).contains("NaN"));
        assert!(reject(QueueBacklog, |r| r.threshold = f64::INFINITY).contains("inf"));
        assert_eq!(
            reject(FailureRate, |r| r.threshold = 100.5),
            "a failure_rate threshold is a percentage (0–100), got 100.5"
        );
        assert_eq!(
            reject(RuleKind::RedisMemory, |r| r.threshold = 101.0),
            "a redis_memory threshold is a percentage (0–100), got 101"
        );
        let mut ok = base(FailureRate);
        ok.threshold = 100.0;
        assert_eq!(validate(&ok), Ok(()));
        let mut ok = base(QueueBacklog);
        ok.threshold = 1e6;
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn windows() {
        use RuleKind::{ChannelSilent, FailureRate, QueueBacklog};
        assert!(reject(FailureRate, |r| r.window_secs = 59).contains("got 59 s"));
        assert!(reject(FailureRate, |r| r.window_secs = 90).contains("whole number of minutes"));
        assert!(reject(FailureRate, |r| r.window_secs = 3_660).contains("got 3660 s"));
        assert!(reject(ChannelSilent, |r| r.window_secs = 30).contains("channel_silent window"));
        assert!(reject(ChannelSilent, |r| r.window_secs = 604_801).contains("got 604801 s"));
        assert_eq!(
            reject(QueueBacklog, |r| r.window_secs = 604_801),
            "window must be at most 604800 s, got 604801 s"
        );
        for (kind, window) in [
            (FailureRate, 60),
            (FailureRate, 3_600),
            (ChannelSilent, 90),
            (ChannelSilent, 604_800),
            (QueueBacklog, 0),
            (QueueBacklog, 604_800),
        ] {
            let mut ok = base(kind);
            ok.target = "settings".to_owned();
            ok.window_secs = window;
            assert_eq!(validate(&ok), Ok(()), "{kind} {window}");
        }
    }

    #[test]
    fn for_and_channel_target() {
        assert_eq!(
            reject(RuleKind::JobLatency, |r| r.for_secs = 86_401),
            "for must be at most 86400 s, got 86401 s"
        );
        let mut ok = base(RuleKind::JobLatency);
        ok.for_secs = 86_400;
        assert_eq!(validate(&ok), Ok(()));

        assert_eq!(
            reject(RuleKind::ChannelSilent, |r| r.target = "*".to_owned()),
            "a channel_silent rule needs a channel name as its target, not \"*\""
        );
    }
}
