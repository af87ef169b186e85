//! The rate limits page (`/ratelimits`): the limiter's health (a banner
//! when the shared backend is unreachable, since every decision then
//! changes meaning), the policies, requests allowed and rejected over the
//! last hour, the most used keys and the blocked ones.
//!
//! Policy names and keys come from any service sharing the backend (a key
//! is often a client id or an IP taken from a request), so they are only
//! ever text and attribute values, which leptos escapes.

use leptos::prelude::*;

use crate::format::{
    counted, format_age, format_count, format_in, format_timestamp, format_window,
};
use crate::vm::ratelimits::{
    BlockedRow, KeyUsageRow, LimiterStatusVm, PolicyRow, RateLimitsVm, RateMinute,
};
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series, stacked_peak};
use crate::widgets::forms::ActionForm;
use crate::widgets::shell::{Fragment, Frame, Notice, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::At;

/// The live stream of the rate limits page.
pub const RATELIMITS_EVENTS: &str = "/events/ratelimits";

/// Where the rate limits page's Unblock buttons come back to from a live
/// update: fragments are rendered once for every open page, so they
/// cannot know one page's own `back`.
const RATELIMITS_PAGE: &str = "/ratelimits";

/// The rate limits page (`/ratelimits`): the limiter's health, the
/// policies, requests over the last hour, the most used keys and the
/// blocked ones with an Unblock button each. `notice` reports an unblock
/// outside the live regions, so an update does not wipe it; `back` is
/// where an Unblock comes back to (live updates use `/ratelimits`).
pub fn render_ratelimits_page(
    vm: &RateLimitsVm,
    notice: Option<String>,
    back: &str,
    page: &PageCtx,
) -> String {
    let vm = vm.clone();
    let back = back.to_string();
    let frame = Frame::new("Rate limits · Switchyard", Section::RateLimits)
        .live(RATELIMITS_EVENTS)
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="ratelimits-page">
                <h1>"Rate limits"</h1>
                <Notice notice=notice />
                <LimiterStatusRegion status=vm.status.clone() now=vm.now />
                <h2>"Policies"</h2>
                <PoliciesRegion policies=vm.policies.clone() />
                <h2>"Requests, last hour"</h2>
                <RequestsChartRegion per_minute=vm.per_minute.clone() />
                <h2>"Top keys"</h2>
                <TopKeysRegion
                    top_keys=vm.top_keys.clone()
                    own_keys=vm.own_keys.clone()
                    back=back.clone()
                />
                <h2>"Blocked keys"</h2>
                <BlockedKeysRegion blocked=vm.blocked.clone() now=vm.now back=back />
            </section>
        }
    })
}

/// The live regions of the rate limits page: `ratelimit-status`,
/// `ratelimit-policies`, `ratelimit-chart`, `ratelimit-top` and
/// `ratelimit-blocked`.
pub fn ratelimits_fragments(vm: &RateLimitsVm) -> Vec<Fragment> {
    vec![
        fragment(
            "ratelimit-status",
            view! { <LimiterStatusRegion status=vm.status.clone() now=vm.now /> },
        ),
        fragment(
            "ratelimit-policies",
            view! { <PoliciesRegion policies=vm.policies.clone() /> },
        ),
        fragment(
            "ratelimit-chart",
            view! { <RequestsChartRegion per_minute=vm.per_minute.clone() /> },
        ),
        fragment(
            "ratelimit-top",
            view! {
                <TopKeysRegion
                    top_keys=vm.top_keys.clone()
                    own_keys=vm.own_keys.clone()
                    back=RATELIMITS_PAGE.to_string()
                />
            },
        ),
        fragment(
            "ratelimit-blocked",
            view! {
                <BlockedKeysRegion
                    blocked=vm.blocked.clone()
                    now=vm.now
                    back=RATELIMITS_PAGE.to_string()
                />
            },
        ),
    ]
}

/// Where the Unblock buttons post.
const UNBLOCK_ACTION: &str = "/ratelimits/unblock";

/// Usage (percent of the limit) from which a key's bar turns amber: close
/// enough to the limit that the client is about to be refused.
const NEAR_LIMIT: f64 = 80.0;

/// A usage percentage as shown (`142%`), or `–` when the server could not
/// compute one (a zero limit): `NaN%` helps nobody.
pub(crate) fn format_percent(percent: f64) -> String {
    if percent.is_finite() {
        format!("{:.0}%", percent.max(0.0))
    } else {
        "–".into()
    }
}

/// The usage bar's width: the real percentage, capped at the bar's full
/// width (a burst goes past 100%, the bar cannot).
pub(crate) fn bar_width(percent: f64) -> f64 {
    if percent.is_finite() {
        percent.clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// What the fallback does to every decision, in words, for the banner and
/// the healthy line's hint.
fn fallback_effect(fallback: &str) -> Option<(&'static str, &'static str)> {
    match fallback {
        "local" => Some((
            "decisions are made per instance",
            "Each instance enforces the limits in its own memory, so a client spread over several instances gets up to that many times its limit.",
        )),
        "open" => Some((
            "every request is allowed",
            "No limit is enforced until the backend answers again.",
        )),
        "closed" => Some((
            "every request is refused",
            "Clients are refused until the backend answers again, whatever their usage.",
        )),
        _ => None,
    }
}

/// The limiter's health: a quiet line naming where decisions are made, or,
/// while the shared backend is unreachable, a banner saying what the
/// fallback does to every request, since when and why.
#[component]
fn LimiterStatusRegion(status: LimiterStatusVm, now: i64) -> impl IntoView {
    let fallback_count = (status.fallback_decisions > 0).then(|| {
        view! {
            <p class="muted" data-test-id="fallback-decisions">
                {format!(
                    "{} decisions made by the fallback since the dashboard started.",
                    format_count(status.fallback_decisions),
                )}
            </p>
        }
    });
    let body = if status.degraded {
        let effect = fallback_effect(&status.fallback);
        let class = match effect {
            Some(_) => format!("degraded-banner fallback-{}", status.fallback),
            None => "degraded-banner".to_string(),
        };
        let heading = match effect {
            Some((what, _)) => format!(
                "Rate limiting is degraded ({} unreachable): fallback {}, {what}.",
                status.backend, status.fallback
            ),
            None => format!(
                "Rate limiting is degraded ({} unreachable): fallback {}.",
                status.backend, status.fallback
            ),
        };
        let since = status.degraded_since.map(|since| {
            view! {
                <p data-test-id="degraded-since">
                    "Since "
                    <At at=since />
                    {format!(" ({})", format_age(now - since))}
                </p>
            }
        });
        let reason = status.reason.map(|reason| {
            view! {
                <p data-test-id="degraded-reason">
                    "Reason: "
                    <span class="error-text">{reason}</span>
                </p>
            }
        });
        view! {
            <div class=class data-test-id="ratelimit-degraded" data-fallback=status.fallback>
                <p class="banner-title">
                    <strong>{heading}</strong>
                </p>
                {effect.map(|(_, detail)| view! { <p data-test-id="degraded-effect">{detail}</p> })}
                {since}
                {reason}
                {fallback_count}
            </div>
        }
        .into_any()
    } else {
        let line = match status.backend.as_str() {
            "redis" => "Decisions: redis (shared by every instance)".to_string(),
            "in-process" => "Decisions: in-process (each instance on its own)".to_string(),
            other => format!("Decisions: {other}"),
        };
        // Only a shared backend can fail over; say beforehand to what.
        let hint = (status.backend != "in-process")
            .then(|| fallback_effect(&status.fallback))
            .flatten()
            .map(|(what, _)| {
                view! {
                    <p class="muted" data-test-id="ratelimit-fallback">
                        {format!(
                            "If {} becomes unreachable: fallback {}, {what}.",
                            status.backend,
                            status.fallback,
                        )}
                    </p>
                }
            });
        view! {
            <p
                class="status ok"
                data-test-id="ratelimit-backend"
                data-health="known"
                data-unknown="Rate limiter: unknown"
            >
                <span class="dot" aria-hidden="true"></span>
                {line}
            </p>
            {hint}
            {fallback_count}
        }
        .into_any()
    };
    view! {
        <Region id="ratelimit-status">
            {body}
        </Region>
    }
}

/// Every policy with its limit and this minute's decisions.
#[component]
fn PoliciesRegion(policies: Vec<PolicyRow>) -> impl IntoView {
    let body = if policies.is_empty() {
        view! {
            <Empty test_id="policies-empty">
                "No rate-limit policies are registered."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="ratelimit-policies"
                test_id="policies-table"
                head={view! {
                    <tr>
                        <th scope="col">"Policy"</th>
                        <th scope="col" class="num">
                            "Limit"
                        </th>
                        <th scope="col" class="num">
                            "Burst"
                        </th>
                        <th scope="col">"Auto-block"</th>
                        <th scope="col" class="num">
                            "Active keys"
                        </th>
                        <th scope="col" class="num">
                            "Blocked keys"
                        </th>
                        <th scope="col" class="num">
                            "Allowed this minute"
                        </th>
                        <th scope="col" class="num">
                            "Rejected this minute"
                        </th>
                    </tr>
                }}
            >
                {policies
                    .into_iter()
                    .map(|row| view! { <PolicyTableRow row /> })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! {
        <Region id="ratelimit-policies">
            {body}
        </Region>
    }
}

/// One policy's row; counts worth a look (blocked keys, rejections) are
/// flagged in the failed colour.
#[component]
fn PolicyTableRow(row: PolicyRow) -> impl IntoView {
    let flagged = |n: u64| if n > 0 { "num flagged" } else { "num" };
    let limit = format!(
        "{} / {}",
        format_count(u64::from(row.limit)),
        format_window(row.window_ms)
    );
    let block = match row.block {
        Some(rule) => view! { <span>{rule}</span> }.into_any(),
        None => view! { <span class="muted">"none"</span> }.into_any(),
    };
    let name = row.name.clone();
    let own = row.own.then(|| {
        view! {
            " "
            <span class="badge own" data-test-id="policy-own" title="Limits this dashboard's own pages, buttons, API or sign-in">
                "dashboard"
            </span>
        }
    });
    view! {
        <tr data-test-id="ratelimit-policy" data-policy=row.name.clone() data-id=row.name>
            <th scope="row">
                <code data-test-id="policy-name">{name}</code>
                {own}
            </th>
            <td class="num" data-test-id="policy-limit">
                {limit}
            </td>
            <td class="num" data-test-id="policy-burst">
                {format_count(u64::from(row.burst))}
            </td>
            <td data-test-id="policy-block">{block}</td>
            <td class="num" data-test-id="policy-active">
                {format_count(row.active_keys)}
            </td>
            <td class=flagged(row.blocked_keys) data-test-id="policy-blocked">
                {format_count(row.blocked_keys)}
            </td>
            <td class="num" data-test-id="policy-allowed">
                {format_count(row.allowed_this_minute)}
            </td>
            <td class=flagged(row.rejected_this_minute) data-test-id="policy-rejected">
                {format_count(row.rejected_this_minute)}
            </td>
        </tr>
    }
}

/// Requests rejected and allowed per minute over the last hour. Rejections
/// sit on the baseline in the failed colour, so a few of them stay visible
/// under thousands of allowed requests.
#[component]
fn RequestsChartRegion(per_minute: Vec<RateMinute>) -> impl IntoView {
    let rejected: u64 = per_minute.iter().map(|m| m.rejected).sum();
    let allowed: u64 = per_minute.iter().map(|m| m.allowed).sum();
    let body = if rejected == 0 && allowed == 0 {
        view! {
            <Empty test_id="requests-empty">
                "No request was decided in the last hour."
            </Empty>
        }
        .into_any()
    } else {
        let minutes = per_minute.iter().map(|m| m.minute).collect();
        let series = vec![
            Series {
                class: "rejected",
                noun: "rejected",
                values: per_minute.iter().map(|m| m.rejected).collect(),
            },
            Series {
                class: "allowed",
                noun: "allowed",
                values: per_minute.iter().map(|m| m.allowed).collect(),
            },
        ];
        let peak = stacked_peak(&series);
        let share = rejected as f64 * 100.0 / (rejected + allowed) as f64;
        let label = format!(
            "Requests in the last hour: {} rejected and {} allowed",
            format_count(rejected),
            format_count(allowed)
        );
        view! {
            <BarChart
                class="chart ratelimit-chart"
                test_id="requests-chart".to_string()
                minutes
                series
                label
            >
                <figcaption>
                    <span class="swatch rejected" data-test-id="rejected-total">
                        {format!("{} rejected ({share:.1}%)", format_count(rejected))}
                    </span>
                    <span class="swatch allowed" data-test-id="allowed-total">
                        {format!("{} allowed", format_count(allowed))}
                    </span>
                    <span class="muted">{format!("peak {peak}/min")}</span>
                </figcaption>
            </BarChart>
        }
        .into_any()
    };
    view! {
        <Region id="ratelimit-chart">
            {body}
        </Region>
    }
}

/// The most used keys: how close each is to its limit, and which are
/// blocked (with Unblock right there). The services' keys come first; the
/// dashboard's own (its pages, API and sign-in, where the operator's own
/// address shows up) fold into a section of their own below them.
#[component]
fn TopKeysRegion(
    top_keys: Vec<KeyUsageRow>,
    own_keys: Vec<KeyUsageRow>,
    back: String,
) -> impl IntoView {
    let body = if top_keys.is_empty() {
        view! {
            <Empty test_id="top-keys-empty">
                "No service's key has made a request inside its window."
            </Empty>
        }
        .into_any()
    } else {
        view! { <KeysTable keys=top_keys back=back.clone() test_id="top-keys-table" /> }.into_any()
    };
    let own = (!own_keys.is_empty()).then(|| {
        let summary = format!(
            "The dashboard's own limits: {}",
            counted(own_keys.len() as u64, "key", "keys")
        );
        view! {
            <details class="own-keys" data-test-id="own-keys">
                <summary>{summary}</summary>
                <KeysTable keys=own_keys back=back test_id="own-keys-table" />
            </details>
        }
    });
    view! {
        <Region id="ratelimit-top">
            {body}
            {own}
        </Region>
    }
}

/// Keys with their usage. Usage is told against one denominator, the
/// policy's limit (a burst can take a key past 100%): the percentage and
/// the count say the same thing.
#[component]
fn KeysTable(keys: Vec<KeyUsageRow>, back: String, test_id: &'static str) -> impl IntoView {
    view! {
        <Table
            class="ratelimit-keys"
            test_id=test_id
            head={view! {
                <tr>
                    <th scope="col">"Policy"</th>
                    <th scope="col">"Key"</th>
                    <th scope="col">"Usage of the limit"</th>
                    <th scope="col" class="num">
                        "Requests / limit"
                    </th>
                    <th scope="col">"Block"</th>
                </tr>
            }}
        >
            {keys
                .into_iter()
                .map(|row| view! { <KeyUsageTableRow row back=back.clone() /> })
                .collect_view()}
        </Table>
    }
}

/// One key's row: a bar filled to its usage (capped at full) next to the
/// real percentage, which may exceed 100 with a burst; a blocked key has
/// its Unblock in the row.
#[component]
fn KeyUsageTableRow(row: KeyUsageRow, back: String) -> impl IntoView {
    let level = if row.percent > 100.0 {
        "usage over"
    } else if row.percent >= NEAR_LIMIT {
        "usage near"
    } else {
        "usage"
    };
    let percent = format_percent(row.percent);
    let blocked = row.blocked_until.map(|until| {
        view! {
            <span
                class="badge blocked"
                data-test-id="key-blocked"
                title=format!("Blocked until {}", format_timestamp(until))
            >
                "Blocked"
            </span>
            " "
            <UnblockForm policy=row.policy.clone() key=row.key.clone() back test_id="key-unblock" />
        }
    });
    let burst = (row.capacity > row.limit).then(|| {
        view! {
            " "
            <span class="muted" data-test-id="key-burst">
                {format!("(burst to {})", format_count(u64::from(row.capacity)))}
            </span>
        }
    });
    let (policy, key) = (row.policy.clone(), row.key.clone());
    view! {
        <tr
            data-test-id="ratelimit-row"
            data-policy=row.policy.clone()
            data-key=row.key.clone()
            data-id=format!("{}/{}", row.policy, row.key)
        >
            <td data-test-id="key-policy">{policy}</td>
            <td>
                <code data-test-id="key-name">{key}</code>
            </td>
            <td class="usage-cell" data-test-id="key-usage">
                // An SVG rect's width is an attribute, not CSS, so the bar
                // needs no `style` attribute (the CSP allows none).
                <span class=level aria-hidden="true">
                    <svg
                        class="usage-fill"
                        data-test-id="usage-fill"
                        viewBox="0 0 100 1"
                        preserveAspectRatio="none"
                    >
                        <rect width=format!("{:.1}", bar_width(row.percent)) height="1"></rect>
                    </svg>
                </span>
                <span class="usage-percent" data-test-id="usage-percent">
                    {percent}
                </span>
            </td>
            <td class="num" data-test-id="key-count">
                {format!(
                    "{} / {}",
                    format_count(u64::from(row.count)),
                    format_count(u64::from(row.limit)),
                )}
                {burst}
            </td>
            <td class="actions">{blocked}</td>
        </tr>
    }
}

/// Every blocked key, when its block ends, and a button to lift it early
/// (a client blocked by mistake should not wait out the block).
#[component]
fn BlockedKeysRegion(blocked: Vec<BlockedRow>, now: i64, back: String) -> impl IntoView {
    let body = if blocked.is_empty() {
        view! {
            <Empty test_id="blocked-empty">
                "No key is blocked."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="ratelimit-blocked"
                test_id="blocked-table"
                head={view! {
                    <tr>
                        <th scope="col">"Policy"</th>
                        <th scope="col">"Key"</th>
                        <th scope="col">"Blocked"</th>
                        <th scope="col">
                            <span class="visually-hidden">"Action"</span>
                        </th>
                    </tr>
                }}
            >
                {blocked
                    .into_iter()
                    .map(|row| view! { <BlockedTableRow row now back=back.clone() /> })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! {
        <Region id="ratelimit-blocked">
            {body}
        </Region>
    }
}

/// One blocked key. Policy and key travel as hidden inputs, not in the
/// URL: a key is any text, slashes included.
#[component]
fn BlockedTableRow(row: BlockedRow, now: i64, back: String) -> impl IntoView {
    let (policy, key) = (row.policy.clone(), row.key.clone());
    view! {
        <tr
            data-test-id="blocked-row"
            data-policy=row.policy.clone()
            data-key=row.key.clone()
            data-id=format!("{}/{}", row.policy, row.key)
        >
            <td data-test-id="blocked-policy">{policy}</td>
            <td>
                <code data-test-id="blocked-key">{key}</code>
            </td>
            <td class="blocked-until" data-test-id="blocked-until">
                "until "
                <At at=row.until />
                " "
                <span class="muted">{format!("({})", format_in(row.until - now))}</span>
            </td>
            <td class="actions">
                <UnblockForm
                    policy=row.policy.clone()
                    key=row.key.clone()
                    back
                    test_id="unblock-button"
                />
            </td>
        </tr>
    }
}

/// Unblock for one key, in its Top keys row and in the Blocked keys table.
#[component]
fn UnblockForm(policy: String, key: String, back: String, test_id: &'static str) -> impl IntoView {
    let confirm = format!("Unblock {key} under {policy}?");
    view! {
        <ActionForm
            action=UNBLOCK_ACTION.to_string()
            back=back
            label="Unblock"
            test_id=test_id.to_string()
            confirm=confirm
            fields=vec![("policy", policy), ("key", key)]
        />
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn percentages_show_the_real_number_and_cap_the_bar() {
        assert_eq!(format_percent(142.4), "142%");
        assert_eq!(format_percent(f64::INFINITY), "–");
        assert_eq!(bar_width(142.4), 100.0);
        assert_eq!(bar_width(-3.0), 0.0);
        assert_eq!(bar_width(f64::NAN), 0.0);
        assert_eq!(bar_width(37.5), 37.5);
    }

    const RATELIMIT_REGIONS: [&str; 5] = [
        "ratelimit-status",
        "ratelimit-policies",
        "ratelimit-chart",
        "ratelimit-top",
        "ratelimit-blocked",
    ];

    #[test]
    fn ratelimits_page_is_a_full_live_document() {
        let vm = ratelimits_vm();
        let html = render_ratelimits_page(
            &vm,
            Some("Unblocked client-1.".into()),
            "/ratelimits",
            &PAGE,
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Rate limits · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/ratelimits""#), "{html}");
        assert!(
            html.contains(
                r#"<a href="/ratelimits" aria-current="page" class="current">Rate limits</a>"#
            ),
            "{html}"
        );
        // The notice sits outside every live region.
        let notice = html.find(r#"data-test-id="notice""#).expect("notice");
        assert!(html[notice..].contains("Unblocked client-1."), "{html}");
        assert!(notice < html.find(r#"id="ratelimit-status""#).expect("status"));
        for id in RATELIMIT_REGIONS {
            assert!(html.contains(&format!(r#"<div id="{id}""#)), "{id}: {html}");
        }
        // Healthy: a quiet line, no banner.
        assert!(
            html.contains("Decisions: redis (shared by every instance)"),
            "{html}"
        );
        assert!(
            html.contains(
                "If redis becomes unreachable: fallback local, decisions are made per instance."
            ),
            "{html}"
        );
        assert!(!html.contains("ratelimit-degraded"), "{html}");
        // Policies.
        assert_eq!(
            html.matches(r#"data-test-id="ratelimit-policy""#).count(),
            2,
            "{html}"
        );
        assert!(html.contains(r#"data-policy="login""#), "{html}");
        assert!(html.contains(">100 / 1 min<"), "{html}");
        assert!(
            html.contains(r#"data-test-id="policy-burst" class="num">20<"#),
            "{html}"
        );
        assert!(
            html.contains("10 rejections in 1 min → blocked 5 min"),
            "{html}"
        );
        assert!(html.contains(">1,500<"), "{html}");
        assert!(
            html.contains(r#"data-test-id="policy-rejected" class="num flagged">7<"#),
            "{html}"
        );
        // Chart: a rejected and an allowed bar per minute, rejections first.
        assert!(html.contains(r#"data-test-id="requests-chart""#), "{html}");
        // (The usage bars' rects have no x.)
        assert_eq!(html.matches(r#" class="bar "#).count(), 120, "{html}");
        assert_eq!(
            html.matches(r#"class="bar rejected""#).count(),
            60,
            "{html}"
        );
        assert_eq!(html.matches(r#"class="bar allowed""#).count(), 60, "{html}");
        assert!(html.contains("60 rejected (0.8%)"), "{html}");
        assert!(html.contains("7,770 allowed"), "{html}");
        assert!(
            html.contains("<title>10:35: 1 rejected, 101 allowed</title>"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"aria-label="Requests in the last hour: 60 rejected and 7,770 allowed""#
            ),
            "{html}"
        );
        // Top keys: the services' two, and the dashboard's own one apart,
        // folded under its own summary after them.
        assert_eq!(
            html.matches(r#"data-test-id="ratelimit-row""#).count(),
            3,
            "{html}"
        );
        let services = html
            .find(r#"data-test-id="top-keys-table""#)
            .expect("services");
        let own = html.find(r#"data-test-id="own-keys""#).expect("own keys");
        assert!(services < own, "{html}");
        assert!(
            html[own..].contains(r#"<summary>The dashboard's own limits: 1 key</summary>"#),
            "{html}"
        );
        assert!(html[own..].contains(r#"data-key="127.0.0.1""#), "{html}");
        assert!(!html[..own].contains(r#"data-key="127.0.0.1""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="ratelimit-row" data-policy="api" data-key="client-1""#),
            "{html}"
        );
        // One denominator: the limit, as the percentage; the burst aside.
        assert!(html.contains(">142 / 100"), "{html}");
        assert!(html.contains("(burst to 120)"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="key-blocked""#).count(),
            1,
            "{html}"
        );
        assert!(html.contains(">Blocked</span>"), "{html}");
        // Unblock is in the blocked key's own row.
        let row = element(
            &html,
            r#"data-test-id="ratelimit-row" data-policy="api""#,
            "</tr>",
        );
        assert!(row.contains(r#"data-test-id="key-unblock""#), "{row}");
        assert!(row.contains(r#"action="/ratelimits/unblock""#), "{row}");
        // Blocked keys: absolute end, then how long to wait.
        assert!(
            html.contains(r#"data-test-id="blocked-row" data-policy="api" data-key="client-1""#),
            "{html}"
        );
        assert!(html.contains("until <time"), "{html}");
        assert!(html.contains("2026-11-23 11:38:30 UTC"), "{html}");
        assert!(html.contains("(in 4 min)"), "{html}");
        assert_eq!(
            html.matches(r#"data-test-id="unblock-button""#).count(),
            1,
            "{html}"
        );
    }

    #[test]
    fn ratelimits_fragments_are_the_regions_of_the_page() {
        for vm in [ratelimits_vm(), RateLimitsVm::default()] {
            let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
            let fragments = ratelimits_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                RATELIMIT_REGIONS
            );
            for f in &fragments {
                assert!(
                    f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                    "{}",
                    f.html
                );
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
                assert!(!f.html.contains("data-test-id=\"notice\""), "{}", f.html);
            }
        }
    }

    #[test]
    fn ratelimits_page_without_data_shows_every_empty_state() {
        let vm = RateLimitsVm {
            status: limiter("in-process", "local", false),
            per_minute: (0..60)
                .map(|i| RateMinute {
                    minute: MINUTE0 + i * 60_000,
                    ..RateMinute::default()
                })
                .collect(),
            now: NOW,
            ..RateLimitsVm::default()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(
            html.contains("No rate-limit policies are registered."),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="requests-empty""#), "{html}");
        assert!(!html.contains("<svg"), "all zero: no chart: {html}");
        assert!(
            html.contains("No service's key has made a request inside its window."),
            "{html}"
        );
        assert!(html.contains("No key is blocked."), "{html}");
        assert!(!html.contains("<form"), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
        // In-process cannot fail over: no fallback hint.
        assert!(
            html.contains("Decisions: in-process (each instance on its own)"),
            "{html}"
        );
        assert!(!html.contains("ratelimit-fallback"), "{html}");
        assert!(!html.contains("ratelimit-degraded"), "{html}");
    }

    #[test]
    fn degraded_banner_names_the_fallback_only_while_degraded() {
        for (fallback, effect) in [
            ("local", "decisions are made per instance"),
            ("open", "every request is allowed"),
            ("closed", "every request is refused"),
        ] {
            let vm = RateLimitsVm {
                status: limiter("redis", fallback, true),
                ..ratelimits_vm()
            };
            let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
            assert!(
                html.contains(&format!(
                    r#"data-test-id="ratelimit-degraded" data-fallback="{fallback}" class="degraded-banner fallback-{fallback}""#
                )),
                "{html}"
            );
            assert!(
                html.contains(&format!(
                    "Rate limiting is degraded (redis unreachable): fallback {fallback}, {effect}."
                )),
                "{html}"
            );
            assert!(html.contains("2026-11-23 11:30:00 UTC"), "{html}");
            assert!(html.contains("(4 min ago)"), "{html}");
            assert!(html.contains("connection refused"), "{html}");
            assert!(
                html.contains("1,234 decisions made by the fallback"),
                "{html}"
            );
            assert!(!html.contains("Decisions: redis"), "{html}");
            let status = &ratelimits_fragments(&vm)[0];
            assert!(
                status.html.contains("ratelimit-degraded"),
                "{}",
                status.html
            );
        }
        let healthy = render_ratelimits_page(&ratelimits_vm(), None, "/ratelimits", &PAGE);
        assert!(!healthy.contains("degraded"), "{healthy}");
        // An unknown mode is still named, and its text escaped.
        let vm = RateLimitsVm {
            status: LimiterStatusVm {
                reason: Some(HOSTILE.into()),
                ..limiter("redis", "<b>odd</b>", true)
            },
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(html.contains("fallback &lt;b&gt;odd&lt;/b&gt;."), "{html}");
        assert!(html.contains(r#"class="degraded-banner""#), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn ratelimits_page_escapes_keys_and_policy_names() {
        let hostile = format!("{HOSTILE}\"x");
        let escaped_text = "&lt;script&gt;alert(1)&lt;/script&gt;\"x";
        let escaped_attr = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;x";
        let vm = RateLimitsVm {
            policies: vec![policy(&hostile)],
            top_keys: vec![usage(&hostile, &hostile, 50.0, true)],
            blocked: vec![blocked(&hostile, &hostile)],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, Some(hostile.clone()), "/ratelimits", &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        // Table cells.
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="policy-name">{escaped_text}</code>"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="key-name">{escaped_text}</code>"#
            )),
            "{html}"
        );
        // Blocked list.
        assert!(
            html.contains(&format!(
                r#"<code data-test-id="blocked-key">{escaped_text}</code>"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<td data-test-id="blocked-policy">{escaped_text}</td>"#
            )),
            "{html}"
        );
        // Attributes and hidden inputs.
        assert!(
            html.contains(&format!(
                r#"data-test-id="ratelimit-row" data-policy="{escaped_attr}" data-key="{escaped_attr}""#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<input type="hidden" name="policy" value="{escaped_attr}">"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"<input type="hidden" name="key" value="{escaped_attr}">"#
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                r#"data-confirm="Unblock {escaped_attr} under {escaped_attr}?""#
            )),
            "{html}"
        );
    }

    #[test]
    fn usage_over_100_percent_is_shown_with_the_bar_capped() {
        let vm = RateLimitsVm {
            top_keys: vec![
                usage("api", "burst", 250.0, false),
                usage("api", "near", 85.0, false),
                usage("api", "calm", 42.5, false),
                usage("api", "odd", f64::NAN, false),
            ],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        let row = |key: &str| {
            let start = html
                .find(&format!(r#"data-key="{key}""#))
                .unwrap_or_else(|| panic!("no row {key}: {html}"));
            let end = start + html[start..].find("</tr>").expect("row end");
            html[start..end].to_string()
        };
        let burst = row("burst");
        assert!(burst.contains(">250%<"), "{burst}");
        assert!(
            burst.contains(r#"<rect width="100.0" height="1">"#),
            "{burst}"
        );
        assert!(burst.contains(r#"class="usage over""#), "{burst}");
        let near = row("near");
        assert!(near.contains(r#"<rect width="85.0" height="1">"#), "{near}");
        assert!(near.contains(r#"class="usage near""#), "{near}");
        let calm = row("calm");
        assert!(calm.contains(">43%<") || calm.contains(">42%<"), "{calm}");
        assert!(calm.contains(r#"<rect width="42.5" height="1">"#), "{calm}");
        assert!(calm.contains(r#"class="usage""#), "{calm}");
        let odd = row("odd");
        assert!(odd.contains(">–<"), "{odd}");
        assert!(odd.contains(r#"<rect width="0.0" height="1">"#), "{odd}");
        assert!(!html.contains("NaN"), "{html}");
    }

    #[test]
    fn unblock_posts_policy_key_and_back() {
        let html = render_ratelimits_page(&ratelimits_vm(), None, "/ratelimits?x=1", &PAGE);
        // The Blocked keys table's form (the top keys row has its twin).
        let table = html.find(r#"data-test-id="blocked-table""#).expect("table");
        let start = table + html[table..].find("<form").expect("form");
        let form = &html[start..start + html[start..].find("</form>").expect("end")];
        assert!(form.contains(r#"method="post""#), "{form}");
        assert!(form.contains(r#"action="/ratelimits/unblock""#), "{form}");
        assert!(
            form.contains(r#"<input type="hidden" name="policy" value="api">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"<input type="hidden" name="key" value="client-1">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"<input type="hidden" name="back" value="/ratelimits?x=1">"#),
            "{form}"
        );
        assert!(
            form.contains(r#"data-confirm="Unblock client-1 under api?""#),
            "{form}"
        );
        assert!(
            form.contains(r#"data-test-id="unblock-button" class="button">Unblock</button>"#),
            "{form}"
        );
        // Live updates come back to the page itself.
        let fragments = ratelimits_fragments(&ratelimits_vm());
        let region = fragments
            .iter()
            .find(|f| f.id == "ratelimit-blocked")
            .expect("region");
        assert!(
            region
                .html
                .contains(r#"<input type="hidden" name="back" value="/ratelimits">"#),
            "{}",
            region.html
        );
    }

    #[test]
    fn stacked_bars_stay_in_bounds_and_keep_rejections_visible() {
        // Stacks round as a whole: never taller than the chart, and the
        // series on the baseline stays visible beside a large one.
        let vm = RateLimitsVm {
            per_minute: vec![
                RateMinute {
                    minute: MINUTE0,
                    allowed: 1_000_000,
                    rejected: 1,
                },
                RateMinute {
                    minute: MINUTE0 + 60_000,
                    allowed: 1,
                    rejected: 1,
                },
            ],
            ..ratelimits_vm()
        };
        let html = render_ratelimits_page(&vm, None, "/ratelimits", &PAGE);
        assert!(
            html.contains(r#"<rect x="0" y="99" width="4" height="1" class="bar rejected">"#),
            "{html}"
        );
        assert!(
            // The value axis tops at 2,000,000: the million is half way up.
            html.contains(r#"<rect x="0" y="49" width="4" height="50" class="bar allowed">"#),
            "{html}"
        );
        assert!(
            html.contains("<title>10:34: 1 rejected, 1,000,000 allowed</title>"),
            "{html}"
        );
    }
}
