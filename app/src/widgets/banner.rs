//! The firing-alerts banner every page carries, so nobody has to open the
//! Alerts page to learn something is wrong, and the alert parts the Alerts
//! page shares with it.
//!
//! Rule names, subjects and summaries are only ever text and attribute
//! values, which leptos escapes.

use leptos::prelude::*;

use super::shell::{Fragment, fragment};
use super::time::At;
use crate::format::{format_clock, format_timestamp};
use crate::vm::alerts::{AlertBannerVm, AlertRow};

/// The Alerts page, where the banner's links lead, and where every form on
/// it comes back to: fragments are rendered once for every open page, so
/// they cannot know one page's own URL, and a form post redirects to a
/// fresh page anyway.
pub(crate) const ALERTS_PAGE: &str = "/alerts";

/// A length of time without "ago" (`45 s`, `4 min`, `2 h 5 min`,
/// `3 d 2 h`), for "firing since … (4 min)" and durations in history.
pub(crate) fn format_span(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{mins} min")
    } else if secs < 86_400 {
        if mins > 0 {
            format!("{hours} h {mins} min")
        } else {
            format!("{hours} h")
        }
    } else if hours > 0 {
        format!("{days} d {hours} h")
    } else {
        format!("{days} d")
    }
}

/// A capitalised word for a status or severity (`firing` → `Firing`).
pub(crate) fn title_case(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The firing-alerts banner alone, for every page's live stream: an alert
/// that starts firing shows on whatever page is open, and one that
/// resolves leaves it, without a reload.
pub fn banner_fragment(vm: &AlertBannerVm) -> Fragment {
    fragment(
        "alert-banner",
        view! { <AlertBannerRegion banner=vm.clone() /> },
    )
}

/// A severity as a coloured pill: critical red, warning amber.
#[component]
pub(crate) fn SeverityBadge(severity: String) -> impl IntoView {
    let class = format!("badge severity sev-{severity}");
    view! {
        <span class=class data-test-id="alert-severity">
            {title_case(&severity)}
        </span>
    }
}

/// When a silence ends, as a clock time ("12:03 UTC"), with the date when
/// that is not within the next day.
fn until_label(until: i64, now: i64) -> String {
    if until - now < 86_400_000 {
        format!("{} UTC", format_clock(until))
    } else {
        let full = format_timestamp(until);
        // "2026-12-07 12:03:04 UTC" without its seconds.
        format!("{} UTC", &full[..full.len().saturating_sub(7)])
    }
}

/// Acknowledged and silenced marks: whether someone is already on it, and
/// whether receivers are still told.
#[component]
pub(crate) fn AlertMarks(alert: AlertRow, now: i64) -> impl IntoView {
    let acked = alert.acknowledged_by.clone().map(|by| {
        let title = alert
            .acknowledged_at
            .map(|at| format!("Acknowledged at {}", format_timestamp(at)));
        view! {
            <span class="badge acked" data-test-id="alert-acked" title=title>
                {format!("Acknowledged by {by}")}
            </span>
        }
    });
    let silenced = alert
        .silenced_until
        .filter(|_| alert.is_silenced(now))
        .map(|until| {
            view! {
                <span
                    class="badge silenced"
                    data-test-id="alert-silenced"
                    title=format!("Silenced until {}", format_timestamp(until))
                >
                    {format!("Silenced until {}", until_label(until, now))}
                </span>
            }
        });
    view! {
        {acked}
        {silenced}
    }
}

/// The firing alerts, on every page, so nobody has to open the Alerts page
/// to learn something is wrong. An empty region when nothing fires, so the
/// live stream can fill it in.
///
/// Only what still needs someone takes room: a silenced alert leaves the
/// list for one "1 silenced" link, and an acknowledged one shrinks to a
/// single line naming who is on it. `data-firing` counts the loud ones (not
/// silenced), which the page script puts in the tab's title.
#[component]
pub fn AlertBannerRegion(banner: AlertBannerVm) -> impl IntoView {
    let now = banner.now;
    let (silenced, loud): (Vec<AlertRow>, Vec<AlertRow>) =
        banner.firing.into_iter().partition(|a| a.is_silenced(now));
    let class = if loud.iter().any(|a| a.severity == "critical") {
        "alert-banner firing sev-critical"
    } else if !loud.is_empty() {
        "alert-banner firing sev-warning"
    } else if !silenced.is_empty() {
        "alert-banner quiet"
    } else {
        "alert-banner"
    };
    // As `AlertBannerVm::loud` counts them, which the tab's title shows.
    let count = loud.len();
    let quiet = (!silenced.is_empty()).then(|| {
        let text = match silenced.len() {
            1 => "1 silenced alert".to_owned(),
            n => format!("{n} silenced alerts"),
        };
        view! {
            <p class="banner-silenced">
                <a href=format!("{ALERTS_PAGE}#alerts-active") data-test-id="banner-silenced">
                    {text}
                </a>
            </p>
        }
    });
    let lines = (!loud.is_empty()).then(|| {
        let heading = match loud.len() {
            1 => "1 alert is firing".to_string(),
            n => format!("{n} alerts are firing"),
        };
        view! {
            <p class="banner-title">
                <strong>{heading}</strong>
            </p>
            <ul class="alert-lines">
                {loud.into_iter().map(|alert| view! { <BannerLine alert now /> }).collect_view()}
            </ul>
        }
    });
    view! {
        <div
            id="alert-banner"
            data-test-id="alert-banner"
            class=class
            role=(count > 0).then_some("alert")
            data-firing=count.to_string()
        >
            {lines}
            {quiet}
        </div>
    }
}

/// One firing alert in the banner: how bad, what, since when, and where to
/// act on it; acknowledged, one line saying who is on it.
#[component]
fn BannerLine(alert: AlertRow, now: i64) -> impl IntoView {
    let href = format!("{ALERTS_PAGE}#alert-{}", alert.fingerprint);
    let (class, state) = match alert.acknowledged_by.clone() {
        Some(by) => (
            format!("alert-line sev-{} acked", alert.severity),
            view! {
                <span class="by" data-test-id="banner-acked">
                    {format!("acknowledged by {by}")}
                </span>
            }
            .into_any(),
        ),
        None => {
            let since = alert.since();
            (
                format!("alert-line sev-{}", alert.severity),
                view! {
                    <span class="since" data-test-id="banner-since">
                        "since "
                        <At at=since />
                        {format!(" ({})", format_span(now - since))}
                    </span>
                }
                .into_any(),
            )
        }
    };
    view! {
        <li
            class=class
            data-test-id="banner-alert"
            data-fingerprint=alert.fingerprint.clone()
            data-severity=alert.severity.clone()
        >
            <SeverityBadge severity=alert.severity.clone() />
            " "
            <span class="summary" data-test-id="banner-summary">
                {alert.summary.clone()}
            </span>
            " "
            {state}
            " "
            <a href=href data-test-id="banner-link">
                "Alerts"
            </a>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn spans_read_without_ago() {
        assert_eq!(format_span(-1), "0 s");
        assert_eq!(format_span(45_000), "45 s");
        assert_eq!(format_span(4 * 60_000 + 59_000), "4 min");
        assert_eq!(format_span(2 * 3_600_000), "2 h");
        assert_eq!(format_span(2 * 3_600_000 + 5 * 60_000), "2 h 5 min");
        assert_eq!(format_span(3 * 86_400_000 + 2 * 3_600_000), "3 d 2 h");
        assert_eq!(format_span(86_400_000), "1 d");
    }

    #[test]
    fn banner_is_on_every_page() {
        let firing = firing_banner();
        let region = banner_fragment(&firing);
        assert!(
            region.html.starts_with(
                r#"<div id="alert-banner" data-test-id="alert-banner" role="alert" data-firing="1""#
            ),
            "{}",
            region.html
        );
        let quiet = banner_fragment(&NO_ALERTS);
        assert_eq!(
            quiet.html,
            r#"<div id="alert-banner" data-test-id="alert-banner" data-firing="0" class="alert-banner"><!><!></div>"#
        );
        for (page, html) in every_page(&firing_page()) {
            assert!(html.contains(&region.html), "{page}: {html}");
            assert_eq!(
                html.matches(r#"<div id="alert-banner""#).count(),
                1,
                "{page}"
            );
            assert!(html.contains(r#"role="alert""#), "{page}: {html}");
            assert!(
                html.contains(r#"href="/alerts#alert-fp1""#),
                "{page}: {html}"
            );
            // At the top: before the page's own heading.
            let banner_at = html.find(r#"<div id="alert-banner""#).expect("banner");
            assert!(banner_at < html.find("<h1").expect("h1"), "{page}: {html}");
            // Every page links to the Alerts page from the navigation.
            assert!(html.contains(r#"href="/alerts""#), "{page}: {html}");
        }
        for (page, html) in every_page(&PAGE) {
            assert!(html.contains(&quiet.html), "{page}: {html}");
            assert!(!html.contains(r#"role="alert""#), "{page}: {html}");
            assert!(!html.contains("banner-alert"), "{page}: {html}");
        }
    }

    #[test]
    fn banner_says_how_bad_since_when_and_who_is_on_it() {
        let html = banner_fragment(&firing_banner()).html;
        assert!(
            html.contains(r#"class="alert-banner firing sev-critical""#),
            "{html}"
        );
        assert!(html.contains("1 alert is firing"), "{html}");
        assert!(
            html.contains(r#"data-test-id="banner-alert" data-fingerprint="fp1" data-severity="critical" class="alert-line sev-critical""#),
            "{html}"
        );
        assert!(html.contains(">Critical</span>"), "{html}");
        assert!(
            html.contains("emails: 12.5% of jobs failed in the last 5 min"),
            "{html}"
        );
        assert!(
            html.contains(r#"since <time datetime="2026-11-23T10:29:20Z""#),
            "{html}"
        );
        assert!(
            html.contains("2026-11-23 10:29:20 UTC</time> (4 min)"),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/alerts#alert-fp1" data-test-id="banner-link">Alerts</a>"#),
            "{html}"
        );
        assert!(!html.contains("banner-acked"), "{html}");
        // Acknowledged: one line saying who is on it, no "since".
        let acked = AlertRow {
            acknowledged_by: Some("dashboard".into()),
            acknowledged_at: Some(T0 - 60_000),
            ..alert("fp2", "firing", "warning")
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![acked.clone()],
            now: T0,
        })
        .html;
        assert!(
            html.contains(r#"class="alert-banner firing sev-warning""#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="alert-line sev-warning acked""#),
            "{html}"
        );
        assert!(html.contains("acknowledged by dashboard"), "{html}");
        assert!(!html.contains("banner-since"), "{html}");
        // Silenced: out of the list, one link to the Alerts page instead;
        // not an alert for screen readers, and not counted in the title.
        let handled = AlertRow {
            silenced_until: Some(T0 + 3 * 3_600_000),
            ..acked
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![handled.clone()],
            now: T0,
        })
        .html;
        assert!(html.contains(r#"class="alert-banner quiet""#), "{html}");
        assert!(html.contains(r#"data-firing="0""#), "{html}");
        assert!(!html.contains("banner-alert"), "{html}");
        assert!(!html.contains(r#"role="alert""#), "{html}");
        assert!(
            html.contains(r#"<a href="/alerts#alerts-active" data-test-id="banner-silenced">1 silenced alert</a>"#),
            "{html}"
        );
        // A silence that ran out is no silence.
        let expired = AlertRow {
            silenced_until: Some(T0 - 1),
            ..handled
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![expired, alert("fp3", "firing", "warning")],
            now: T0,
        })
        .html;
        assert!(
            html.contains(r#"class="alert-banner firing sev-warning""#),
            "{html}"
        );
        assert!(html.contains("2 alerts are firing"), "{html}");
        assert!(!html.contains("silenced"), "{html}");
    }
}
