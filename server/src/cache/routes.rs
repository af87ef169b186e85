//! `/cache`, `/events/cache`, `/api/cache` and the operator's
//! invalidations: the page and the API render the hub's figures (from the
//! instances' heartbeats, no cache read), and each invalidation is written
//! once ([`invalidate`]) with the form and the API as thin wrappers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, Response};
use coord::cache::CacheError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::vm::{self, CacheQuery};
use super::{CacheFigures, NamespaceFigures};
use crate::audit::{Actor, AuditEntry};
use crate::http::error::AppError;
use crate::http::extract::{Form, Json, Path, Query};
use crate::http::flash::{Flash, with_flash_cleared};
use crate::http::forms::redirect;
use crate::http::page::Page;
use crate::live::stream::{Events, Scope};
use crate::metrics::history::{self, Range, Series};
use crate::state::AppState;

/// The path of one namespace.
#[derive(Debug, Deserialize)]
pub struct NamespacePath {
    /// The namespace.
    pub ns: String,
}

fn range_of(query: &CacheQuery) -> Result<Range, AppError> {
    match query.range.as_deref() {
        None | Some("") => Ok(Range::Hour),
        Some(range) => range.parse().map_err(AppError::bad_request),
    }
}

/// Hits and misses of `ns` per bucket of `range` from the metrics
/// history (two reads of one subject), every bucket up to now; the last
/// hour also from the hub's `live` minutes, which hold the minutes the
/// sampler has not written yet (the current one, and those since start).
async fn chart(
    state: &AppState,
    subject: &str,
    instance: bool,
    range: Range,
    live: &[super::CacheMinute],
    now: i64,
) -> app::HitChartVm {
    let ns = subject;
    let app_range = crate::queues::vm::chart_range(range);
    let mut vm = app::HitChartVm {
        range: app_range,
        ..app::HitChartVm::default()
    };
    let names = if instance {
        (
            "cache_instance_hits_per_min",
            "cache_instance_requests_per_min",
        )
    } else {
        ("cache_hits_per_min", "cache_requests_per_min")
    };
    let (Some(hits), Some(requests)) = (Series::parse(names.0), Series::parse(names.1)) else {
        return vm;
    };
    let now_minute = history::minute_of(now);
    let read = async {
        tokio::try_join!(
            history::history(&state.db, hits, ns, range, now_minute),
            history::history(&state.db, requests, ns, range, now_minute),
        )
    };
    let (hits, requests) =
        match tokio::time::timeout(crate::metrics::CHART_READ_TIMEOUT, read).await {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, namespace = ns, "cache: cannot read the hit history");
                vm.error = Some("the database did not answer".into());
                return vm;
            }
            Err(_) => {
                vm.error = Some(format!(
                    "no answer within {:?}",
                    crate::metrics::CHART_READ_TIMEOUT
                ));
                return vm;
            }
        };
    let count = crate::metrics::charts::count;
    let first = range.first_bucket(now_minute);
    let width = range.bucket_minutes();
    let at = |rows: &[(i64, f64)], bucket: i64| {
        rows.iter()
            .find(|(b, _)| *b == bucket)
            .map_or(0, |(_, v)| count(*v))
    };
    let (mut all_hits, mut all_reads) = (0u64, 0u64);
    for i in 0..range.buckets() {
        let bucket = first + i * width;
        let (mut h, mut r) = (at(&hits, bucket), at(&requests, bucket));
        if range == Range::Hour
            && let Some(m) = live.iter().find(|m| m.minute_ms == bucket * 60_000)
            && m.requests > r
        {
            (h, r) = (m.hits, m.requests);
        }
        let r = r.max(h);
        all_hits += h;
        all_reads += r;
        vm.minutes.push(bucket * 60_000);
        vm.hits.push(h);
        vm.misses.push(r - h);
    }
    vm.summary = if all_reads == 0 {
        "no reads recorded".to_owned()
    } else {
        format!(
            "{:.1}% of {}",
            all_hits as f64 * 100.0 / all_reads as f64,
            app::counted(all_reads, "read", "reads")
        )
    };
    vm
}

/// `GET /cache?ns=&range=&offset=`.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    Flash(notice): Flash,
    Query(query): Query<CacheQuery>,
) -> Result<Response, AppError> {
    let range = range_of(&query)?;
    let snapshot = state.hub.current();
    let now = coord::time::now_ms();
    let found = query
        .ns()
        .and_then(|ns| snapshot.caches.as_deref()?.namespace(ns));
    let chart = match (query.ns(), query.instance()) {
        (Some(ns), None) => {
            let live = found.map(|ns| ns.minutes.clone()).unwrap_or_default();
            chart(&state, ns, false, range, &live, now).await
        }
        (Some(ns), Some(instance)) => {
            let live = found
                .and_then(|ns| ns.instances.iter().find(|i| i.instance == instance))
                .map(|i| i.minutes.clone())
                .unwrap_or_default();
            chart(&state, &format!("{ns}/{instance}"), true, range, &live, now).await
        }
        _ => app::HitChartVm::default(),
    };
    let vm = vm::page(
        snapshot.caches.as_deref(),
        &query,
        crate::queues::vm::chart_range(range),
        chart,
        now,
    );
    Ok(with_flash_cleared(
        Html(app::render_cache_page(&vm, notice.clone(), page.ctx())),
        notice.is_some(),
    ))
}

/// `GET /events/cache?ns=&range=&offset=`.
pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<CacheQuery>,
) -> Result<Events, AppError> {
    range_of(&query)?;
    Ok(state.streams.open(Scope::Cache { query }))
}

fn figures(state: &AppState) -> Result<std::sync::Arc<CacheFigures>, AppError> {
    state.hub.current().caches.clone().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the instances have not been read yet",
        )
    })
}

fn namespace_json(ns: &NamespaceFigures, now: i64, with_instances: bool) -> Value {
    let mut value = json!({
        "namespace": ns.name,
        "backend": ns.backend,
        "instances": ns.instances.len(),
        "liveInstances": ns.instances.iter().filter(|i| i.is_live()).count(),
        "hitRatio": ns.hit_ratio(),
        "lastMinuteHitRatio": ns.recent_hit_ratio(now, 1).map(|(r, _)| r),
        "requestsPerSecond": ns.requests_per_s(),
        "loadP95Ms": ns.load_p95_ms(),
        "entries": ns.sum(|s| s.entries),
        "bytes": ns.sum(|s| s.bytes),
        "evictions": ns.sum(|s| s.evictions),
        "invalidationsSent": ns.sum(|s| s.invalidations_sent),
        "invalidationsReceived": ns.sum(|s| s.invalidations_received),
        "totals": {
            "hitsLocal": ns.totals.hits_local,
            "hitsShared": ns.totals.hits_shared,
            "misses": ns.totals.misses,
        },
        "agreement": match &ns.agreement {
            super::Agreement::Matches { compared } => json!({"state": "matches", "compared": compared}),
            super::Agreement::Drifted { instances } => json!({"state": "drifted", "instances": instances}),
            super::Agreement::NotComparable => json!({"state": "notComparable"}),
        },
        "degraded": ns.degraded().iter().map(|i| i.instance.clone()).collect::<Vec<_>>(),
    });
    if with_instances && let Value::Object(map) = &mut value {
        map.insert(
            "instanceFigures".into(),
            json!(
                ns.instances
                    .iter()
                    .take(app::INSTANCES_SHOWN)
                    .map(|i| json!({
                        "instance": i.instance,
                        "status": i.status,
                        "requestsPerSecond": i.requests_per_s,
                        "drifted": i.drifted,
                        "stats": i.stats,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
        map.insert(
            "minutes".into(),
            json!(
                ns.minutes
                    .iter()
                    .map(|m| json!({"minute": m.minute_ms, "hits": m.hits, "requests": m.requests}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    value
}

/// `GET /api/cache?offset=`: a page of namespaces (50) with their figures
/// over every instance.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<CacheQuery>,
) -> Result<Json<Value>, AppError> {
    let figures = figures(&state)?;
    let now = coord::time::now_ms();
    Ok(Json(json!({
        "namespaces": figures
            .namespaces
            .iter()
            .skip(query.offset)
            .take(app::NAMESPACES_PER_PAGE)
            .map(|ns| namespace_json(ns, now, false))
            .collect::<Vec<_>>(),
        "total": figures.namespaces.len(),
        "offset": query.offset,
        "limit": app::NAMESPACES_PER_PAGE,
        "omitted": figures.omitted,
    })))
}

/// `GET /api/cache/{ns}`: one namespace with each instance's figures (at
/// most 50) and its last hour per minute.
pub async fn show(
    State(state): State<AppState>,
    Path(NamespacePath { ns }): Path<NamespacePath>,
) -> Result<Json<Value>, AppError> {
    let figures = figures(&state)?;
    let found = figures.namespace(&ns).ok_or_else(|| {
        AppError::not_found(format!("no instance reports the cache namespace {ns:?}"))
    })?;
    Ok(Json(namespace_json(found, coord::time::now_ms(), true)))
}

/// What an invalidation drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One key.
    Key(String),
    /// The whole namespace.
    All,
}

fn cache_error(err: CacheError) -> AppError {
    match err {
        CacheError::InvalidNamespace { .. } | CacheError::InvalidKey { .. } => {
            AppError::bad_request(err.to_string())
        }
        CacheError::Publish(_) => {
            tracing::error!(error = %err, "cache invalidation not published");
            AppError::new(
                StatusCode::BAD_GATEWAY,
                "dropped from the shared tier, but the instances could not be told (the bus did not answer): their local copies stay until they expire; try again",
            )
        }
        other => {
            tracing::error!(error = %other, "cache invalidation failed");
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the shared cache tier could not be reached; nothing was invalidated",
            )
        }
    }
}

/// Drops a key or a whole namespace from the shared tier and tells every
/// instance (operator), recorded in the audit log. Says what was done.
pub async fn invalidate(
    state: &AppState,
    actor: &Actor,
    ns: &str,
    target: Target,
) -> Result<String, AppError> {
    let (action, subject) = match &target {
        Target::Key(key) => ("cache.invalidate", format!("{ns}/{key}")),
        Target::All => ("cache.invalidate_all", ns.to_owned()),
    };
    let entry = AuditEntry::new(actor, action, "cache", &subject);
    let result = async {
        match target {
            Target::Key(key) => {
                let key = key.trim_end_matches(['\r', '\n']).to_owned();
                state
                    .caches
                    .admin
                    .invalidate(ns, &key)
                    .await
                    .map_err(cache_error)?;
                Ok(format!(
                    "Invalidated {key} in {ns}: dropped from the shared tier, every instance told."
                ))
            }
            Target::All => {
                let removed = state
                    .caches
                    .admin
                    .invalidate_all(ns)
                    .await
                    .map_err(cache_error)?;
                Ok(format!(
                    "Invalidated namespace {ns}: {} dropped from the shared tier, every instance told.",
                    app::counted(removed, "entry", "entries")
                ))
            }
        }
    }
    .await;
    state.audit.outcome(entry, result).await
}

/// A form's or a body's key.
#[derive(Debug, Deserialize)]
pub struct KeyFields {
    /// The key to drop.
    #[serde(default)]
    pub key: String,
    /// The page to return to (forms only).
    #[serde(default)]
    pub back: Option<String>,
}

fn back_of(back: Option<String>, ns: &str) -> String {
    crate::http::forms::ActionFields {
        back,
        ..Default::default()
    }
    .back_or(format!("/cache?ns={}", app::encode_query(ns)))
}

/// `POST /cache/{ns}/invalidate` (operator).
pub async fn invalidate_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(NamespacePath { ns }): Path<NamespacePath>,
    Form(fields): Form<KeyFields>,
) -> Result<Response, AppError> {
    let told = invalidate(&state, &actor, &ns, Target::Key(fields.key)).await?;
    Ok(redirect(&back_of(fields.back, &ns), &told))
}

/// `POST /api/cache/{ns}/invalidate` (operator), `{"key": "…"}`.
pub async fn invalidate_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(NamespacePath { ns }): Path<NamespacePath>,
    Json(fields): Json<KeyFields>,
) -> Result<Json<Value>, AppError> {
    let told = invalidate(&state, &actor, &ns, Target::Key(fields.key.clone())).await?;
    Ok(Json(
        json!({"namespace": ns, "key": fields.key, "done": told}),
    ))
}

/// Fields of the namespace form.
#[derive(Debug, Default, Deserialize)]
pub struct BackField {
    /// The page to return to.
    #[serde(default)]
    pub back: Option<String>,
}

/// `POST /cache/{ns}/invalidate-all` (operator).
pub async fn invalidate_all_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(NamespacePath { ns }): Path<NamespacePath>,
    Form(fields): Form<BackField>,
) -> Result<Response, AppError> {
    let told = invalidate(&state, &actor, &ns, Target::All).await?;
    Ok(redirect(&back_of(fields.back, &ns), &told))
}

/// `POST /api/cache/{ns}/invalidate-all` (operator).
pub async fn invalidate_all_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(NamespacePath { ns }): Path<NamespacePath>,
) -> Result<Json<Value>, AppError> {
    let told = invalidate(&state, &actor, &ns, Target::All).await?;
    Ok(Json(json!({"namespace": ns, "done": told})))
}
