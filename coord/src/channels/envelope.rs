//! The wire format of a notification: a named channel, and an envelope that
//! says who changed what, when and why around a service's own payload.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};
use crate::instance::InstanceId;

/// Longest accepted channel name, in characters.
pub const MAX_CHANNEL_NAME_LEN: usize = 100;

/// Well-known trigger sources for [`Envelope::source`]. Free text is
/// allowed, but these let a receiver recognise, say, a change that was
/// itself applied from a sync (and must never be republished).
pub mod source {
    /// A change made through the service's API or UI.
    pub const API: &str = "api";
    /// A change applied from another instance's notification or a poll; a
    /// receiver seeing it knows the message came out of a sync path.
    pub const SYNC: &str = "sync";
    /// State loaded or reconciled while an instance started.
    pub const STARTUP: &str = "startup";
}

/// The name of a notification channel (the `<channel>` in
/// `<prefix>:notifications:<channel>`).
///
/// Restricted to `[A-Za-z0-9_.:-]` so it is safe verbatim in a Redis
/// channel, a URL path segment and a log line, and cannot contain the glob
/// characters a pattern subscription would interpret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

impl ChannelName {
    /// Checks a name: 1–100 characters of `[A-Za-z0-9_.:-]`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty".to_owned())
        } else if name.chars().count() > MAX_CHANNEL_NAME_LEN {
            Some(format!("must be at most {MAX_CHANNEL_NAME_LEN} characters"))
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            Some("may only contain ASCII letters, digits and _ . : -".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoordError::InvalidChannel { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ChannelName {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for ChannelName {
    type Error = CoordError;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<ChannelName> for String {
    fn from(name: ChannelName) -> Self {
        name.0
    }
}

/// What kind of change a notification reports, so a receiver can pick a
/// cheaper reaction (drop a cache entry on `deleted`) than a full reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeType {
    /// New keys appeared.
    Created,
    /// Existing keys got new values.
    Updated,
    /// Keys were removed.
    Deleted,
    /// Only the status of keys changed (enabled, disabled, …).
    StatusChanged,
}

/// One notification as it travels between instances, JSON with camelCase
/// field names so services in other languages can read and write it.
///
/// The envelope fields are what every receiver needs regardless of the
/// payload: who sent it (self-skip, per-instance counts), when (latency),
/// what kind of change on which keys (targeted reloads), and the trigger
/// source (loop prevention and diagnostics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// The instance that published the message.
    pub instance_id: InstanceId,
    /// When it was published, in milliseconds since the Unix epoch (the
    /// publisher's clock).
    pub timestamp: i64,
    /// What kind of change this reports.
    pub change_type: ChangeType,
    /// The keys the change affected; empty means "unspecified, reload all".
    pub keys: Vec<String>,
    /// What triggered the change (see [`source`]).
    pub source: String,
    /// The service's own message.
    pub payload: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_checked() {
        assert!(ChannelName::new("state.flags:v1-x_y").is_ok());
        assert!(ChannelName::new("a".repeat(100)).is_ok());
        for bad in ["", "a b", "a*", "a?b", "a[b]", "é", "a/b"] {
            assert!(
                matches!(
                    ChannelName::new(bad),
                    Err(CoordError::InvalidChannel { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(ChannelName::new("a".repeat(101)).is_err());
    }

    #[test]
    fn envelope_is_camel_case() {
        let env = Envelope {
            instance_id: InstanceId::new("a").unwrap(),
            timestamp: 5,
            change_type: ChangeType::StatusChanged,
            keys: vec!["k".into()],
            source: source::API.into(),
            payload: 1,
        };
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "instanceId": "a", "timestamp": 5, "changeType": "statusChanged",
                "keys": ["k"], "source": "api", "payload": 1
            })
        );
    }
}
