//! The accept loop. `axum::serve` gives no way to bound how long a client
//! may take to send its request head, nor how many connections one
//! address may hold: a slow-header client (slowloris) kept a connection
//! and its task for as long as it liked, and 200 of them from one address
//! were all held. This loop serves each connection with hyper directly,
//! with a header-read timeout and a per-address connection cap, and shuts
//! down gracefully like `axum::serve` (stop accepting, let requests in
//! flight finish).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::http::security;

/// How long shutdown waits for open connections to finish their
/// requests: as long as one request may take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What one client may hold of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's head (line and
    /// headers); the connection is closed after that.
    pub header_read_timeout: Duration,
    /// Open connections per client address; more are closed at once
    /// (0: no cap).
    pub per_address: usize,
    /// Addresses the cap does not apply to: the trusted reverse proxies
    /// (`--auth-proxy-trusted`), through which every browser comes.
    pub uncapped: Vec<crate::auth::net::IpRange>,
}

/// The open connections of each address, so the cap can be checked on
/// accept; a [`Slot`] gives its place back when its connection ends.
#[derive(Clone, Default)]
struct Open(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One counted connection of an address.
struct Slot {
    open: Open,
    ip: IpAddr,
}

impl Open {
    /// A place for one more connection of `ip`, or `None` at the cap.
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = crate::sync::lock(&self.0);
        let count = open.entry(ip).or_default();
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = crate::sync::lock(&self.open.0);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// for the connections to finish their requests. Every request carries
/// the peer's [`ConnectInfo`], as `into_make_service_with_connect_info`
/// would give it (the rate limits and the audit log key on it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Open::default();
    // Connections watch `stop` to begin their graceful shutdown; each
    // holds a clone of `done`, whose receivers all being gone means every
    // connection has ended.
    let (stop, stopping) = watch::channel(false);
    let (done, _) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A client that gave up before it was accepted.
                Err(err) if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) => continue,
                Err(err) => {
                    // Out of file descriptors and the like: back off
                    // rather than spin, and keep serving.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let cap = if limits
            .uncapped
            .iter()
            .any(|range| range.contains(peer.ip()))
        {
            0
        } else {
            limits.per_address
        };
        let Some(slot) = open.take(peer.ip(), cap) else {
            tracing::debug!(%peer, cap = limits.per_address, "connection refused: address at its cap");
            continue;
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: axum::http::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            },
        ));
        let limits_timeout = limits.header_read_timeout;
        let mut stopping = stopping.clone();
        let ended = done.subscribe();
        tokio::spawn(async move {
            let _slot = slot;
            let _ended = ended;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits_timeout)
                .max_headers(security::CONNECTION_MAX_HEADERS)
                .max_buf_size(security::CONNECTION_MAX_BUFFER);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
                () = async {
                    // The guard `wait_for` returns is dropped here, before
                    // the connection is awaited again.
                    let _ = stopping.wait_for(|stop| *stop).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // A client that stopped reading its answer keeps its connection open
    // for ever: after the grace the server ends without it.
    if tokio::time::timeout(SHUTDOWN_GRACE, done.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {} s after shutdown began; closing anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_its_places_back() {
        let open = Open::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = open.take(a, 2).expect("one");
        let second = open.take(a, 2).expect("two");
        assert!(open.take(a, 2).is_none(), "at the cap");
        assert!(open.take(b, 2).is_some(), "another address is not affected");
        drop(first);
        let third = open.take(a, 2).expect("a place was given back");
        drop((second, third));
        assert!(
            open.0.lock().unwrap().get(&a).is_none(),
            "forgotten at zero"
        );
        assert!(
            open.take(a, 0).is_some() && open.take(a, 0).is_some(),
            "0: no cap"
        );
    }
}
