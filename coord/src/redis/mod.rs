//! Connecting to Redis the same way everywhere in `coord`: a URL parsed
//! without ever echoing its password, one plain `PING` that fails fast
//! (a connection manager would retry with backoff), then a connection
//! manager that reconnects by itself after a drop; and one check of key
//! prefixes; and one pub/sub loop that resubscribes after an outage. Each
//! module keeps its own reconnect tuning ([`Reconnect`]) and the characters
//! its key layout cannot take.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{AsyncConnectionConfig, Client, Msg, RedisError};

use crate::error::{CoordError, Result};

/// How long connecting (probe included) may take at start-up.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a managed connection behaves once running.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reconnect {
    /// Limit on one (re)connection attempt.
    pub connect_timeout: Duration,
    /// Limit on one command's answer.
    pub response_timeout: Duration,
    /// Reconnection attempts per failed command.
    pub retries: usize,
    /// Longest pause between attempts.
    pub max_delay: Duration,
}

impl Reconnect {
    /// The connection manager's settings.
    pub fn config(self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(self.retries)
            .set_max_delay(self.max_delay)
    }
}

/// Parses a Redis URL; the error never quotes the URL (it may hold a
/// password).
pub(crate) fn open(url: &str) -> Result<Client> {
    Client::open(url).map_err(|e| CoordError::InvalidOptions(format!("invalid Redis URL: {e}")))
}

/// One plain connection and `PING`, each bounded by [`CONNECT_TIMEOUT`]:
/// an unreachable server fails at once instead of after retries.
pub(crate) async fn probe(client: &Client) -> std::result::Result<(), RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("PING").query_async::<()>(&mut conn).await
}

/// Runs a start-up `setup` within [`CONNECT_TIMEOUT`]; failure or silence
/// becomes `Unavailable` with the reason.
pub(crate) async fn within_connect_timeout<T>(
    setup: impl Future<Output = std::result::Result<T, RedisError>>,
) -> Result<T> {
    match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(CoordError::Unavailable(format!("cannot reach Redis: {e}"))),
        Err(_) => Err(CoordError::Unavailable(format!(
            "cannot reach Redis: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Probes the server, then opens a managed connection with `reconnect`.
pub(crate) async fn connect(
    url: &str,
    reconnect: Reconnect,
) -> Result<(Client, ConnectionManager)> {
    let client = open(url)?;
    let conn = within_connect_timeout(async {
        probe(&client).await?;
        ConnectionManager::new_with_config(client.clone(), reconnect.config()).await
    })
    .await?;
    Ok((client, conn))
}

/// Rejects an empty prefix, whitespace and control characters (unreadable
/// in `redis-cli`), and the characters in `forbidden` that the caller's key
/// layout cannot take, described as `what` in the error.
pub(crate) fn check_prefix(prefix: &str, forbidden: &[char], what: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(CoordError::InvalidOptions(
            "the Redis key prefix must not be empty".into(),
        ));
    }
    if prefix
        .chars()
        .any(|c| forbidden.contains(&c) || c.is_whitespace() || c.is_control())
    {
        return Err(CoordError::InvalidOptions(format!(
            "the Redis key prefix {prefix:?} must not contain {what}"
        )));
    }
    Ok(())
}

/// What one pub/sub connection listens to.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One channel (`SUBSCRIBE`).
    Channel(String),
    /// Every channel matching a glob (`PSUBSCRIBE`).
    Pattern(String),
}

/// How often a subscription checks that its connection is alive; a
/// silently dropped connection would otherwise stop its messages for good.
const PUBSUB_PING: Duration = Duration::from_secs(15);
/// Bounds of the resubscription backoff: quick first retries so a blip
/// costs little, capped so an outage does not hammer Redis.
const PUBSUB_BACKOFF_MIN: Duration = Duration::from_millis(100);
const PUBSUB_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Opens a pub/sub connection listening to `target`. Bounded in time
/// because a pub/sub connection has no timeouts of its own.
pub(crate) async fn open_pubsub(client: &Client, target: &Target) -> redis::RedisResult<PubSub> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        match target {
            Target::Channel(c) => pubsub.subscribe(c).await?,
            Target::Pattern(p) => pubsub.psubscribe(p).await?,
        }
        Ok(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "subscribing timed out",
        ))),
    }
}

/// What a subscription loop reports to its owner.
pub(crate) enum PubSubEvent<'a> {
    /// A message arrived.
    Message(&'a Msg),
    /// The connection is up: `restored` is false for the first one (made
    /// by the caller before the loop), true after an outage.
    Up { restored: bool },
    /// The connection was lost; messages published until the next `Up`
    /// are lost.
    Down,
}

/// Forwards everything `target` receives to `on`, starting with the
/// already-open `first` connection, and resubscribes with backoff when
/// Redis goes away (a `PING` every [`PUBSUB_PING`] finds connections that
/// died silently). `what` names the subscription in logs. Runs until its
/// task is aborted.
pub(crate) async fn listen_pubsub(
    client: Client,
    target: Target,
    what: &'static str,
    first: PubSub,
    mut on: impl FnMut(PubSubEvent<'_>),
) {
    let mut pubsub = Some(first);
    let mut backoff = PUBSUB_BACKOFF_MIN;
    let mut restored = false;
    loop {
        let current = match pubsub.take() {
            Some(p) => p,
            None => match open_pubsub(&client, &target).await {
                Ok(p) => {
                    tracing::info!(target = ?target, "{what} subscription restored");
                    p
                }
                Err(e) => {
                    tracing::warn!(target = ?target, error = %e, "cannot resubscribe to {what}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(PUBSUB_BACKOFF_MAX);
                    continue;
                }
            },
        };
        backoff = PUBSUB_BACKOFF_MIN;
        on(PubSubEvent::Up { restored });
        restored = true;
        let (mut sink, mut stream) = current.split();
        let mut ping = tokio::time::interval(PUBSUB_PING);
        ping.reset();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => on(PubSubEvent::Message(&msg)),
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        on(PubSubEvent::Down);
        tracing::warn!(target = ?target, "{what} subscription lost; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

/// Escapes glob characters so that a prefix matches itself only in
/// `SCAN MATCH`.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_with_the_caller_s_extra_characters() {
        assert!(check_prefix("switchyard", &['{'], "braces").is_ok());
        assert!(check_prefix("a:b-c", &['{'], "braces").is_ok());
        assert!(check_prefix("", &[], "whitespace").is_err());
        assert!(check_prefix("a b", &[], "whitespace").is_err());
        assert!(check_prefix("a\u{7}", &[], "whitespace").is_err());
        assert!(check_prefix("a{b}", &[], "whitespace").is_ok());
        let err = check_prefix("a{b}", &['{', '}'], "braces or whitespace").expect_err("braces");
        assert!(err.to_string().contains("braces or whitespace"), "{err}");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        let err = open("http://user:secret@host").expect_err("not redis");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
