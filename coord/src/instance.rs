//! Instance identity: which process of a fleet did something.
//!
//! Every notification carries the id of the instance that published it, so
//! a subscriber can skip its own messages (it already applied the change)
//! and a dashboard can tell which process is noisy, stale or drifted. The id
//! therefore has to be stable for the life of a process, distinct between
//! processes, and safe to show in logs, keys and JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};

/// Longest accepted instance id, in characters: long enough for a
/// Kubernetes pod name plus a suffix, short enough for a dashboard column.
pub const MAX_INSTANCE_ID_LEN: usize = 128;

/// The name of one running process of a service.
///
/// Validated where it enters (configuration, a decoded envelope), so that
/// everything downstream can print or compare it without re-checking.
/// Compared exactly (case-sensitive): ids are configured or generated
/// strings, not host names to be resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    /// Checks a configured or received name: 1–128 printable characters,
    /// no whitespace or control characters (they would garble logs and
    /// `CLIENT LIST`-style listings).
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match name_problem(&name) {
            Some(reason) => Err(CoordError::InvalidInstance { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The id from configuration, or `<host>-<pid>` when none is set, so a
    /// fleet works without configuring anything while two processes on one
    /// host still differ. An empty or blank configured value counts as
    /// unset (an empty environment variable usually means "not set"); any
    /// other invalid value is an error rather than silently replaced, since
    /// an operator who set a name expects to see it.
    pub fn from_config(configured: Option<&str>) -> Result<Self> {
        match configured {
            Some(name) if !name.trim().is_empty() => Self::new(name),
            _ => Ok(Self::default_for_process()),
        }
    }

    /// `<host>-<pid>`, with the host name cleaned so the result is always
    /// valid (characters that are not allowed become `-`, the host part is
    /// shortened to fit).
    pub fn default_for_process() -> Self {
        let pid = std::process::id().to_string();
        let host = host_label(MAX_INSTANCE_ID_LEN - pid.len() - 1);
        Self(format!("{host}-{pid}"))
    }

    /// The id as text, for keys, logs and comparisons.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why `name` cannot name a process (an instance or a worker), if it
/// cannot: 1–128 printable characters, no whitespace or control characters.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".to_owned())
    } else if name.chars().count() > MAX_INSTANCE_ID_LEN {
        Some(format!("must be at most {MAX_INSTANCE_ID_LEN} characters"))
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain whitespace or control characters".to_owned())
    } else {
        None
    }
}

/// The host name made fit for a process name of at most `room` characters
/// for the host part: characters that are not allowed become `-`, never
/// empty.
pub(crate) fn host_label(room: usize) -> String {
    let host: String = host_name()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .take(room)
        .collect();
    if host.is_empty() {
        "host".to_owned()
    } else {
        host
    }
}

/// The host name as the kernel reports it, then `$HOSTNAME`, then `host`:
/// no extra dependency, and containers always have one of the first two.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "host".to_owned())
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for InstanceId {
    type Error = CoordError;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> Self {
        id.0
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(InstanceId::new("api-1").is_ok());
        assert!(InstanceId::new("x".repeat(128)).is_ok());
        for bad in [
            String::new(),
            "a b".into(),
            "a\nb".into(),
            "a\u{7}b".into(),
            "x".repeat(129),
        ] {
            assert!(matches!(
                InstanceId::new(bad),
                Err(CoordError::InvalidInstance { .. })
            ));
        }
    }

    #[test]
    fn default_is_host_and_pid() {
        let id = InstanceId::from_config(None).unwrap();
        assert!(id.as_str().ends_with(&format!("-{}", std::process::id())));
        assert_eq!(InstanceId::from_config(Some("  ")).unwrap(), id);
        assert_eq!(
            InstanceId::from_config(Some("web-7")).unwrap().as_str(),
            "web-7"
        );
        assert!(InstanceId::from_config(Some("web 7")).is_err());
    }

    #[test]
    fn serde_is_a_checked_string() {
        let id = InstanceId::new("a-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"a-1\"");
        assert_eq!(serde_json::from_str::<InstanceId>("\"a-1\"").unwrap(), id);
        assert!(serde_json::from_str::<InstanceId>("\"a 1\"").is_err());
    }
}
