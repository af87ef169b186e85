//! Building the application: connect the backends the settings name, run
//! migrations, bind the listener, and serve.
//!
//! Connecting and binding happen before anything is served, so every
//! misconfiguration (unreachable Redis, unreadable database, port in use)
//! ends startup with one clear error. Binding is separate from serving so
//! callers learn the real address first: tests bind port 0, and the demo
//! prints the URL before it serves.

pub mod commands;
pub mod router;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use coord::CoordError;
use coord::queue::redis::RedisBackend;
use coord::queue::sql::SqlBackend;
use coord::queue::{QueueBackend, Queues};
use coord::time::now_ms;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::alerts::runner::Alerting;
use crate::alerts::view::AlertsView;
use crate::audit::AuditLog;
use crate::auth::users::{UserError, UserStore};
use crate::bullmq::BullMonitor;
use crate::channels::Channels;
use crate::config::Settings;
use crate::config::secret::SecretUrl;
use crate::db::{Database, DbError};
use crate::instances::Instances;
use crate::live::stream::Streams;
use crate::live::{Hub, Sources, Wake};
use crate::metrics::Exporter;
use crate::queues::figures::Thresholds;
use crate::ratelimits::RateLimits;
pub use crate::state::AppState;
use router::router;

/// Why the server could not start. Each message names what was being
/// reached (with passwords hidden); the cause is the error's `source`, so
/// `{:#}` (or any error reporter walking the chain) shows both.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The embedded queue database could not be opened or migrated.
    #[error("cannot open the embedded queue database {url}{}", hint_suffix(.hint))]
    Embedded {
        /// The database URL (password hidden when shown).
        url: SecretUrl,
        /// Why, when it can be told (a read-only directory…).
        hint: Option<Box<str>>,
        /// What went wrong.
        source: CoordError,
    },
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}")]
    Redis {
        /// The Redis URL (password hidden when shown).
        url: SecretUrl,
        /// What went wrong.
        source: CoordError,
    },
    /// The SQL side could not be reached or migrated.
    #[error("cannot use the database {url}")]
    Database {
        /// The database URL (password hidden when shown).
        url: SecretUrl,
        /// What went wrong.
        source: DbError,
    },
    /// The notification bus or instance registry could not be started.
    #[error("cannot start the notification bus")]
    Fleet {
        /// What went wrong.
        source: CoordError,
    },
    /// The rate limiter's backend could not be reached.
    #[error("cannot start rate limiting")]
    RateLimits {
        /// What went wrong.
        source: CoordError,
    },
    /// The Redis holding the BullMQ queues did not answer.
    #[error("cannot reach the BullMQ Redis at {url}")]
    BullMq {
        /// The Redis URL (password hidden when shown).
        url: SecretUrl,
        /// What went wrong.
        source: CoordError,
    },
    /// The Redis keeping the sign-in sessions did not answer.
    #[error("cannot keep sign-in sessions in Redis at {url}")]
    Sessions {
        /// The Redis URL (password hidden when shown).
        url: SecretUrl,
        /// What went wrong.
        source: coord::sessions::SessionError,
    },
    /// The first admin from the environment could not be created.
    #[error("cannot create the first admin")]
    FirstAdmin {
        /// What went wrong.
        source: UserError,
    },
    /// The listen address is invalid or taken.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// ` (reason)` after the database URL, when there is a reason.
fn hint_suffix(hint: &Option<Box<str>>) -> String {
    hint.as_deref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default()
}

/// Connects only the queue backend the settings name: what a one-shot
/// command such as `enqueue` needs.
pub async fn connect_queues(settings: &Settings) -> Result<Queues, StartupError> {
    Ok(connect_backend(settings).await?.0)
}

/// Opens (and migrates) the embedded deployment's SQLite file, the way
/// both the server and the `user` commands need it.
async fn open_embedded(settings: &Settings) -> Result<SqlBackend, StartupError> {
    let url = &settings.database_url;
    SqlBackend::open(url.expose())
        .await
        .map_err(|source| StartupError::Embedded {
            url: url.clone(),
            hint: crate::system::storage_hint::explain_open_error(url.expose(), &source)
                .map(Into::into),
            source,
        })
}

/// Connects the queue backend and, in the embedded deployment, hands back
/// its SQLite pool so the server's tables share the same file.
async fn connect_backend(settings: &Settings) -> Result<(Queues, Option<Database>), StartupError> {
    match &settings.redis_url {
        None => {
            let backend = open_embedded(settings).await?;
            let db = Database::Sqlite(backend.pool().clone());
            let backend: Arc<dyn QueueBackend> = Arc::new(backend);
            Ok((Queues::new(backend), Some(db)))
        }
        Some(url) => {
            let backend = RedisBackend::connect(url.expose(), &settings.redis_prefix)
                .await
                .map_err(|source| StartupError::Redis {
                    url: url.clone(),
                    source,
                })?;
            let backend: Arc<dyn QueueBackend> = Arc::new(backend);
            Ok((Queues::new(backend), None))
        }
    }
}

/// Connects only the server's SQL database and brings its schema up to
/// date: what the `user` commands need. Redis is not contacted; in the
/// embedded deployment the file is opened as the server opens it, so the
/// queue tables are migrated too and a later `serve` finds them in place.
pub async fn connect_database(settings: &Settings) -> Result<Database, StartupError> {
    let url = &settings.database_url;
    // The embedded deployment's file is opened as the server opens it; any
    // other database (PostgreSQL, or SQLite next to Redis) holds only the
    // server's tables.
    let embedded = settings.redis_url.is_none() && url.scheme() == "sqlite";
    let db = if embedded {
        Database::Sqlite(open_embedded(settings).await?.pool().clone())
    } else {
        Database::connect(url)
            .await
            .map_err(|source| StartupError::Database {
                url: url.clone(),
                source,
            })?
    };
    db.migrate()
        .await
        .map_err(|source| StartupError::Database {
            url: url.clone(),
            source,
        })?;
    Ok(db)
}

/// The accounts in `db`, with sign-in sessions in Redis when Redis is
/// configured (so that every dashboard instance on it shares sign-ins, and
/// revoking on one ends the session on all), else in `db` too.
pub async fn user_store(settings: &Settings, db: Database) -> Result<UserStore, StartupError> {
    let users = UserStore::new(db)
        .with_outage_grace(settings.auth.outage_grace)
        .with_session_ttl(settings.auth.session_ttl);
    let Some(url) = &settings.redis_url else {
        return Ok(users);
    };
    let sessions = coord::sessions::RedisSessions::connect(url.expose(), &settings.redis_prefix)
        .await
        .map_err(|source| StartupError::Sessions {
            url: url.clone(),
            source,
        })?;
    Ok(users.with_sessions(Arc::new(sessions)))
}

/// Creates the configured first admin if the database has no users yet,
/// so a deployment can be provisioned from its environment alone.
async fn create_first_admin(settings: &Settings, users: &UserStore) -> Result<(), StartupError> {
    let Some(admin) = &settings.first_admin else {
        return Ok(());
    };
    let created = users
        .add_first_admin(&admin.name, &admin.password)
        .await
        .map_err(|source| StartupError::FirstAdmin { source })?;
    if created {
        tracing::info!(user = %admin.name, "created the first admin from the environment");
    }
    Ok(())
}

/// Connects everything the server uses, brings the SQL schema up to date
/// and records this installation's first start.
pub async fn connect(settings: &Settings) -> Result<AppState, StartupError> {
    let (queues, shared_db) = connect_backend(settings).await?;
    let url = &settings.database_url;
    let db_error = |source| StartupError::Database {
        url: url.clone(),
        source,
    };
    let db = match shared_db {
        Some(db) => db,
        None => Database::connect(url).await.map_err(db_error)?,
    };
    db.migrate().await.map_err(db_error)?;
    let first = db.record_first_start(now_ms()).await.map_err(db_error)?;
    let users = user_store(settings, db.clone()).await?;
    create_first_admin(settings, &users).await?;
    tracing::info!(
        backend = queues.kind().as_str(),
        database = db.kind(),
        first_started_at_ms = %first,
        "connected"
    );
    let redis = settings
        .redis_url
        .as_ref()
        .map(|url| (url.expose(), settings.redis_prefix.as_str()));
    // Built in dependency order: every part the hub reads exists before
    // it, with a `Wake` to ask it for a snapshot; alerting, which reads the
    // hub's snapshots, gets its state channel's sending half afterwards.
    let wake = Wake::default();
    let schedules = crate::schedules::Schedules::new(queues.clone(), settings.scheduler);
    // The Redis page reads the queue backend's Redis, or else BullMQ's.
    let redis_watch = settings
        .redis_url
        .as_ref()
        .or(settings.bullmq.as_ref().map(|b| &b.url))
        .map(|url| crate::redis_health::RedisWatch::new(url.expose()))
        .transpose()
        .map_err(|source| StartupError::Fleet { source })?;
    let channels = Channels::start(redis, wake.clone())
        .await
        .map_err(|source| StartupError::Fleet { source })?;
    let instances = Instances::start(redis, &db)
        .await
        .map_err(|source| StartupError::Fleet { source })?;
    // Unique per server, also for several servers in one process (tests).
    let holder = format!(
        "{}-{:04x}",
        coord::instance::InstanceId::from_config(None)
            .map(|id| id.to_string())
            .unwrap_or_else(|_| "switchyard".to_owned()),
        rand::random::<u16>()
    );
    let caches = crate::cache::Caches::start(
        redis,
        channels.bus.clone(),
        coord::instance::InstanceId::new(format!("dashboard-{holder}"))
            .map_err(|source| StartupError::Fleet { source })?,
    )
    .await
    .map_err(|source| StartupError::Fleet { source })?;
    let ratelimits = RateLimits::start(redis, &settings.rate_limits)
        .await
        .map_err(|source| StartupError::RateLimits { source })?;
    let (alerts_view, alerts_state) = crate::alerts::runner::view_channel();
    let hub = Hub::start_with(
        queues.clone(),
        Thresholds {
            busy_active: settings.busy_active,
            warning_failure_rate: settings.warning_failure_rate,
        },
        Sources {
            channels: Some(channels.clone()),
            instances: Some(instances.clone()),
            ratelimits: Some(ratelimits.clone()),
            workers: Some(crate::workers::Workers::new(queues.clone())),
            schedules: Some(schedules.clone()),
            redis: redis_watch.clone(),
            alerts: Some(alerts_state.clone()),
            history: last_hour(&db).await,
        },
        wake,
    );
    let alerts = Alerting::start(
        db.clone(),
        hub.clone(),
        queues.clone(),
        &settings.alerts,
        holder,
        alerts_view,
    )
    .await
    .map_err(db_error)?;
    crate::metrics::start(
        db.clone(),
        &hub,
        settings.metrics_retention,
        settings.metrics_queues,
    );
    let metrics = Exporter::start(
        &hub,
        Some(alert_states(alerts_state)),
        settings.metrics_queues,
    );
    let audit = AuditLog::new(db.clone());
    let bullmq =
        match &settings.bullmq {
            Some(bull) => Some(BullMonitor::start(bull.clone()).await.map_err(|source| {
                StartupError::BullMq {
                    url: bull.url.clone(),
                    source,
                }
            })?),
            None => None,
        };
    let streams = Streams::new(
        hub.clone(),
        queues.clone(),
        settings.listing_value_bytes,
        bullmq.clone(),
    );
    let queues_for_workers = queues.clone();
    Ok(AppState {
        queues,
        db,
        hub,
        streams,
        settings: Arc::new(settings.clone()),
        channels,
        instances,
        metrics,
        ratelimits,
        alerts,
        audit,
        users,
        sign_ins: Arc::default(),
        bullmq,
        workers: crate::workers::Workers::new(queues_for_workers),
        schedules,
        redis: redis_watch,
        caches,
    })
}

/// The pending and firing alerts by rule and the evaluation times, for
/// `/metrics`.
fn alert_states(view: watch::Receiver<Arc<AlertsView>>) -> crate::metrics::AlertSource {
    Arc::new(move || {
        let view = view.borrow();
        let times = view.evaluation;
        let quantiles = [("0.5", times.p50_seconds), ("0.99", times.p99_seconds)]
            .into_iter()
            .filter_map(|(q, value)| Some((q, value?)))
            .collect();
        crate::metrics::AlertFigures {
            states: view
                .active
                .iter()
                .map(|a| (a.rule.clone(), a.status.as_str()))
                .collect(),
            evaluation: crate::metrics::prometheus::Summary {
                count: times.count,
                sum: times.sum_seconds,
                quantiles,
            },
        }
    })
}

/// The last hour's throughput from the history for the hub; on error or
/// timeout the hour starts empty (as it did before there was a history),
/// which is no reason to refuse to start.
async fn last_hour(db: &Database) -> crate::live::Backfill {
    let read = crate::metrics::charts::last_hour(db, now_ms());
    match tokio::time::timeout(crate::metrics::BACKFILL_TIMEOUT, read).await {
        Ok(Ok(history)) => history,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot read the last hour's throughput history");
            crate::live::Backfill::new()
        }
        Err(_) => {
            tracing::warn!(
                "the last hour's throughput history was not read within {:?}",
                crate::metrics::BACKFILL_TIMEOUT
            );
            crate::live::Backfill::new()
        }
    }
}

/// Connections the kernel queues before the server accepts them. Every
/// open page holds a live stream and reconnects after a restart, so
/// hundreds arrive at once; the default of 128 made the rest retry a second
/// later (see docs/PERFORMANCE.md).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` (`host:port`, resolved) with [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(resolved) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the address resolves to nothing",
        )
    }))
}

/// A connected, bound server that has not started serving yet.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
}

impl Application {
    /// Connects (see [`connect`]) and binds the listen address.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let state = connect(settings).await?;
        Self::bind(settings, state).await
    }

    /// Binds the listen address for already-connected state.
    pub async fn bind(settings: &Settings, state: AppState) -> Result<Self, StartupError> {
        let bind_error = |source| StartupError::Bind {
            addr: settings.listen.clone(),
            source,
        };
        let listener = listen(settings.listen.as_str()).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            address,
            state,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The base URL to print or to point a client at.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The connected state, for the demo's producers and workers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "serving");
        let hub = self.state.hub.clone();
        crate::system::readiness::start(self.state.clone());
        crate::search::start_indexer(self.state.queues.clone(), hub.closed());
        // Fires due schedules while the server serves; dropped after.
        let _scheduler = self.state.schedules.start_scheduler();
        // Live streams never end on their own; closing the hub ends them so
        // graceful shutdown only waits for ordinary requests.
        let shutdown = async move {
            shutdown.await;
            hub.close();
        };
        let limits = self.state.settings.connections.clone();
        crate::http::serve::serve(self.listener, router(self.state), limits, shutdown).await
    }
}

/// A server running on a background task: what tests (and embedding code)
/// use to get a live server and its address in one call.
pub struct RunningApp {
    /// The address it serves on.
    pub address: SocketAddr,
    /// Its queues and database, for setting up and checking test data.
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "server ended with an error"),
            Err(err) => tracing::warn!(error = %err, "server task failed"),
        }
    }
}

/// Connects, binds and serves in the background.
pub async fn spawn_app(settings: &Settings) -> Result<RunningApp, StartupError> {
    let app = Application::build(settings).await?;
    let address = app.address();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Ok(RunningApp {
        address,
        state,
        stop: Some(stop),
        task,
    })
}
