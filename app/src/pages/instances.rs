//! The instances page (`/instances`): the database's synced-state version
//! and hash, and one row per instance saying whether it heartbeats, how
//! far behind it is and whether its state matches. Rows an operator must
//! look at (stale, gone, drifted) are highlighted.

use leptos::prelude::*;

use crate::format::{format_age, format_count};
use crate::vm::instances::{InstanceCacheRow, InstanceRow, InstancesVm};
use crate::vm::session::PageCtx;
use crate::widgets::shell::{Fragment, Frame, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the instances page.
pub const INSTANCES_EVENTS: &str = "/events/instances";

/// The instances page (`/instances`): one row per instance against the
/// database's latest version and hash. Read-only, so it reloads itself
/// without scripts.
pub fn render_instances_page(vm: &InstancesVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Instances · Switchyard", Section::Instances)
        .live(INSTANCES_EVENTS)
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="instances-page">
                <h1>"Instances"</h1>
                <InstancesRegion vm=vm />
            </section>
        }
    })
}

/// The live regions of the instances page: one, `instances`, holding the
/// database line, the table and its legend.
pub fn instances_fragments(vm: &InstancesVm) -> Vec<Fragment> {
    vec![fragment(
        "instances",
        view! { <InstancesRegion vm=vm.clone() /> },
    )]
}

/// Hex digits of a state hash shown in the table: enough to tell two
/// hashes apart by eye, the full hash is in the cell's tooltip.
const SHORT_HASH: usize = 8;

/// Characters of a last error shown in the table before it is cut; the
/// full text is in the cell's tooltip.
const ERROR_CHARS: usize = 80;

/// A span of time as an operator reads it: `850 ms`, `4.2 s`,
/// `3 min 5 s`, `2 h 10 min`, `3 d 4 h` (uptimes run to days, lags to
/// milliseconds, and both must stay short).
pub(crate) fn format_span(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if secs < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600)
    }
}

/// A configured threshold in a legend: whole seconds as set (`15 s`, not
/// `15.0 s`), anything finer as a span.
pub(crate) fn format_threshold(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format_span(ms)
    }
}

/// How far behind the database an instance is: `up to date`, or
/// `3 changes · 4.2 s`; `–` when the database did not answer.
pub(crate) fn format_lag(changes: Option<i64>, ms: Option<i64>) -> String {
    match changes {
        None => "–".into(),
        Some(n) if n <= 0 => "up to date".into(),
        Some(n) => {
            let noun = if n == 1 { "change" } else { "changes" };
            let n = format_count(n.unsigned_abs());
            match ms {
                Some(ms) => format!("{n} {noun} · {}", format_span(ms)),
                None => format!("{n} {noun}"),
            }
        }
    }
}

/// The first hex digits of a hash, as `git` shows a commit.
fn short_hash(hash: &str) -> String {
    hash.chars().take(SHORT_HASH).collect()
}

/// The first `max` characters of `text`, with an ellipsis when cut (cut on
/// a character boundary, never inside a multi-byte character).
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The whole live region of `/instances`: the database line, the table
/// and its legend, or a hint when no instance heartbeats.
#[component]
fn InstancesRegion(vm: InstancesVm) -> impl IntoView {
    let (status_class, status_text) = match vm.latest_version {
        Some(version) => {
            let hash = vm
                .latest_hash
                .as_deref()
                .map(short_hash)
                .unwrap_or_else(|| "unknown".into());
            (
                "status ok",
                format!("Database at version {version}, hash {hash}"),
            )
        }
        None => (
            "status down",
            "Database unreachable: instances cannot be compared with it.".to_string(),
        ),
    };
    let stale_after = format_threshold(vm.stale_after_ms);
    let body = if vm.instances.is_empty() {
        view! {
            <Empty test_id="empty-state">
                "No instances heartbeat yet — start a Switchyard instance, or run "
                <code>"switchyard demo"</code>
            </Empty>
        }
        .into_any()
    } else {
        let latest = vm.latest_version;
        let db_known = latest.is_some();
        let legend = format!(
            "Stale after {stale_after} without a heartbeat; gone once its heartbeat expires. Drifted: at the latest version, with a different state hash."
        );
        view! {
            <Table
                class="instances"
                test_id="instances-table"
                head={view! {
                    <tr>
                        <th scope="col">"Instance"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Last error"</th>
                        <th scope="col" class="num">
                            "Heartbeat"
                        </th>
                        <th scope="col" class="num">
                            "Applied / latest"
                        </th>
                        <th scope="col" class="num">
                            "Lag"
                        </th>
                        <th scope="col">"State hash"</th>
                        <th scope="col">
                            <abbr title="The cache namespaces it reports, and whether its copy agrees with the other instances holding the same keys">
                                "Caches"
                            </abbr>
                        </th>
                        <th scope="col">"Bus"</th>
                        <th scope="col">"Role · version"</th>
                        <th scope="col" class="num">
                            "Uptime"
                        </th>
                        <th scope="col" class="num">
                            <abbr title="received · skipped as its own · processed · malformed">
                                "Messages"
                            </abbr>
                        </th>
                        <th scope="col" class="num">
                            "Batches"
                        </th>
                        <th scope="col" class="num">
                            "Last reload"
                        </th>
                    </tr>
                }}
            >
                {vm
                    .instances
                    .into_iter()
                    .map(|row| view! { <InstanceTableRow row latest db_known /> })
                    .collect_view()}
            </Table>
            <p class="legend" data-test-id="instances-legend">
                {legend}
            </p>
        }
        .into_any()
    };
    view! {
        <div id="instances">
            <p
                class=status_class
                data-test-id="database-status"
                data-health="known"
                data-unknown="Database: unknown"
            >
                <span class="dot" aria-hidden="true"></span>
                {status_text}
            </p>
            {body}
        </div>
    }
}

/// One instance's row, with `data-test-id`s on the cells tests and
/// scripts read, so they do not depend on column order.
#[component]
fn InstanceTableRow(row: InstanceRow, latest: Option<i64>, db_known: bool) -> impl IntoView {
    let attention = row.needs_attention().then_some("attention");
    let latest = latest.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    let (hash_class, hash_label) = match row.hash_matches {
        Some(true) => ("badge matches", "matches"),
        Some(false) => ("badge drifted", "drifted"),
        None if db_known => ("badge behind", "behind"),
        None => ("badge unknown", "unknown"),
    };
    let malformed_class = if row.malformed > 0 {
        "counter flagged"
    } else {
        "counter"
    };
    let reload = row
        .last_reload_ms
        .filter(|ms| ms.is_finite())
        .map(|ms| format!("{ms:.1} ms"))
        .unwrap_or_else(|| "–".into());
    let (bus_class, bus_label) = if row.bus_connected {
        ("badge bus-connected", "connected")
    } else if row.polling {
        ("badge bus-polling", "polling")
    } else {
        ("badge bus-down", "disconnected")
    };
    let caches = InstanceCaches(InstanceCachesProps {
        caches: row.caches.clone(),
        more: row.more_caches,
    });
    let error = row.last_error.map(|e| {
        let short = truncate(&e, ERROR_CHARS);
        view! {
            <span class="error-text" title=e>
                {short}
            </span>
        }
    });
    view! {
        <tr class=attention data-test-id=format!("instance-row-{}", row.id)>
            <th scope="row">
                <code>{row.id.clone()}</code>
            </th>
            <td>
                <span
                    class=format!("badge {}", row.state.class())
                    data-test-id="instance-state"
                    data-health="known"
                >
                    {row.state.label()}
                </span>
            </td>
            <td class="last-error">{error}</td>
            <td class="num">{format_age(row.heartbeat_age_ms)}</td>
            <td class="num" data-test-id="instance-version">
                {format!("{} / {latest}", row.applied_version)}
            </td>
            <td class="num" data-test-id="instance-lag">
                {format_lag(row.lag_changes, row.lag_ms)}
            </td>
            <td class="hash" data-test-id="instance-hash">
                <code title=row.state_hash.clone()>{short_hash(&row.state_hash)}</code>
                " "
                <span class=hash_class data-health="known">
                    {hash_label}
                </span>
            </td>
            <td class="caches" data-test-id="instance-caches">
                {caches}
            </td>
            <td>
                <span class=bus_class data-health="known">
                    {bus_label}
                </span>
            </td>
            <td>{format!("{} · {}", row.role, row.version)}</td>
            <td class="num">{format_span(row.uptime_ms)}</td>
            <td class="num counters" data-test-id="instance-counters">
                <span class="counter" title="received">
                    {format_count(row.received)}
                </span>
                " · "
                <span class="counter" title="skipped as its own">
                    {format_count(row.skipped_self)}
                </span>
                " · "
                <span class="counter" title="processed">
                    {format_count(row.processed)}
                </span>
                " · "
                <span class=malformed_class title="malformed">
                    {format_count(row.malformed)}
                </span>
            </td>
            <td class="num">{format_count(row.batches)}</td>
            <td class="num">{reload}</td>
        </tr>
    }
}

/// The cache namespaces of one instance, each linking to its Cache page
/// with this instance's agreement badge; `–` when it reports none.
#[component]
fn InstanceCaches(caches: Vec<InstanceCacheRow>, more: usize) -> impl IntoView {
    if caches.is_empty() {
        return view! { "–" }.into_any();
    }
    let items = caches
        .into_iter()
        .map(|cache| {
            view! {
                <li data-test-id=format!("instance-cache-{}", cache.namespace)>
                    <a href=cache.href>{cache.namespace.clone()}</a>
                    " "
                    <span class=cache.agreement.class() data-health="known">
                        {cache.agreement.label()}
                    </span>
                </li>
            }
        })
        .collect_view();
    let more = (more > 0).then(|| {
        view! {
            <li class="muted" data-test-id="instance-caches-more">
                <a href="/cache">{format!("+{} more", format_count(more as u64))}</a>
            </li>
        }
    });
    view! {
        <ul class="plain">
            {items}
            {more}
        </ul>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::vm::instances::CacheAgreement;

    #[test]
    fn instances_page_is_a_full_live_document() {
        let mut synced = instance("api-1", InstanceState::Live, Some(true));
        synced.applied_version = 42;
        synced.lag_changes = Some(0);
        synced.lag_ms = None;
        let vm = instances_vm(vec![synced, instance("api-2", InstanceState::Live, None)]);
        let html = render_instances_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Instances · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/instances""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(
            html.contains("Database at version 42, hash fedcba98"),
            "{html}"
        );
        assert!(
            html.contains("Stale after 15 s without a heartbeat"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="instance-row-api-1""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="instance-row-api-2""#),
            "{html}"
        );
        assert!(html.contains(r#"class="badge live""#), "{html}");
        assert!(html.contains(">42 / 42<"), "{html}");
        assert!(html.contains(">40 / 42<"), "{html}");
        assert!(html.contains(">up to date<"), "{html}");
        assert!(html.contains(">2 changes · 4.2 s<"), "{html}");
        assert!(html.contains(">01234567<"), "{html}");
        assert!(!html.contains(">0123456789abcdef<"), "{html}");
        assert!(html.contains(">matches<"), "{html}");
        assert!(html.contains(">behind<"), "{html}");
        assert!(html.contains("1,204"), "{html}");
        assert!(
            html.contains(r#"data-test-id="instance-counters""#),
            "{html}"
        );
        assert!(html.contains(">3 h 5 min<"), "{html}");
        assert!(html.contains(">4 s ago<"), "{html}");
        assert!(
            html.contains(">1.2 ms<") || html.contains(">1.3 ms<"),
            "{html}"
        );
        assert!(html.contains(">connected<"), "{html}");
        assert!(!html.contains("attention"), "all healthy: {html}");
        let fragments = instances_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["instances"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn stale_gone_and_drifted_instances_are_highlighted() {
        let mut polling = instance("api-4", InstanceState::Live, Some(true));
        polling.bus_connected = false;
        polling.polling = true;
        let html = render_instances_page(
            &instances_vm(vec![
                instance("api-1", InstanceState::Stale, None),
                instance("api-2", InstanceState::Live, Some(false)),
                instance("api-3", InstanceState::Gone, None),
                polling,
            ]),
            &PAGE,
        );
        assert_eq!(html.matches(r#"class="attention""#).count(), 3, "{html}");
        assert!(
            html.contains(r#"<tr data-test-id="instance-row-api-4" class="">"#),
            "{html}"
        );
        assert!(html.contains(r#"class="badge stale""#), "{html}");
        assert!(html.contains(r#"class="badge gone""#), "{html}");
        assert!(html.contains(r#"class="badge drifted""#), "{html}");
        assert!(html.contains(">Stale<"), "{html}");
        assert!(html.contains(">Gone<"), "{html}");
        assert!(html.contains(">drifted<"), "{html}");
        assert!(html.contains(">polling<"), "{html}");
    }

    #[test]
    fn instances_page_escapes_ids_and_errors_and_truncates_errors() {
        let mut row = instance(HOSTILE, InstanceState::Live, Some(true));
        row.last_error = Some(format!("{HOSTILE}{}", "x".repeat(200)));
        row.malformed = 3;
        let html = render_instances_page(&instances_vm(vec![row]), &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("…</span>"), "{html}");
        assert!(!html.contains(&format!("{}<", "x".repeat(200))), "{html}");
        assert!(html.contains(r#"class="counter flagged""#), "{html}");
    }

    #[test]
    fn instances_page_without_instances_or_database() {
        let html = render_instances_page(&instances_vm(vec![]), &PAGE);
        assert!(html.contains("No instances heartbeat yet"), "{html}");
        assert!(html.contains(r#"<div id="instances""#), "{html}");
        let vm = InstancesVm {
            latest_version: None,
            latest_hash: None,
            stale_after_ms: 1_500,
            instances: vec![instance("api-1", InstanceState::Live, None)],
        };
        let html = render_instances_page(&vm, &PAGE);
        assert!(html.contains("Database unreachable"), "{html}");
        assert!(html.contains(">40 / ?<"), "{html}");
        assert!(html.contains(">unknown<"), "{html}");
        assert!(html.contains("Stale after 1.5 s"), "{html}");
    }

    #[test]
    fn each_instance_lists_its_cache_namespaces_with_a_badge_escaped_and_capped() {
        let cache = |namespace: &str, agreement| InstanceCacheRow {
            namespace: namespace.into(),
            href: format!("/cache?ns={}", crate::format::encode_query(namespace)),
            agreement,
        };
        let mut api1 = instance("api-1", InstanceState::Live, Some(true));
        api1.caches = vec![
            cache("patients", CacheAgreement::NotComparable),
            cache("search-params", CacheAgreement::Matches),
        ];
        let mut api2 = instance("api-2", InstanceState::Live, Some(true));
        api2.caches = vec![cache(HOSTILE, CacheAgreement::Drifted)];
        api2.more_caches = 7;
        let api3 = instance("api-3", InstanceState::Live, Some(true));
        let html = render_instances_page(&instances_vm(vec![api1, api2, api3]), &PAGE);
        assert!(html.contains(">Caches</abbr>"), "{html}");
        assert!(
            html.contains(r#"<a href="/cache?ns=search-params">search-params</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span data-health="known" class="badge matches">matches</span>"#),
            "{html}"
        );
        assert!(html.contains(">not comparable<"), "{html}");
        // A hostile namespace name is text, in the link and in its test id.
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains(r#"class="badge drifted""#), "{html}");
        assert!(html.contains(">+7 more</a>"), "{html}");
        // A drifted cache is worth a look, as a drifted state is.
        assert_eq!(html.matches(r#"class="attention""#).count(), 1, "{html}");
        assert!(
            html.contains(r#"<tr data-test-id="instance-row-api-2" class="attention">"#),
            "{html}"
        );
        // An instance without caches says so briefly.
        let api3 = html
            .split(r#"data-test-id="instance-row-api-3""#)
            .nth(1)
            .unwrap_or_default();
        assert!(
            api3.contains(r#"<td data-test-id="instance-caches" class="caches">–</td>"#),
            "{html}"
        );
    }
}
