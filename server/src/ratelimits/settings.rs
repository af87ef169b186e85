//! The limits the dashboard applies to its own routes, as the
//! configuration gives them (`--rate-limit-*`, `rate_limit_*` keys).

use std::fmt;
use std::str::FromStr;

use std::time::Duration;

use coord::CoordError;
use coord::ratelimit::{FallbackMode, Policy};
use serde::Deserialize;

/// Default for `--rate-limit-pages`: generous for a person clicking around
/// (a page view is the page, its stream, the stylesheet and the script).
pub const DEFAULT_PAGES: LimitSpec = LimitSpec::per(600, 60);
/// Default for `--rate-limit-actions`.
pub const DEFAULT_ACTIONS: LimitSpec = LimitSpec::per(120, 60);
/// Default for `--rate-limit-api`: programs poll and enqueue through it.
pub const DEFAULT_API: LimitSpec = LimitSpec::per(6000, 60);
/// Default for `--rate-limit-login`: plenty for a person mistyping, a wall
/// for a password guesser (600 guesses an hour per address at most).
pub const DEFAULT_LOGIN: LimitSpec = LimitSpec::per(10, 60);

/// A limit as configured: `<requests>/<window>` (`600/1m`, `10/30s`,
/// `1000/1h`), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSpec {
    /// No limit on these routes.
    Off,
    /// At most `requests` per client in any `window`.
    Limit {
        /// Requests allowed per window.
        requests: u32,
        /// The sliding window.
        window: Duration,
    },
}

impl LimitSpec {
    /// `requests` per `secs` seconds.
    pub const fn per(requests: u32, secs: u64) -> Self {
        LimitSpec::Limit {
            requests,
            window: Duration::from_secs(secs),
        }
    }

    /// The policy named `name`, unless off.
    pub(crate) fn policy(self, name: &str) -> Result<Option<Policy>, CoordError> {
        match self {
            LimitSpec::Off => Ok(None),
            LimitSpec::Limit { requests, window } => Ok(Some(Policy::new(name, requests, window)?)),
        }
    }
}

impl fmt::Display for LimitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSpec::Off => f.write_str("off"),
            LimitSpec::Limit { requests, window } => {
                write!(f, "{requests}/{}", format_window(window.as_millis() as i64))
            }
        }
    }
}

impl FromStr for LimitSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(LimitSpec::Off);
        }
        let bad = |why: &str| format!("{text:?} {why} (expected e.g. 600/1m, 10/30s or off)");
        let (requests, window) = text
            .split_once('/')
            .ok_or_else(|| bad("is not <requests>/<window>"))?;
        let requests: u32 = requests
            .trim()
            .parse()
            .map_err(|_| bad("does not start with a number of requests"))?;
        let window = window.trim();
        let split = window
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(window.len());
        let (amount, unit) = window.split_at(split);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount
                .parse()
                .map_err(|_| bad("has an unreadable window"))?
        };
        let secs = match unit {
            "s" => amount,
            "m" => amount * 60,
            "h" => amount * 3600,
            _ => return Err(bad("has a window without a unit s, m or h")),
        };
        let spec = LimitSpec::per(requests, secs);
        // The policy's own checks (limit ≥ 1, window 1 s – 24 h).
        spec.policy("check").map_err(|e| match e {
            CoordError::InvalidPolicy { reason, .. } => bad(&format!("is invalid: {reason}")),
            other => bad(&other.to_string()),
        })?;
        Ok(spec)
    }
}

impl<'de> Deserialize<'de> for LimitSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses `--rate-limit-fallback` for clap and the config file.
pub fn parse_fallback(text: &str) -> Result<FallbackMode, String> {
    text.parse::<FallbackMode>().map_err(|e| match e {
        CoordError::InvalidOptions(reason) => reason,
        other => other.to_string(),
    })
}

/// The limits the dashboard applies to its own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardLimits {
    /// Pages, live streams and assets, per client address.
    pub pages: LimitSpec,
    /// Form posts (the buttons), per client address.
    pub actions: LimitSpec,
    /// The JSON API, per client address.
    pub api: LimitSpec,
    /// What to do while Redis is unreachable (scale-out only).
    pub fallback: FallbackMode,
    /// Sign-in attempts, per client address.
    pub login: LimitSpec,
}

impl Default for DashboardLimits {
    fn default() -> Self {
        Self {
            pages: DEFAULT_PAGES,
            actions: DEFAULT_ACTIONS,
            api: DEFAULT_API,
            fallback: FallbackMode::Local,
            login: DEFAULT_LOGIN,
        }
    }
}

/// `60000` → `1m`, `90000` → `90s`, `3600000` → `1h`: the shortest exact
/// form, as limits are written in the configuration (the pages write
/// windows for reading, with [`app::format_window`]).
pub fn format_window(ms: i64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
