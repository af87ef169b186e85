//! The firing-alerts banner every page carries, so nobody has to open the
//! Alerts page to learn something is wrong, and the alert parts the Alerts
//! page shares with it.
//!
//! Rule names, subjects and summaries are only ever text and attribute
//! values, which leptos escapes.

use leptos::prelude::*;

use super::shell::{Fragment, fragment};
use super::time::At;
use crate::format::{format_in, format_timestamp};
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
                    {format!("Silenced ({})", format_in(until - now))}
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
#[component]
pub fn AlertBannerRegion(banner: AlertBannerVm) -> impl IntoView {
    let now = banner.now;
    let any = !banner.firing.is_empty();
    let loud = banner.firing.iter().any(|a| !a.is_silenced(now));
    let class = if !any {
        "alert-banner"
    } else if banner
        .firing
        .iter()
        .any(|a| a.severity == "critical" && !a.is_silenced(now))
    {
        "alert-banner firing sev-critical"
    } else if loud {
        "alert-banner firing sev-warning"
    } else {
        "alert-banner firing quiet"
    };
    let lines = any.then(|| {
        let heading = match banner.firing.len() {
            1 => "1 alert is firing".to_string(),
            n => format!("{n} alerts are firing"),
        };
        view! {
            <p class="banner-title">
                <strong>{heading}</strong>
            </p>
            <ul class="alert-lines">
                {banner
                    .firing
                    .into_iter()
                    .map(|alert| view! { <BannerLine alert now /> })
                    .collect_view()}
            </ul>
        }
    });
    view! {
        <div id="alert-banner" data-test-id="alert-banner" class=class role=any.then_some("alert")>
            {lines}
        </div>
    }
}

/// One firing alert in the banner: how bad, what, since when, whether
/// someone is on it, and where to act on it.
#[component]
fn BannerLine(alert: AlertRow, now: i64) -> impl IntoView {
    let silenced = alert.is_silenced(now);
    let class = format!(
        "alert-line sev-{}{}",
        alert.severity,
        if silenced { " silenced" } else { "" }
    );
    let since = alert.since();
    let href = format!("{ALERTS_PAGE}#alert-{}", alert.fingerprint);
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
            <span class="since" data-test-id="banner-since">
                "since "
                <At at=since />
                {format!(" ({})", format_span(now - since))}
            </span>
            " "
            <AlertMarks alert=alert.clone() now />
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
            region
                .html
                .starts_with(r#"<div id="alert-banner" data-test-id="alert-banner" role="alert""#),
            "{}",
            region.html
        );
        let quiet = banner_fragment(&NO_ALERTS);
        assert_eq!(
            quiet.html,
            r#"<div id="alert-banner" data-test-id="alert-banner" class="alert-banner"><!></div>"#
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
        assert!(!html.contains("alert-acked"), "{html}");
        // Acknowledged and silenced: marked, and a silenced warning is quiet.
        let handled = AlertRow {
            acknowledged_by: Some("dashboard".into()),
            acknowledged_at: Some(T0 - 60_000),
            silenced_until: Some(T0 + 3 * 3_600_000),
            ..alert("fp2", "firing", "warning")
        };
        let html = banner_fragment(&AlertBannerVm {
            firing: vec![handled.clone()],
            now: T0,
        })
        .html;
        assert!(
            html.contains(r#"class="alert-banner firing quiet""#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="alert-line sev-warning silenced""#),
            "{html}"
        );
        assert!(html.contains("Acknowledged by dashboard"), "{html}");
        assert!(html.contains("Silenced (in 3 h)"), "{html}");
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
