//! Rate limiting in the server: the dashboard's own limits (applied to its
//! routes by `coord`'s tower layer) and the Rate limits page's figures.
//!
//! One backend serves both: in process on the embedded default, Redis
//! (behind a fallback for its outages) in scale-out. The dashboard's
//! limiter registers its policies there, and the page lists every policy
//! registered on the backend — the demo's, and on Redis those of every
//! service sharing the prefix — with usage read from the limiter's index.

pub mod routes;
pub mod settings;
pub mod vm;

pub use settings::{
    DEFAULT_ACTIONS, DEFAULT_API, DEFAULT_LOGIN, DEFAULT_PAGES, DashboardLimits, LimitSpec,
    format_window, parse_fallback,
};

use std::sync::Arc;
use std::time::Duration;

use coord::CoordError;
use coord::ratelimit::fallback::Failover;
use coord::ratelimit::local::LocalLimiter;
use coord::ratelimit::redis::RedisLimiter;
use coord::ratelimit::{LimiterStatus, Policy, PolicyUsage, RateLimitBackend, RateLimiter};
use coord::time::now_ms;

/// What the names of the dashboard's own policies start with; the rate
/// limits page shows their keys apart from the services'.
pub const OWN_POLICY_PREFIX: &str = "dashboard.";
/// Name of the policy limiting page views, live streams and assets per
/// client address.
pub const PAGES_POLICY: &str = "dashboard.pages";
/// Name of the policy limiting the dashboard's buttons (form posts).
pub const ACTIONS_POLICY: &str = "dashboard.actions";
/// Name of the policy limiting the JSON API.
pub const API_POLICY: &str = "dashboard.api";
/// Name of the policy limiting sign-in attempts (brute force).
pub const LOGIN_POLICY: &str = "dashboard.login";

/// Keys shown per policy in the page's top keys.
pub const TOP_KEYS: usize = 20;
/// Longest the page's figures wait on the backend per snapshot.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The deployment's rate limiting: the dashboard's limiter and the backend
/// every registered policy lives on. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// The dashboard's own limiter (its policies, registered on start).
    pub limiter: RateLimiter,
    /// The shared backend, for services embedded in this process (the
    /// demo) to build their own limiters on.
    pub backend: Arc<dyn RateLimitBackend>,
}

impl RateLimits {
    /// Builds the backend of the deployment (`redis` given: Redis under
    /// the prefix, behind the configured fallback; else in process) and the
    /// dashboard's limiter, and registers its policies.
    pub async fn start(
        redis: Option<(&str, &str)>,
        limits: &DashboardLimits,
    ) -> Result<Self, CoordError> {
        let backend: Arc<dyn RateLimitBackend> = match redis {
            Some((url, prefix)) => {
                let redis = RedisLimiter::connect(url, prefix).await?;
                Arc::new(Failover::new(Arc::new(redis), limits.fallback))
            }
            None => Arc::new(LocalLimiter::new()),
        };
        let policies = [
            limits.pages.policy(PAGES_POLICY)?,
            limits.actions.policy(ACTIONS_POLICY)?,
            limits.api.policy(API_POLICY)?,
            limits.login.policy(LOGIN_POLICY)?,
        ];
        let limiter = RateLimiter::new(backend.clone(), policies.into_iter().flatten())?;
        if let Err(e) = limiter.register().await {
            // Only the page's list suffers; limiting works without it.
            tracing::warn!("cannot register the dashboard's rate-limit policies: {e}");
        }
        Ok(Self { limiter, backend })
    }

    /// The policy a request is limited by: none for health checks and
    /// `/metrics` (load balancers and Prometheus poll them), the API's for `/api/…`, the actions' for
    /// other posts, the pages' for the rest; `None` when that one is off.
    pub fn policy_for(&self, method: &axum::http::Method, path: &str) -> Option<&'static str> {
        let name = if path == "/health" || path.starts_with("/health/") || path == "/metrics" {
            return None;
        } else if path == "/login" && method == axum::http::Method::POST {
            LOGIN_POLICY
        } else if path == "/api" || path.starts_with("/api/") {
            API_POLICY
        } else if method == axum::http::Method::POST {
            ACTIONS_POLICY
        } else {
            PAGES_POLICY
        };
        self.limiter.policy(name).map(|_| name)
    }

    /// Every known policy with its usage and the limiter's status. A
    /// failing read keeps what it could and says why in `problem`, rather
    /// than failing the page.
    pub async fn figures(&self) -> RateLimitFigures {
        let mut figures = RateLimitFigures {
            status: self.limiter.status(),
            now: now_ms(),
            policies: Vec::new(),
            problem: None,
        };
        let policies = match tokio::time::timeout(TIMEOUT, self.limiter.known_policies()).await {
            Ok(Ok(policies)) => policies,
            Ok(Err(e)) => {
                figures.problem = Some(crate::http::error::one_line(&e.to_string()));
                return figures;
            }
            Err(_) => {
                figures.problem = Some(format!("no answer within {TIMEOUT:?}"));
                return figures;
            }
        };
        let reads = futures_util::future::join_all(
            policies
                .iter()
                .map(|p| tokio::time::timeout(TIMEOUT, self.limiter.usage(p.name(), TOP_KEYS))),
        )
        .await;
        for (policy, read) in policies.into_iter().zip(reads) {
            let usage = match read {
                Ok(Ok(usage)) => usage,
                Ok(Err(e)) => {
                    figures.problem.get_or_insert_with(|| e.to_string());
                    PolicyUsage::default()
                }
                Err(_) => {
                    figures
                        .problem
                        .get_or_insert_with(|| format!("no answer within {TIMEOUT:?}"));
                    PolicyUsage::default()
                }
            };
            if usage.now > 0 {
                figures.now = usage.now;
            }
            figures.policies.push((policy, usage));
        }
        figures
    }
}

/// Rate limiting as of one reading: the limiter's status and every known
/// policy with its usage.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitFigures {
    /// The dashboard limiter's backend, fallback and degradation.
    pub status: LimiterStatus,
    /// Every known policy with its usage index (top keys, blocked keys,
    /// allowed/rejected per minute).
    pub policies: Vec<(Policy, PolicyUsage)>,
    /// Why some figures could not be read, if any.
    pub problem: Option<String>,
    /// The backend's clock at the reading (ms).
    pub now: i64,
}

impl RateLimitFigures {
    /// Whether `other` shows the same usage, the time of reading aside:
    /// only a change is worth a page update.
    pub fn same_usage(&self, other: &Self) -> bool {
        let timeless = |f: &Self| {
            let mut f = f.clone();
            f.now = 0;
            for (_, usage) in &mut f.policies {
                usage.now = 0;
            }
            f
        };
        timeless(self) == timeless(other)
    }
}

/// Rejections of a policy in its current minute: this only grows within
/// the minute, so "more than R this minute" is already more than R a
/// minute.
pub fn rejected_this_minute(usage: &PolicyUsage) -> u64 {
    usage.minutes.last().map_or(0, |m| m.rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coord::ratelimit::FallbackMode;

    #[test]
    fn limit_specs_parse_and_print() {
        for (text, spec) in [
            ("600/1m", LimitSpec::per(600, 60)),
            ("10/30s", LimitSpec::per(10, 30)),
            ("1000/1h", LimitSpec::per(1000, 3600)),
            (" 5 / m ", LimitSpec::per(5, 60)),
            ("off", LimitSpec::Off),
            ("OFF", LimitSpec::Off),
        ] {
            assert_eq!(text.parse::<LimitSpec>(), Ok(spec), "{text}");
        }
        assert_eq!(LimitSpec::per(600, 60).to_string(), "600/1m");
        assert_eq!(LimitSpec::per(10, 90).to_string(), "10/90s");
        assert_eq!(LimitSpec::Off.to_string(), "off");
        for bad in [
            "", "600", "x/1m", "600/1d", "600/", "0/1m", "5/25h", "600/1x", "-1/1m",
        ] {
            let err = bad.parse::<LimitSpec>().expect_err(bad);
            assert!(err.contains("expected e.g. 600/1m"), "{bad}: {err}");
        }
        assert!(
            "0/1m"
                .parse::<LimitSpec>()
                .unwrap_err()
                .contains("at least 1")
        );
    }

    #[test]
    fn fallback_modes_parse_with_a_reason() {
        assert_eq!(parse_fallback("closed"), Ok(FallbackMode::Closed));
        assert!(
            parse_fallback("maybe")
                .unwrap_err()
                .contains("local, open or closed")
        );
    }

    #[tokio::test]
    async fn routes_map_to_their_policy_and_off_means_unlimited() {
        let limits = DashboardLimits {
            actions: LimitSpec::Off,
            ..DashboardLimits::default()
        };
        let rl = RateLimits::start(None, &limits).await.unwrap();
        let get = axum::http::Method::GET;
        let post = axum::http::Method::POST;
        assert_eq!(rl.policy_for(&get, "/"), Some(PAGES_POLICY));
        assert_eq!(rl.policy_for(&get, "/events/overview"), Some(PAGES_POLICY));
        assert_eq!(
            rl.policy_for(&post, "/api/queues/q/pause"),
            Some(API_POLICY)
        );
        assert_eq!(rl.policy_for(&get, "/apis"), Some(PAGES_POLICY));
        assert_eq!(rl.policy_for(&get, "/health"), None);
        assert_eq!(rl.policy_for(&get, "/health/ready"), None);
        assert_eq!(rl.policy_for(&get, "/metrics"), None);
        assert_eq!(rl.policy_for(&post, "/queues/q/pause"), None, "off");
    }

    #[test]
    fn windows_print_in_their_shortest_form() {
        assert_eq!(format_window(60_000), "1m");
        assert_eq!(format_window(90_000), "90s");
        assert_eq!(format_window(7_200_000), "2h");
        assert_eq!(format_window(1_500), "1500ms");
    }
}
