//! The overview (`/`): backend health, totals across queues, the alerts
//! slot and per-queue throughput charts drawn as server-rendered SVG (no
//! charting script to load).

use leptos::prelude::*;

use super::queues::QueueTable;
use crate::format::{counted, format_count};
use crate::vm::glance::{GlanceVm, SILENT_MINUTES};
use crate::vm::queues::{ChartRange, ClusterVm, OverviewVm, STATES, ThroughputVm};
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series, stacked_peak};
use crate::widgets::health::HealthRegion;
use crate::widgets::shell::{Fragment, Frame, Section, document, fragment};
use crate::widgets::table::{Empty, Table};

/// The live stream of the overview page.
pub const OVERVIEW_EVENTS: &str = "/events/overview";

/// The overview's stream for a chart range: the page's own `?range=`, so
/// the stream knows whether the throughput region is the live hour (kept
/// current) or a span read from history (left as rendered).
pub fn overview_events(range: ChartRange) -> String {
    match range {
        ChartRange::Hour => OVERVIEW_EVENTS.to_string(),
        other => format!("{OVERVIEW_EVENTS}?range={}", other.as_str()),
    }
}

/// The overview served at `/`: backend health, totals across queues, the
/// alerts slot and per-queue throughput charts over the range picked.
pub fn render_overview_page(vm: &OverviewVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let heading = format!("Throughput, {}", vm.range.title());
    let frame = Frame::new(overview_title(&vm), Section::Overview)
        .live(overview_events(vm.range))
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="overview">
                <h1>"Overview"</h1>
                <HealthRegion health=vm.health.clone() />
                <TotalsRegion vm=vm.clone() />
                <GlanceRegion glance=vm.glance.clone() />
                <AttentionRegion vm=vm.clone() />
                <ClusterRegion cluster=vm.cluster.clone() />
                <section class="alerts" data-test-id="alerts">
                    <h2>"Alerts"</h2>
                    <p class="muted">
                        "Firing alerts show in the banner at the top of every page; rules, webhook deliveries and history are on the "
                        <a href="/alerts">"Alerts page"</a>
                        "."
                    </p>
                </section>
                <div class="charts-head">
                    <h2 data-test-id="throughput-heading">{heading}</h2>
                    <RangeSelector current=vm.range />
                </div>
                <ThroughputRegion
                    charts=vm.charts.clone()
                    more=vm.charts_more
                    range=vm.range
                />
                <p>
                    <a href="/queues">"All queues →"</a>
                </p>
            </section>
        }
    })
}

/// The live regions of the overview. The throughput charts are one of
/// them only for the last hour: longer ranges come from history read when
/// the page is rendered, and a live hour must never replace them.
pub fn overview_fragments(vm: &OverviewVm) -> Vec<Fragment> {
    let mut fragments = vec![
        fragment(
            "health",
            view! { <HealthRegion health=vm.health.clone() /> },
        ),
        fragment("totals", view! { <TotalsRegion vm=vm.clone() /> }),
        fragment(
            "glance",
            view! { <GlanceRegion glance=vm.glance.clone() /> },
        ),
        fragment("attention", view! { <AttentionRegion vm=vm.clone() /> }),
        fragment(
            "cluster",
            view! { <ClusterRegion cluster=vm.cluster.clone() /> },
        ),
    ];
    if vm.range == ChartRange::Hour {
        fragments.push(fragment(
            "throughput",
            view! { <ThroughputRegion charts=vm.charts.clone() more=vm.charts_more /> },
        ));
    }
    fragments
}

/// The tab's title: the failed jobs across queues when there are any
/// ("34 failed · Switchyard"), so trouble shows from another tab. The
/// totals region carries it (`data-title`) for the page script.
fn overview_title(vm: &OverviewVm) -> String {
    match vm.totals.failed {
        0 => "Switchyard".to_owned(),
        n => format!("{} · Switchyard", counted(n, "failed", "failed")),
    }
}

/// Jobs per state over all queues, and the queues worth a look.
#[component]
fn TotalsRegion(vm: OverviewVm) -> impl IntoView {
    let title = overview_title(&vm);
    let queues = format!(
        "{} {}",
        format_count(vm.queue_count as u64),
        if vm.queue_count == 1 {
            "queue"
        } else {
            "queues"
        }
    );
    let more = (vm.warnings_more > 0).then(|| {
        view! {
            <a href="/queues?sort=failures" data-test-id="queue-warnings-more">
                {format!("and {} more", format_count(vm.warnings_more as u64))}
            </a>
        }
    });
    let warnings = (!vm.warnings.is_empty()).then(|| {
        view! {
            <p class="warnings" data-test-id="queue-warnings">
                "Failure rate above threshold: "
                {vm
                    .warnings
                    .into_iter()
                    .map(|name| {
                        let href = format!("/queues/{name}?state=failed");
                        view! {
                            <a class="badge warning" href=href>
                                {name}
                            </a>
                            " "
                        }
                    })
                    .collect_view()}
                {more}
            </p>
        }
    });
    view! {
        <div id="totals" data-title=title>
            <div class="totals" data-test-id="totals">
                {STATES
                    .iter()
                    .map(|(state, label)| {
                        let n = vm.totals.count(state);
                        let removed = vm.totals.completed_removed();
                        let kept = (*state == "completed" && removed > 0)
                            .then(|| {
                                view! {
                                    <span class="sub" data-test-id="completed-kept">
                                        {format!(
                                            "kept; {} in all",
                                            format_count(vm.totals.completed_total),
                                        )}
                                    </span>
                                }
                            });
                        view! {
                            <a
                                class=format!("total {state}")
                                href=total_href(state)
                                data-test-id=format!("total-{state}")
                            >
                                <span class="n">{format_count(n)}</span>
                                <span class="label">{*label}</span>
                                {kept}
                            </a>
                        }
                    })
                    .collect_view()}
            </div>
            <p class="muted">{queues}</p>
            {warnings}
        </div>
    }
}

/// Where a total leads: that state's jobs across queues (a search on the
/// state), or the queues ordered by it where a listing says more.
fn total_href(state: &str) -> String {
    match state {
        "waiting" => "/queues?sort=backlog".to_owned(),
        "completed" => "/queues?sort=throughput".to_owned(),
        other => format!("/search?q=state%3A{other}"),
    }
}

/// Every other capability on one line of cards: BullMQ, instances,
/// channels, rate limits and alerts, each with the figure that says
/// whether to look, linking to the view that shows it. A capability the
/// server does not run has no card.
#[component]
fn GlanceRegion(glance: GlanceVm) -> impl IntoView {
    let GlanceVm {
        bullmq,
        instances,
        channels,
        ratelimits,
        alerts,
    } = glance;
    let bullmq = bullmq.map(|b| {
        let class = tone(b.error.is_some() || b.failed > 0, false);
        let main = match &b.error {
            Some(_) => "unreachable".to_owned(),
            None if b.failed > 0 => counted(b.failed, "failed", "failed"),
            None => counted(b.queues, "queue", "queues"),
        };
        let detail = match b.error {
            Some(why) => why,
            None => format!(
                "{} · {} waiting · {} active",
                counted(b.queues, "queue", "queues"),
                format_count(b.waiting),
                format_count(b.active),
            ),
        };
        let href = if b.failed > 0 { "/bullmq?sort=failures" } else { "/bullmq" };
        view! { <GlanceCard title="BullMQ" href=href.to_owned() class main detail test_id="glance-bullmq" /> }
    });
    let instances = instances.map(|i| {
        let class = tone(i.drifted + i.stale > 0, i.behind > 0);
        let main = format!("{}/{} in sync", format_count(i.in_sync), format_count(i.present));
        let mut parts = Vec::new();
        for (n, word) in [(i.drifted, "drifted"), (i.behind, "behind"), (i.stale, "stale")] {
            if n > 0 {
                parts.push(format!("{} {word}", format_count(n)));
            }
        }
        let detail = if parts.is_empty() {
            "every instance matches the database".to_owned()
        } else {
            parts.join(" · ")
        };
        view! { <GlanceCard title="Instances" href="/instances".to_owned() class main detail test_id="glance-instances" /> }
    });
    let channels = channels.map(|c| {
        let class = tone(!c.connected, c.silent > 0);
        let main = if c.connected {
            format!("{:.1} messages/s", c.per_second)
        } else {
            "bus not connected".to_owned()
        };
        let detail = format!(
            "{} · {} silent for {SILENT_MINUTES} min",
            counted(c.channels, "channel", "channels"),
            format_count(c.silent),
        );
        view! { <GlanceCard title="Channels" href="/channels".to_owned() class main detail test_id="glance-channels" /> }
    });
    let ratelimits = ratelimits.map(|r| {
        let class = tone(r.degraded || r.blocked_keys > 0, r.rejected_per_min > 0);
        let main = format!("{} rejected/min", format_count(r.rejected_per_min));
        let mut detail = format!(
            "{} blocked · {}",
            counted(r.blocked_keys, "key", "keys"),
            counted(r.policies, "policy", "policies"),
        );
        if r.degraded {
            detail.push_str(" · on its fallback");
        }
        view! { <GlanceCard title="Rate limits" href="/ratelimits".to_owned() class main detail test_id="glance-ratelimits" /> }
    });
    let alerts = alerts.map(|a| {
        let class = tone(a.firing > 0, a.pending > 0);
        let main = format!("{} firing", format_count(a.firing));
        let detail = format!(
            "{} pending · {} silenced",
            format_count(a.pending),
            format_count(a.silenced),
        );
        view! { <GlanceCard title="Alerts" href="/alerts#alerts-active".to_owned() class main detail test_id="glance-alerts" /> }
    });
    view! {
        <div id="glance" class="glance-cards" data-test-id="glance">
            {bullmq}
            {instances}
            {channels}
            {ratelimits}
            {alerts}
        </div>
    }
}

/// A card's colour: bad (act), else busy (worth a look), else good.
fn tone(bad: bool, busy: bool) -> &'static str {
    if bad {
        "glance bad"
    } else if busy {
        "glance busy"
    } else {
        "glance good"
    }
}

/// One capability's card: its name, the figure that matters, a line of
/// detail, coloured good (green), busy (amber) or bad (red).
#[component]
fn GlanceCard(
    title: &'static str,
    href: String,
    class: &'static str,
    main: String,
    detail: String,
    test_id: &'static str,
) -> impl IntoView {
    view! {
        <a class=class href=href data-test-id=test_id>
            <span class="label">{title}</span>
            <span class="n" data-test-id="glance-main">{main}</span>
            <span class="sub" data-test-id="glance-detail">{detail}</span>
        </a>
    }
}

/// The few queues most worth a look, worst first, with a link to the
/// rest: the overview stays the same size at 4 queues or 10,000.
#[component]
fn AttentionRegion(vm: OverviewVm) -> impl IntoView {
    let body = if vm.attention.is_empty() {
        None
    } else {
        let more = vm.queue_count.saturating_sub(vm.attention.len());
        let rest = (more > 0).then(|| {
            view! {
                <p>
                    <a href="/queues?sort=failures" data-test-id="attention-more">
                        {format!(
                            "and {} more {} →",
                            format_count(more as u64),
                            if more == 1 { "queue" } else { "queues" },
                        )}
                    </a>
                </p>
            }
        });
        Some(view! {
            <h2>"Queues to look at"</h2>
            <p class="muted">
                "Worst first: failure rate above threshold, jobs failed in the last 5 minutes, jobs waiting while none is active, then backlog."
            </p>
            <QueueTable rows=vm.attention back="/".to_string() test_id="attention-table" />
            {rest}
        })
    };
    view! {
        <section id="attention" class="attention" data-test-id="attention">
            {body}
        </section>
    }
}

/// The Redis Cluster the queues live on: each master with its slots, its
/// queues and its replicas, and how many of the 16,384 slots are served.
/// Empty (but present, so live updates can fill it) on one server.
#[component]
fn ClusterRegion(cluster: Option<ClusterVm>) -> impl IntoView {
    let body = cluster.map(|c| {
        let complete = c.slots_covered == 16_384;
        let summary = format!(
            "{} {}, {} {}; {} of 16,384 slots served",
            c.masters.len(),
            if c.masters.len() == 1 { "master" } else { "masters" },
            c.replicas,
            if c.replicas == 1 { "replica" } else { "replicas" },
            format_count(u64::from(c.slots_covered)),
        );
        view! {
            <h2>"Redis Cluster"</h2>
            <p
                class=if complete { "muted" } else { "problem" }
                data-test-id="cluster-summary"
            >
                {summary}
            </p>
            <Table class="cluster" test_id="cluster-table" head=view! {
                <tr>
                    <th scope="col">"Master"</th>
                    <th scope="col">"State"</th>
                    <th scope="col" class="num">
                        "Slots"
                    </th>
                    <th scope="col" class="num">
                        "Queues"
                    </th>
                    <th scope="col">"Replicas"</th>
                </tr>
            }>
                {c
                    .masters
                    .into_iter()
                    .map(|m| {
                        let replicas = if m.replicas.is_empty() {
                            "none".to_string()
                        } else {
                            m.replicas
                                .iter()
                                .map(|(address, ok)| {
                                    if *ok { address.clone() } else { format!("{address} (failing)") }
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        view! {
                            <tr data-test-id=format!("cluster-node-{}", m.address)>
                                <th scope="row">{m.address.clone()}</th>
                                <td>
                                    <span
                                        class=if m.healthy { "badge ok" } else { "badge critical" }
                                        data-health="known"
                                    >{if m.healthy { "OK" } else { "Failing" }}</span>
                                </td>
                                <td class="num" data-test-id="cluster-slots">
                                    {format_count(u64::from(m.slots))}
                                </td>
                                <td class="num" data-test-id="cluster-queues">
                                    {format_count(m.queues as u64)}
                                </td>
                                <td>{replicas}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </Table>
        }
    });
    view! {
        <section id="cluster" class="cluster" data-test-id="cluster">
            {body}
        </section>
    }
}

/// Links to the chart ranges, plain links so they work without the page
/// script; the range shown is marked for assistive technology as well as
/// by its look.
#[component]
fn RangeSelector(current: ChartRange) -> impl IntoView {
    view! {
        <nav class="ranges" aria-label="Chart range" data-test-id="range-selector">
            {ChartRange::ALL
                .into_iter()
                .map(|range| {
                    let is_current = range == current;
                    view! {
                        <a
                            href=format!("/?range={}", range.as_str())
                            class=if is_current { "current" } else { "" }
                            aria-current=is_current.then_some("page")
                            data-test-id=format!("range-{}", range.as_str())
                            title=format!("Throughput over the {}", range.title())
                        >
                            {range.short_label()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// One small chart per queue: completed (green) and failed (red) jobs per
/// minute over the last hour, or per bucket of a longer `range`.
#[component]
fn ThroughputRegion(
    charts: Vec<ThroughputVm>,
    /// Queues without a chart here.
    #[prop(optional)]
    more: usize,
    /// The span the charts cover.
    #[prop(optional)]
    range: ChartRange,
) -> impl IntoView {
    let charts_len = charts.len();
    let body = if charts.is_empty() {
        view! { <Empty>"No throughput yet: charts appear once jobs finish."</Empty> }.into_any()
    } else {
        charts
            .into_iter()
            .map(|chart| view! { <Chart chart range /> })
            .collect_view()
            .into_any()
    };
    let note = (more > 0).then(|| {
        view! {
            <p class="muted" data-test-id="charts-more">
                {format!(
                    "The busiest {} of {} queues; the others are on the ",
                    format_count(charts_len as u64),
                    format_count((charts_len + more) as u64),
                )}
                <a href="/queues?sort=throughput">"queues page"</a>
                "."
            </p>
        }
    });
    view! {
        <div id="throughput" class="charts" data-test-id="throughput">
            {body}
            {note}
        </div>
    }
}

/// One queue's throughput chart: completed and failed per bucket of
/// `range`, captioned with the queue (a link to it) or, on the queue's own
/// page, with `title`.
#[component]
pub(crate) fn Chart(
    chart: ThroughputVm,
    range: ChartRange,
    #[prop(optional)] title: Option<&'static str>,
) -> impl IntoView {
    let minutes = chart.points.iter().map(|p| p.minute_ms).collect();
    let series = vec![
        Series {
            class: "completed",
            noun: "completed",
            values: chart.points.iter().map(|p| p.completed).collect(),
        },
        Series {
            class: "failed",
            noun: "failed",
            values: chart.points.iter().map(|p| p.failed).collect(),
        },
    ];
    let peak = stacked_peak(&series);
    let completed: u64 = series[0].values.iter().sum();
    let failed: u64 = series[1].values.iter().sum();
    let label = format!(
        "{}: {} completed and {} failed in the {}",
        chart.queue,
        format_count(completed),
        format_count(failed),
        range.title()
    );
    let href = format!("/queues/{}", chart.queue);
    view! {
        <BarChart
            class="chart"
            test_id=format!("chart-{}", chart.queue)
            minutes
            range
            series
            label
        >
            <figcaption>
                {match title {
                    Some(title) => view! { <strong>{title}</strong> }.into_any(),
                    None => view! { <a href=href>{chart.queue.clone()}</a> }.into_any(),
                }}
                <span class="muted">
                    {format!(
                        " {} completed · {} failed · peak {}{}",
                        format_count(completed),
                        format_count(failed),
                        format_count(peak),
                        range.per(),
                    )}
                </span>
            </figcaption>
        </BarChart>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn every_capability_has_a_card_linking_to_its_view_and_totals_lead_to_their_jobs() {
        let vm = OverviewVm {
            totals: StateCounts {
                completed: 1_000,
                completed_total: 1_863,
                failed: 4,
                ..StateCounts::default()
            },
            glance: GlanceVm {
                bullmq: Some(BullGlance {
                    queues: 3,
                    waiting: 12,
                    active: 2,
                    failed: 5,
                    error: None,
                }),
                instances: Some(InstancesGlance {
                    in_sync: 2,
                    present: 3,
                    drifted: 1,
                    ..InstancesGlance::default()
                }),
                channels: Some(ChannelsGlance {
                    channels: 4,
                    per_second: 2.25,
                    silent: 1,
                    connected: true,
                }),
                ratelimits: Some(RateLimitsGlance {
                    rejected_per_min: 17,
                    blocked_keys: 1,
                    policies: 3,
                    degraded: false,
                }),
                alerts: Some(AlertsGlance {
                    firing: 2,
                    pending: 1,
                    silenced: 1,
                }),
            },
            ..OverviewVm::default()
        };
        let html = render_overview_page(&vm, &PAGE);
        let card = |id: &str| element(&html, &format!(r#"data-test-id="{id}""#), "</a>").to_owned();
        let bull = card("glance-bullmq");
        assert!(bull.contains(r#"href="/bullmq?sort=failures""#), "{bull}");
        assert!(bull.contains("5 failed"), "{bull}");
        assert!(bull.contains("3 queues · 12 waiting · 2 active"), "{bull}");
        assert!(bull.contains("glance bad"), "{bull}");
        let instances = card("glance-instances");
        assert!(instances.contains("2/3 in sync"), "{instances}");
        assert!(instances.contains("1 drifted"), "{instances}");
        assert!(instances.contains(r#"href="/instances""#), "{instances}");
        let channels = card("glance-channels");
        assert!(
            channels.contains("2.2 messages/s") || channels.contains("2.3 messages/s"),
            "{channels}"
        );
        assert!(
            channels.contains("4 channels · 1 silent for 5 min"),
            "{channels}"
        );
        let limits = card("glance-ratelimits");
        assert!(limits.contains("17 rejected/min"), "{limits}");
        assert!(limits.contains("1 key blocked · 3 policies"), "{limits}");
        let alerts = card("glance-alerts");
        assert!(alerts.contains("2 firing"), "{alerts}");
        assert!(
            alerts.contains(r#"href="/alerts#alerts-active""#),
            "{alerts}"
        );
        // A capability the server does not run has no card.
        let bare = render_overview_page(&OverviewVm::default(), &PAGE);
        assert!(!bare.contains("glance-bullmq"), "{bare}");
        assert!(
            bare.contains(r#"id="glance""#),
            "an empty region stays for updates: {bare}"
        );
        // Totals lead to their state's jobs across queues; completed says
        // it counts what retention kept.
        assert!(
            html.contains(r#"href="/search?q=state%3Afailed" data-test-id="total-failed""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/queues?sort=backlog" data-test-id="total-waiting""#),
            "{html}"
        );
        assert!(html.contains("kept; 1,863 in all"), "{html}");
    }

    #[test]
    fn overview_shows_totals_alerts_slot_and_charts() {
        let vm = OverviewVm {
            health: health(true),
            totals: StateCounts {
                waiting: 1_000_000,
                failed: 7,
                ..StateCounts::default()
            },
            queue_count: 2,
            warnings: vec!["emails".into()],
            charts: vec![ThroughputVm {
                queue: "emails".into(),
                points: (0..60)
                    .map(|i| MinutePoint {
                        minute_ms: 1_795_430_040_000 + i * 60_000,
                        completed: i as u64,
                        failed: 1,
                    })
                    .collect(),
            }],
            range: ChartRange::Hour,
            ..OverviewVm::default()
        };
        let html = render_overview_page(&vm, &PAGE);
        assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
        assert!(html.contains("1,000,000"), "{html}");
        // Failures across queues show in the tab's title, kept current
        // from the totals region.
        assert!(
            html.contains("<title>7 failed · Switchyard</title>"),
            "{html}"
        );
        assert!(
            html.contains(r#"<div id="totals" data-title="7 failed · Switchyard">"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="alerts""#), "{html}");
        assert!(html.contains(r#"data-test-id="chart-emails""#), "{html}");
        assert!(html.contains("<svg"), "{html}");
        assert_eq!(html.matches(r#" class="bar "#).count(), 120, "{html}");
        assert!(html.contains("1,770 completed · 60 failed"), "{html}");
        assert!(html.contains("Failure rate above threshold"), "{html}");
        // Awkward ratios round without overflowing the chart.
        let odd = ThroughputVm {
            queue: "odd".into(),
            points: vec![
                MinutePoint {
                    minute_ms: 0,
                    completed: 1,
                    failed: 1,
                },
                MinutePoint {
                    minute_ms: 60_000,
                    completed: 2,
                    failed: 1,
                },
            ],
        };
        let odd_html = render_overview_page(
            &OverviewVm {
                charts: vec![odd],
                ..vm.clone()
            },
            &PAGE,
        );
        assert!(
            odd_html.contains(r#"data-test-id="chart-odd""#),
            "{odd_html}"
        );
        for f in overview_fragments(&vm) {
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn the_range_selector_links_every_range_and_marks_the_current_one() {
        for current in ChartRange::ALL {
            let html = render_overview_page(&range_overview(current, "emails", vec![]), &PAGE);
            for range in ChartRange::ALL {
                let tag = tag_with_test_id(&html, &format!("range-{}", range.as_str()));
                assert!(tag.starts_with("<a "), "{tag}");
                assert!(
                    tag.contains(&format!(r#"href="/?range={}""#, range.as_str())),
                    "{tag}"
                );
                assert_eq!(
                    tag.contains(r#"aria-current="page""#),
                    range == current,
                    "{tag}"
                );
            }
            assert_eq!(
                html.matches(r#"aria-current="page""#).count(),
                2,
                "nav + range"
            );
            assert!(
                html.contains(&format!("Throughput, {}", current.title())),
                "{html}"
            );
        }
    }

    #[test]
    fn longer_ranges_stream_without_the_charts() {
        let hour = range_overview(ChartRange::Hour, "emails", vec![]);
        let html = render_overview_page(&hour, &PAGE);
        assert!(html.contains(r#"data-live="/events/overview""#), "{html}");
        assert!(
            overview_fragments(&hour)
                .iter()
                .any(|f| f.id == "throughput")
        );
        for range in [ChartRange::Day, ChartRange::Week] {
            let vm = range_overview(range, "emails", vec![]);
            let html = render_overview_page(&vm, &PAGE);
            assert!(
                html.contains(&format!(
                    r#"data-live="/events/overview?range={}""#,
                    range.as_str()
                )),
                "{html}"
            );
            let fragments = overview_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                ["health", "totals", "glance", "attention", "cluster"]
            );
            for f in &fragments {
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
            }
        }
    }

    #[test]
    fn a_day_chart_has_a_bar_per_five_minutes_labelled_with_times() {
        // 2026-11-22 10:35 to 2026-11-23 10:30 UTC.
        let last = 1_795_429_800_000;
        let first = last - 287 * 300_000;
        let points: Vec<MinutePoint> = (0..288)
            .map(|i| MinutePoint {
                minute_ms: first + i * 300_000,
                completed: if i == 287 { 40 } else { 1 },
                failed: u64::from(i == 0) * 3,
            })
            .collect();
        let html = render_overview_page(&range_overview(ChartRange::Day, "emails", points), &PAGE);
        let chart = &html[html.find(r#"data-test-id="chart-emails""#).expect("chart")..];
        assert_eq!(chart.matches("<g>").count(), 288, "{chart}");
        assert_eq!(chart.matches(r#" class="bar "#).count(), 576);
        assert!(chart.contains(r#"viewBox="0 0 1440 100""#), "{chart}");
        assert!(
            chart.contains("<title>Sun 22 Nov 10:35–10:40: 1 completed, 3 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains("<title>Mon 23 Nov 10:30–10:35: 40 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains(r#"<div class="axis"><span>Sun 22 Nov 10:35</span><span>Sun 22 Nov 22:35</span><span>Mon 23 Nov 10:30</span></div>"#),
            "{chart}"
        );
        assert!(
            chart.contains("327 completed · 3 failed · peak 40/5 min"),
            "{chart}"
        );
        assert!(chart.contains("in the last 24 hours"), "{chart}");
    }

    #[test]
    fn a_week_chart_has_a_bar_per_hour_labelled_with_days() {
        // 2026-11-16 11:00 to 2026-11-23 10:00 UTC.
        let last = 1_795_428_000_000;
        let first = last - 167 * 3_600_000;
        let points: Vec<MinutePoint> = (0..168)
            .map(|i| MinutePoint {
                minute_ms: first + i * 3_600_000,
                completed: 1_000,
                failed: 0,
            })
            .collect();
        let html = render_overview_page(&range_overview(ChartRange::Week, "emails", points), &PAGE);
        let chart = &html[html.find(r#"data-test-id="chart-emails""#).expect("chart")..];
        assert_eq!(chart.matches("<g>").count(), 168, "{chart}");
        assert!(
            chart.contains("<title>Mon 16 Nov 11:00–12:00: 1,000 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains("<title>Mon 23 Nov 10:00–11:00: 1,000 completed, 0 failed</title>"),
            "{chart}"
        );
        assert!(
            chart.contains(
                r#"<div class="axis"><span>Mon 16 Nov</span><span>Thu 19 Nov</span><span>Mon 23 Nov</span></div>"#
            ),
            "{chart}"
        );
        assert!(
            chart.contains("168,000 completed · 0 failed · peak 1,000/h"),
            "{chart}"
        );
    }

    #[test]
    fn range_charts_escape_queue_names() {
        let evil = r#"<img src=x onerror="alert(1)">&"#;
        for range in ChartRange::ALL {
            let points = vec![MinutePoint {
                minute_ms: 0,
                completed: 1,
                failed: 0,
            }];
            let html = render_overview_page(&range_overview(range, evil, points), &PAGE);
            // No element from the name; in attributes its quotes are
            // escaped too, so it cannot end one.
            assert!(!html.contains("<img"), "{html}");
            assert!(
                html.contains(
                    r#"data-test-id="chart-&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;""#
                ),
                "{html}"
            );
            assert!(
                html.contains(r#">&lt;img src=x onerror="alert(1)"&gt;&amp;</a>"#),
                "{html}"
            );
            assert!(
                html.contains(r#"aria-label="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;: 1 completed"#),
                "{html}"
            );
        }
    }

    #[test]
    fn thousands_of_queues_show_a_few_rows_and_say_how_many_more() {
        let vm = OverviewVm {
            health: health(true),
            queue_count: 10_000,
            warnings: vec!["q-1".into(), "q-2".into()],
            warnings_more: 998,
            attention: vec![row("q-1", 5, false), row("q-2", 4, false)],
            charts: vec![ThroughputVm {
                queue: "q-1".into(),
                points: vec![MinutePoint::default(); 60],
            }],
            charts_more: 9_999,
            range: ChartRange::Hour,
            ..OverviewVm::default()
        };
        let html = render_overview_page(&vm, &PAGE);
        let table = &html[html
            .find(r#"data-test-id="attention-table""#)
            .expect("table")..];
        assert_eq!(table.matches(r#"data-test-id="queue-row-"#).count(), 2);
        assert!(html.contains("and 9,998 more queues →"), "{html}");
        assert!(html.contains("10,000 queues"), "{html}");
        assert!(html.contains(r#"href="/queues?sort=failures""#), "{html}");
        assert!(html.contains("and 998 more"), "{html}");
        assert!(
            html.contains("The busiest 1 of 10,000 queues; the others are on the "),
            "{html}"
        );
        // Pause buttons come back to the overview.
        assert!(html.contains(r#"name="back" value="/""#), "{html}");
    }

    #[test]
    fn no_queues_no_attention_table() {
        let html = render_overview_page(&OverviewVm::default(), &PAGE);
        assert!(!html.contains("attention-table"), "{html}");
        assert!(html.contains(r#"id="attention""#), "{html}");
    }

    #[test]
    fn a_cluster_shows_its_masters_replicas_and_where_queues_live() {
        let mut first = row("emails", 0, false);
        first.node = Some("10.0.0.1:7000".into());
        let vm = OverviewVm {
            health: health(true),
            queue_count: 1,
            attention: vec![first],
            cluster: Some(ClusterVm {
                masters: vec![
                    crate::vm::queues::ClusterMasterVm {
                        address: "10.0.0.1:7000".into(),
                        healthy: true,
                        slots: 8_192,
                        queues: 1,
                        replicas: vec![("10.0.0.4:7000".into(), true)],
                    },
                    crate::vm::queues::ClusterMasterVm {
                        address: "10.0.0.2:7000".into(),
                        healthy: false,
                        slots: 8_192,
                        queues: 0,
                        replicas: vec![("10.0.0.5:7000".into(), false)],
                    },
                ],
                slots_covered: 8_192,
                replicas: 2,
            }),
            ..OverviewVm::default()
        };
        let html = render_overview_page(&vm, &PAGE);
        assert_eq!(
            test_support_text(&html, "cluster-summary"),
            "2 masters, 2 replicas; 8,192 of 16,384 slots served"
        );
        assert!(
            html.contains(r#"class="problem""#),
            "not every slot: {html}"
        );
        assert!(html.contains("10.0.0.5:7000 (failing)"), "{html}");
        assert!(html.contains(">Failing<"), "{html}");
        assert!(
            html.contains(r#"<td data-test-id="queue-node">10.0.0.1:7000</td>"#),
            "{html}"
        );
        let single = render_overview_page(&OverviewVm::default(), &PAGE);
        assert!(single.contains(r#"id="cluster""#), "{single}");
        assert!(!single.contains("Redis Cluster"), "{single}");
        assert!(!single.contains(">Node<"), "{single}");
    }

    /// The text of the element with `data-test-id` `id`.
    fn test_support_text(html: &str, id: &str) -> String {
        let at = html
            .find(&format!(r#"data-test-id="{id}""#))
            .expect("element");
        let rest = &html[at..];
        let rest = &rest[rest.find('>').expect("tag end") + 1..];
        rest[..rest.find('<').expect("text end")].to_owned()
    }
}
