//! How alerting runs, as the configuration gives it.

use std::time::Duration;

use super::model::Rule;
use super::webhook::WebhookFormat;
use crate::config::secret::SecretUrl;

/// A webhook alerts are posted to.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTarget {
    /// Where to post (may hold credentials: shown redacted).
    pub url: SecretUrl,
    /// Which payload it understands.
    pub format: WebhookFormat,
}

/// How alerting runs, from the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// How often rules are evaluated.
    pub interval: Duration,
    /// Where firing and resolved alerts are posted.
    pub webhooks: Vec<WebhookTarget>,
    /// The dashboard's address as receivers should link to it.
    pub external_url: String,
    /// Rules from the config file, written over the stored ones of the same
    /// name at every start.
    pub rules: Vec<Rule>,
}
