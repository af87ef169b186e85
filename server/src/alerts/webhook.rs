//! Telling the outside world about alerts: the JSON bodies receivers
//! understand, the HTTP client that POSTs them, and how long to wait
//! before trying a failed delivery again.
//!
//! Two body shapes cover most receivers: Alertmanager's webhook (version
//! 4), which every tool built for Prometheus alerts already parses, and a
//! bare `{"text": …}` that Slack, Mattermost and Google Chat incoming
//! webhooks post as a message.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Map, Value, json};

use super::model::{Alert, AlertStatus};

/// Which body a webhook receiver expects, chosen per webhook by the
/// operator because receivers reject (or post verbatim) shapes they do
/// not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum WebhookFormat {
    /// Alertmanager's webhook body, so receivers written for Prometheus
    /// alerts work unchanged.
    #[default]
    Alertmanager,
    /// `{"text": …}`, so a chat room gets one readable line per alert.
    Chat,
}

impl WebhookFormat {
    /// The name stored in the database and written in configuration, kept
    /// stable so saved webhooks keep their format across releases.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Alertmanager => "alertmanager",
            WebhookFormat::Chat => "chat",
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "alertmanager" => Ok(WebhookFormat::Alertmanager),
            "chat" => Ok(WebhookFormat::Chat),
            other => Err(format!(
                "unknown webhook format {other:?} (expected alertmanager or chat)"
            )),
        }
    }
}

/// What Alertmanager sends as `endsAt` for an alert that has not ended;
/// receivers test for this exact text.
const OPEN_ENDS_AT: &str = "0001-01-01T00:00:00Z";

/// The labels an alert is identified and routed by in Alertmanager terms.
fn labels(alert: &Alert) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert("alertname".into(), alert.rule.clone().into());
    labels.insert("severity".into(), alert.severity.as_str().into());
    labels.insert("kind".into(), alert.kind.as_str().into());
    labels.insert(alert.kind.subject().into(), alert.subject.clone().into());
    labels
}

fn annotations(alert: &Alert) -> Map<String, Value> {
    let mut annotations = Map::new();
    annotations.insert("summary".into(), alert.summary.clone().into());
    annotations
}

/// The entries every map has with the same value (`commonLabels`,
/// `commonAnnotations`).
fn common(maps: &[Map<String, Value>]) -> Map<String, Value> {
    let Some((first, rest)) = maps.split_first() else {
        return Map::new();
    };
    first
        .iter()
        .filter(|(key, value)| rest.iter().all(|m| m.get(*key) == Some(*value)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn is_firing(alert: &Alert) -> bool {
    alert.status != AlertStatus::Resolved
}

/// The Alertmanager webhook body (version 4) for a group of alerts, so any
/// receiver built for Alertmanager (PagerDuty bridges, ticketing hooks,
/// custom scripts) takes Switchyard's alerts without changes.
///
/// The group is whatever the caller sends together: `groupLabels` holds
/// `alertname` when every alert comes from the same rule (Alertmanager's
/// default grouping), and `groupKey` is derived from it the way
/// Alertmanager does for the root route. Nothing is ever truncated.
pub fn alertmanager_payload(alerts: &[Alert], receiver: &str, external_url: &str) -> Value {
    let external_url = external_url.trim_end_matches('/');
    let generator_url = format!("{external_url}/alerts");
    let all_labels: Vec<Map<String, Value>> = alerts.iter().map(labels).collect();
    let all_annotations: Vec<Map<String, Value>> = alerts.iter().map(annotations).collect();

    let mut group_labels = Map::new();
    if let Some(first) = alerts.first()
        && alerts.iter().all(|a| a.rule == first.rule)
    {
        group_labels.insert("alertname".into(), first.rule.clone().into());
    }
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", Value::String(v.as_str().unwrap_or("").into())))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let status = if alerts.iter().any(is_firing) {
        "firing"
    } else {
        "resolved"
    };

    let entries: Vec<Value> = alerts
        .iter()
        .zip(all_labels.iter().zip(&all_annotations))
        .map(|(alert, (labels, annotations))| {
            let starts_at =
                coord::time::rfc3339_ms(alert.firing_since.unwrap_or(alert.pending_since));
            let ends_at = match (alert.status, alert.resolved_at) {
                (AlertStatus::Resolved, Some(at)) => coord::time::rfc3339_ms(at),
                _ => OPEN_ENDS_AT.to_string(),
            };
            let status = if is_firing(alert) {
                "firing"
            } else {
                "resolved"
            };
            json!({
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": starts_at,
                "endsAt": ends_at,
                "generatorURL": generator_url,
                "fingerprint": alert.fingerprint,
            })
        })
        .collect();

    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common(&all_labels),
        "commonAnnotations": common(&all_annotations),
        "externalURL": external_url,
        "alerts": entries,
    })
}

/// One chat message for one alert, so a room shows what broke, how badly,
/// and where to look, in a single line any incoming-webhook accepts.
pub fn chat_payload(alert: &Alert, external_url: &str) -> Value {
    let state = if is_firing(alert) {
        "FIRING"
    } else {
        "RESOLVED"
    };
    let text = format!(
        "[{state}] {} · {} · {} · {}/alerts",
        alert.severity.as_str(),
        alert.rule,
        alert.summary,
        external_url.trim_end_matches('/')
    );
    json!({ "text": text })
}

/// How many times a delivery is tried before it is given up, so a receiver
/// that is gone for good stops costing requests (about 20 minutes of
/// retries with [`backoff`]).
pub const MAX_ATTEMPTS: u32 = 10;

/// How long to wait before retry number `attempt` (0 for the first retry):
/// 1 s doubling up to 5 min, so a flapping receiver is retried quickly and
/// a dead one is not hammered. Deterministic, so schedules are testable
/// and explainable in the UI.
pub fn backoff(attempt: u32) -> Duration {
    const CAP_SECS: u64 = 300;
    let secs = 1u64.checked_shl(attempt).unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(CAP_SECS))
}

/// How long one delivery may take, connection to last byte, so one stuck
/// receiver cannot hold up the others.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an error response's body is kept for people to read.
const BODY_EXCERPT_CHARS: usize = 200;

/// Why a delivery failed. Its `Display` is shown on the webhooks page and
/// written to logs, so it names the receiver only by scheme, host and port:
/// user-info and paths (chat webhook URLs carry their token in the path)
/// never appear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The URL cannot be posted to; retrying will not help.
    #[error("invalid webhook URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("POST {url} answered {status}: {body}")]
    Status {
        /// The receiver, redacted.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The first characters of the response body, on one line.
        body: String,
    },
    /// The receiver could not be reached or the exchange broke off.
    #[error("POST {url} failed: {reason}")]
    Connection {
        /// The receiver, redacted.
        url: String,
        /// One line saying why.
        reason: String,
    },
    /// The receiver took longer than the client's timeout.
    #[error("POST {url} timed out after {} s", .after.as_secs_f64())]
    Timeout {
        /// The receiver, redacted.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
}

impl DeliveryError {
    /// Whether trying again later may succeed, so the sender stops at once
    /// on a bad URL or a receiver that rejects the request (4xx other than
    /// 408 and 429) instead of retrying it [`MAX_ATTEMPTS`] times.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::InvalidUrl { .. } => false,
            DeliveryError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            DeliveryError::Connection { .. } | DeliveryError::Timeout { .. } => true,
        }
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// POSTs JSON to webhook receivers over http and https. Built once and
/// cloned into every task that delivers: clones share one connection pool
/// and one TLS configuration.
#[derive(Clone)]
pub struct WebhookClient {
    /// The client, or why TLS could not be set up (reported by every post
    /// rather than failing the server's start).
    client: Result<HttpsClient, String>,
    timeout: Duration,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for WebhookClient {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookClient {
    /// A client with the 10 s timeout deliveries use.
    pub fn new() -> Self {
        Self::with_timeout(DEFAULT_TIMEOUT)
    }

    /// A client whose posts give up after `timeout`, so tests need not wait
    /// 10 s for a receiver that never answers.
    pub fn with_timeout(timeout: Duration) -> Self {
        // The provider is named rather than taken from rustls' process
        // default, which panics when the feature set is ambiguous.
        let client = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map(|builder| {
                let connector = builder.https_or_http().enable_http1().build();
                Client::builder(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(connector)
            })
            .map_err(|e| format!("TLS setup failed: {e}"));
        Self { client, timeout }
    }

    /// POSTs `body` as JSON to `url` and succeeds only on a 2xx answer, so
    /// the caller can record the delivery or schedule a retry. User-info in
    /// the URL (`https://user:pass@host/…`) is sent as HTTP basic auth.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<(), DeliveryError> {
        let shown = redact_url(url);
        let target = Target::parse(url).map_err(|reason| DeliveryError::InvalidUrl {
            url: shown.clone(),
            reason,
        })?;
        let client = self
            .client
            .as_ref()
            .map_err(|reason| DeliveryError::Connection {
                url: shown.clone(),
                reason: reason.clone(),
            })?;
        let payload = serde_json::to_vec(body).map_err(|e| DeliveryError::InvalidUrl {
            url: shown.clone(),
            reason: format!("body is not JSON: {e}"),
        })?;

        let mut request = Request::post(target.uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
            );
        if let Some(auth) = target.authorization.clone() {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request.body(Full::new(Bytes::from(payload))).map_err(|e| {
            DeliveryError::InvalidUrl {
                url: shown.clone(),
                reason: e.to_string(),
            }
        })?;

        let exchange = async {
            let response = match client.request(request).await {
                Ok(response) => response,
                Err(e) => return Err(one_line(&e)),
            };
            let status = response.status();
            if status.is_success() {
                // Reading the body lets the connection go back to the pool.
                let _ = response.into_body().collect().await;
                Ok::<_, String>(Ok(()))
            } else {
                let excerpt = body_excerpt(response.into_body()).await;
                Ok(Err((status.as_u16(), excerpt)))
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(DeliveryError::Timeout {
                url: shown,
                after: self.timeout,
            }),
            Ok(Err(reason)) => Err(DeliveryError::Connection {
                url: shown,
                reason: target.scrub(&reason),
            }),
            Ok(Ok(Err((status, body)))) => Err(DeliveryError::Status {
                url: shown,
                status,
                body: target.scrub(&body),
            }),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// The first [`BODY_EXCERPT_CHARS`] characters of a response body on one
/// line, reading no more than needed.
async fn body_excerpt(mut body: Incoming) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_EXCERPT_CHARS * 4 {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(BODY_EXCERPT_CHARS).collect()
}

/// An error and its causes on one line (`client error (Connect): tcp
/// connect error: Connection refused (os error 111)`), since the outermost
/// message alone rarely says what happened.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL as shown to people: scheme, host and port only. User-info and
/// path are left out because webhook URLs carry their secrets there
/// (`https://hooks.slack.com/services/T…/B…/token`).
fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((_, host)) => ("***@", host),
        None => ("", authority),
    };
    let tail = if authority_end < rest.len() {
        "/…"
    } else {
        ""
    };
    format!("{}://{userinfo}{host}{tail}", scheme.to_ascii_lowercase())
}

/// A parsed webhook URL: what to request and how to authenticate.
struct Target {
    uri: Uri,
    authorization: Option<HeaderValue>,
    /// The raw user-info, to scrub from any text that might echo it.
    userinfo: Option<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "expected http:// or https://".to_string())?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo.to_string()), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("no host".to_string());
        }
        let path = if path.starts_with('?') || path.is_empty() {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let uri: Uri = format!("{scheme}://{host}{path}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        let authorization = match &userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let credentials = format!("{}:{}", percent_decode(user), percent_decode(password));
                let mut value =
                    HeaderValue::from_str(&format!("Basic {}", base64(credentials.as_bytes())))
                        .map_err(|_| "user-info cannot be sent".to_string())?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            uri,
            authorization,
            userinfo,
        })
    }

    /// `text` with the URL's user-info masked, in case a receiver or an
    /// error message echoes it.
    fn scrub(&self, text: &str) -> String {
        match &self.userinfo {
            Some(userinfo) if !userinfo.is_empty() => text.replace(userinfo.as_str(), "***"),
            _ => text.to_string(),
        }
    }
}

/// `%XX` escapes decoded, as user-info is written in URLs; malformed
/// escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding, for the basic-auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::*;
    use crate::alerts::model::{RuleKind, Severity, fingerprint};

    /// What the test receiver saw: (authorization header, body).
    type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

    /// A real HTTP receiver on a free port: `/ok` answers 200, `/fail`
    /// 500 with a body, `/hang` never answers.
    async fn receiver() -> (String, Seen) {
        let seen: Seen = Arc::default();
        async fn record(State(seen): State<Seen>, headers: HeaderMap, body: String) {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            seen.lock()
                .unwrap()
                .push((auth, serde_json::from_str(&body).unwrap()));
        }
        let app = Router::new()
            .route(
                "/ok",
                post(
                    |state: State<Seen>, headers: HeaderMap, body: String| async move {
                        record(state, headers, body).await;
                        StatusCode::OK
                    },
                ),
            )
            .route(
                "/fail",
                post(
                    |state: State<Seen>, headers: HeaderMap, body: String| async move {
                        record(state, headers, body).await;
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("boom\n{}", "x".repeat(500)),
                        )
                    },
                ),
            )
            .route(
                "/hang",
                post(|| async {
                    std::future::pending::<()>().await;
                }),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    fn alert(status: AlertStatus) -> Alert {
        Alert {
            fingerprint: fingerprint("emails-failing", "emails"),
            rule: "emails-failing".into(),
            kind: RuleKind::FailureRate,
            subject: "emails".into(),
            status,
            severity: Severity::Warning,
            value: 7.5,
            summary: "Queue emails: 7.5% of jobs failed over 5 min (threshold 5%)".into(),
            pending_since: 1_795_939_884_000,
            firing_since: Some(1_795_939_944_123),
            resolved_at: (status == AlertStatus::Resolved).then_some(1_795_940_544_007),
            acknowledged: None,
            silenced_until: None,
        }
    }

    #[tokio::test]
    async fn firing_alert_arrives_in_alertmanager_v4_shape() {
        let (base, seen) = receiver().await;
        let body = alertmanager_payload(
            &[alert(AlertStatus::Firing)],
            "ops",
            "https://dash.example.com/",
        );
        WebhookClient::new()
            .post_json(&format!("{base}/ok"), &body)
            .await
            .unwrap();
        let (auth, got) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(auth, None);
        let labels = json!({
            "alertname": "emails-failing",
            "severity": "warning",
            "kind": "failure_rate",
            "queue": "emails",
        });
        let annotations =
            json!({"summary": "Queue emails: 7.5% of jobs failed over 5 min (threshold 5%)"});
        assert_eq!(
            got,
            json!({
                "version": "4",
                "groupKey": "{}:{alertname=\"emails-failing\"}",
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "ops",
                "groupLabels": {"alertname": "emails-failing"},
                "commonLabels": labels,
                "commonAnnotations": annotations,
                "externalURL": "https://dash.example.com",
                "alerts": [{
                    "status": "firing",
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": "2026-11-29T08:12:24.123Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "https://dash.example.com/alerts",
                    "fingerprint": fingerprint("emails-failing", "emails"),
                }],
            })
        );
    }

    #[tokio::test]
    async fn resolved_alert_carries_its_end() {
        let (base, seen) = receiver().await;
        let body = alertmanager_payload(
            &[alert(AlertStatus::Resolved)],
            "ops",
            "http://127.0.0.1:3000",
        );
        WebhookClient::new()
            .post_json(&format!("{base}/ok"), &body)
            .await
            .unwrap();
        let (_, got) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got["version"], "4");
        assert_eq!(got["status"], "resolved");
        let entry = &got["alerts"][0];
        assert_eq!(entry["status"], "resolved");
        assert_eq!(entry["startsAt"], "2026-11-29T08:12:24.123Z");
        assert_eq!(entry["endsAt"], "2026-11-29T08:22:24.007Z");
        assert_eq!(entry["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(entry["labels"]["queue"], "emails");
        assert_eq!(entry["generatorURL"], "http://127.0.0.1:3000/alerts");
    }

    #[test]
    fn groups_share_only_what_is_common() {
        let mut other = alert(AlertStatus::Resolved);
        other.rule = "backend-down".into();
        other.kind = RuleKind::BackendUnreachable;
        other.subject = "backend".into();
        other.summary = "Backend unreachable".into();
        let body = alertmanager_payload(&[alert(AlertStatus::Firing), other], "ops", "http://x");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupLabels"], json!({}));
        assert_eq!(body["groupKey"], "{}:{}");
        assert_eq!(body["commonLabels"], json!({"severity": "warning"}));
        assert_eq!(body["commonAnnotations"], json!({}));
        assert_eq!(body["alerts"][1]["labels"]["backend"], "backend");
        let empty = alertmanager_payload(&[], "ops", "http://x");
        assert_eq!(empty["status"], "resolved");
        assert_eq!(empty["alerts"], json!([]));
    }

    #[test]
    fn pending_alerts_start_when_pending() {
        let mut pending = alert(AlertStatus::Pending);
        pending.firing_since = None;
        let body = alertmanager_payload(&[pending], "ops", "http://x");
        assert_eq!(body["alerts"][0]["startsAt"], "2026-11-29T08:11:24.000Z");
        assert_eq!(body["alerts"][0]["endsAt"], OPEN_ENDS_AT);
    }

    #[tokio::test]
    async fn chat_payload_is_one_line_of_text() {
        let (base, seen) = receiver().await;
        let body = chat_payload(&alert(AlertStatus::Firing), "https://dash.example.com");
        WebhookClient::new()
            .post_json(&format!("{base}/ok"), &body)
            .await
            .unwrap();
        let (_, got) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(
            got,
            json!({"text": "[FIRING] warning · emails-failing · Queue emails: 7.5% of jobs failed over 5 min (threshold 5%) · https://dash.example.com/alerts"})
        );
        let resolved = chat_payload(&alert(AlertStatus::Resolved), "https://dash.example.com/");
        assert!(
            resolved["text"]
                .as_str()
                .unwrap()
                .starts_with("[RESOLVED] warning · emails-failing · ")
        );
        assert!(
            resolved["text"]
                .as_str()
                .unwrap()
                .ends_with(" · https://dash.example.com/alerts")
        );
    }

    #[tokio::test]
    async fn a_500_answer_is_an_error_naming_it() {
        let (base, seen) = receiver().await;
        let err = WebhookClient::new()
            .post_json(&format!("{base}/fail"), &json!({"text": "hi"}))
            .await
            .unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 1);
        let DeliveryError::Status { status, body, .. } = &err else {
            panic!("expected a status error, got {err:?}");
        };
        assert_eq!(*status, 500);
        assert!(body.starts_with("boom xxx"));
        assert_eq!(body.chars().count(), 200);
        let shown = err.to_string();
        assert!(shown.contains("500"), "{shown}");
        assert!(!shown.contains('\n'));
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        for scheme in ["http", "https"] {
            let err = WebhookClient::new()
                .post_json(&format!("{scheme}://{addr}/hook"), &json!({}))
                .await
                .unwrap_err();
            assert!(
                matches!(err, DeliveryError::Connection { .. }),
                "{scheme}: {err:?}"
            );
            let shown = err.to_string();
            assert!(shown.contains("refused"), "{shown}");
            assert!(!shown.contains('\n'));
            assert!(err.is_retryable());
        }
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out() {
        let (base, _) = receiver().await;
        let started = std::time::Instant::now();
        let err = WebhookClient::with_timeout(Duration::from_millis(200))
            .post_json(&format!("{base}/hang"), &json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        assert!(err.to_string().contains("timed out"));
    }

    #[tokio::test]
    async fn credentials_are_sent_but_never_shown() {
        let (base, seen) = receiver().await;
        let with_creds = base.replace("http://", "http://alice:hunter%402@");
        WebhookClient::new()
            .post_json(&format!("{with_creds}/ok"), &json!({}))
            .await
            .unwrap();
        let (auth, _) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(
            auth.as_deref(),
            Some(format!("Basic {}", base64(b"alice:hunter@2")).as_str())
        );

        let err = WebhookClient::new()
            .post_json(&format!("{with_creds}/fail?token=t0k3n"), &json!({}))
            .await
            .unwrap_err();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let refused = WebhookClient::new()
            .post_json(
                &format!("https://alice:hunter2@{closed}/services/T0/B0/s3cret"),
                &json!({}),
            )
            .await
            .unwrap_err();
        let invalid = WebhookClient::new()
            .post_json("ftp://alice:hunter2@example.com/x", &json!({}))
            .await
            .unwrap_err();
        assert!(matches!(invalid, DeliveryError::InvalidUrl { .. }));
        assert!(!invalid.is_retryable());
        for err in [err, refused, invalid] {
            let shown = format!("{err} {err:?}");
            for secret in ["alice", "hunter", "t0k3n", "s3cret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("***@"), "{shown}");
        }
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/xyz"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("HTTP://u:p@127.0.0.1:9000"),
            "http://***@127.0.0.1:9000"
        );
        assert_eq!(redact_url("nonsense"), "(not a URL)");
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let secs: Vec<u64> = (0..MAX_ATTEMPTS).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(64), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn formats_and_helpers_round_trip() {
        for format in [WebhookFormat::Alertmanager, WebhookFormat::Chat] {
            assert_eq!(format.as_str().parse::<WebhookFormat>(), Ok(format));
        }
        assert!("slack".parse::<WebhookFormat>().is_err());
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(percent_decode("a%40b%zz"), "a@b%zz");
        assert_eq!(coord::time::rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(coord::time::rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
