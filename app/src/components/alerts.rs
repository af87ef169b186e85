//! The Alerts page's parts and the firing-alerts banner every page carries.
//!
//! The banner, the active alerts, the deliveries and the history are live
//! regions. The rules editor is not: an operator types in it, and a live
//! swap would wipe what they typed. Rules only change through its forms,
//! which post and come back, so a full page load shows the new state.
//!
//! Rule names, subjects, summaries, receivers and errors are only ever text
//! and attribute values, which leptos escapes; a rule name in a URL path is
//! percent-encoded as well.

use leptos::prelude::*;

use super::ratelimits::format_in;
use super::{ActionForm, CsrfField};
use crate::alerts::{AlertBannerVm, AlertRow, DeliveryRow, RuleRow};
use crate::vm::{encode_query, format_count, format_timestamp, iso_timestamp};

/// Where every form on the Alerts page comes back to: fragments are
/// rendered once for every open page, so they cannot know one page's own
/// URL, and a form post redirects to a fresh page anyway.
const ALERTS_PAGE: &str = "/alerts";

/// How long a silence can be chosen for, as (`for` value, label): the
/// server also accepts other lengths, but three cover "until the end of
/// this incident", "this shift" and "until tomorrow".
const SILENCE_LENGTHS: [(&str, &str); 3] = [("1h", "1 h"), ("4h", "4 h"), ("24h", "24 h")];

/// Severities a rule can have, as (value, label).
const SEVERITIES: [(&str, &str); 2] = [("warning", "Warning"), ("critical", "Critical")];

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

/// A measured figure with its unit (`12.5%`, `1,204 jobs`, `830 ms`), or
/// `–` when the evaluator had none: `NaN%` helps nobody.
pub(crate) fn format_value(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let number = if value.fract() == 0.0 && value.abs() < 1e15 {
        if value >= 0.0 {
            format_count(value as u64)
        } else {
            format!("{value:.0}")
        }
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match unit {
        "" => number,
        "%" => format!("{number}%"),
        unit => format!("{number} {unit}"),
    }
}

/// A number as a form field's value: exact (a rounded threshold saved
/// back would change the rule), empty when not a number.
fn input_number(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
}

/// The path segment of a rule: names are checked by the server, but one
/// from an old database or a config file must still make a working URL.
fn rule_path(name: &str) -> String {
    format!("/alerts/rules/{}", encode_query(name))
}

/// A capitalised word for a status or severity (`firing` → `Firing`).
fn title_case(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An absolute moment, the same on every page and in every time zone.
#[component]
fn At(at: i64) -> impl IntoView {
    let text = format_timestamp(at);
    let title = text.clone();
    view! {
        <time datetime=iso_timestamp(at) title=title>
            {text}
        </time>
    }
}

/// A severity as a coloured pill: critical red, warning amber.
#[component]
fn SeverityBadge(severity: String) -> impl IntoView {
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
fn AlertMarks(alert: AlertRow, now: i64) -> impl IntoView {
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

/// Pending and firing alerts with their buttons, and which instance
/// evaluates the rules (when none does, nothing here can change).
#[component]
pub fn ActiveAlertsRegion(
    active: Vec<AlertRow>,
    evaluator: Option<String>,
    now: i64,
) -> impl IntoView {
    let evaluator = match evaluator {
        Some(instance) => view! {
            <p class="status ok" data-test-id="alert-evaluator">
                <span class="dot" aria-hidden="true"></span>
                "Rules are evaluated by "
                <code>{instance}</code>
                ", which holds the evaluation lease."
            </p>
        }
        .into_any(),
        None => view! {
            <p class="status down" data-test-id="alert-evaluator">
                <span class="dot" aria-hidden="true"></span>
                "No instance holds the evaluation lease: no alert starts, fires or resolves until one does."
            </p>
        }
        .into_any(),
    };
    let body = if active.is_empty() {
        view! {
            <p class="empty" data-test-id="alerts-active-empty">
                "Nothing is pending or firing."
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="alerts" data-test-id="alerts-table">
                    <thead>
                        <tr>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Severity"</th>
                            <th scope="col">"Rule"</th>
                            <th scope="col">"Subject"</th>
                            <th scope="col" class="num">
                                "Value"
                            </th>
                            <th scope="col">"Summary"</th>
                            <th scope="col">"Since"</th>
                            <th scope="col">"Handled"</th>
                            <th scope="col">
                                <span class="visually-hidden">"Actions"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        {active
                            .into_iter()
                            .map(|alert| view! { <ActiveAlertRow alert now /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <div id="alerts-active" data-test-id="alerts-active">
            {evaluator}
            {body}
        </div>
    }
}

/// One pending or firing alert. Its id is what the banner links to.
#[component]
fn ActiveAlertRow(alert: AlertRow, now: i64) -> impl IntoView {
    let silenced = alert.is_silenced(now);
    let fp = alert.fingerprint.clone();
    let class = format!(
        "alert-row sev-{}{}",
        alert.severity,
        if silenced { " silenced" } else { "" }
    );
    let since = alert.since();
    let ack = alert.acknowledged_by.is_none().then(|| {
        view! {
            <ActionForm
                action=format!("/alerts/{fp}/ack")
                back=ALERTS_PAGE.to_string()
                label="Acknowledge"
                test_id="ack-button".to_string()
            />
        }
    });
    let silence = if silenced {
        view! {
            <ActionForm
                action=format!("/alerts/{fp}/unsilence")
                back=ALERTS_PAGE.to_string()
                label="Unsilence"
                test_id="unsilence-button".to_string()
            />
        }
        .into_any()
    } else {
        view! { <SilenceForm fingerprint=fp.clone() /> }.into_any()
    };
    view! {
        <tr
            id=format!("alert-{fp}")
            class=class
            data-test-id="alert-row"
            data-fingerprint=fp.clone()
            data-rule=alert.rule.clone()
            data-status=alert.status.clone()
            data-severity=alert.severity.clone()
        >
            <td>
                <span
                    class=format!("badge status-{}", alert.status)
                    data-test-id="alert-status"
                >
                    {title_case(&alert.status)}
                </span>
            </td>
            <td>
                <SeverityBadge severity=alert.severity.clone() />
            </td>
            <td>
                <code data-test-id="alert-rule">{alert.rule.clone()}</code>
            </td>
            <td data-test-id="alert-subject">
                <span class="muted">{alert.subject_label.clone()}</span>
                " "
                <code>{alert.subject.clone()}</code>
            </td>
            <td class="num" data-test-id="alert-value">
                {format_value(alert.value, &alert.unit)}
            </td>
            <td class="summary" data-test-id="alert-summary">
                {alert.summary.clone()}
            </td>
            <td class="since" data-test-id="alert-since">
                <At at=since />
                " "
                <span class="muted">{format!("({})", format_span(now - since))}</span>
            </td>
            <td class="marks" data-test-id="alert-marks">
                <AlertMarks alert=alert.clone() now />
            </td>
            <td class="actions">{ack} {silence}</td>
        </tr>
    }
}

/// Silence an alert for a chosen length: receivers stop being told, the
/// alert stays on the page and in the banner.
#[component]
fn SilenceForm(fingerprint: String) -> impl IntoView {
    let options = SILENCE_LENGTHS
        .iter()
        .enumerate()
        .map(|(i, (value, label))| {
            view! {
                <option value=*value selected=i == 0>
                    {*label}
                </option>
            }
        })
        .collect_view();
    view! {
        <form
            method="post"
            action=format!("/alerts/{fingerprint}/silence")
            class="inline silence-form needs-operator"
        >
            <CsrfField />
            <input type="hidden" name="back" value=ALERTS_PAGE />
            <label>
                <span class="visually-hidden">"Silence for"</span>
                <select name="for" data-test-id="silence-for">
                    {options}
                </select>
            </label>
            " "
            <button type="submit" class="button" data-test-id="silence-button">
                "Silence"
            </button>
        </form>
    }
}

/// Webhook deliveries, newest first: whether receivers were actually told,
/// and why not when they were not.
#[component]
pub fn DeliveriesRegion(
    deliveries: Vec<DeliveryRow>,
    receivers: Vec<String>,
    now: i64,
) -> impl IntoView {
    let receivers_line = (!receivers.is_empty()).then(|| {
        let count = receivers.len();
        view! {
            <p class="muted" data-test-id="alert-receivers">
                {if count == 1 { "Webhook: " } else { "Webhooks: " }}
                {receivers
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        view! {
                            {(i > 0).then_some(", ")}
                            <code data-test-id="alert-receiver">{r}</code>
                        }
                    })
                    .collect_view()}
            </p>
        }
    });
    let body = if deliveries.is_empty() {
        let text = if receivers_line.is_none() {
            "No webhook is configured."
        } else {
            "Nothing has been sent yet."
        };
        view! {
            <p class="empty" data-test-id="deliveries-empty">
                {text}
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="deliveries" data-test-id="deliveries-table">
                    <thead>
                        <tr>
                            <th scope="col">"Queued"</th>
                            <th scope="col">"Rule"</th>
                            <th scope="col">"Event"</th>
                            <th scope="col">"Receiver"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col" class="num">
                                "Attempts"
                            </th>
                            <th scope="col">"Last error"</th>
                            <th scope="col">"Sent / next attempt"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {deliveries
                            .into_iter()
                            .map(|row| view! { <DeliveryTableRow row now /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <div id="alerts-deliveries" data-test-id="alerts-deliveries">
            {receivers_line}
            {body}
        </div>
    }
}

/// One delivery; a failed one (retries given up) is flagged red, since a
/// receiver never heard of that alert.
#[component]
fn DeliveryTableRow(row: DeliveryRow, now: i64) -> impl IntoView {
    let failed = row.status == "failed";
    let when = match (row.sent_at, row.next_attempt_at) {
        (Some(sent), _) => view! {
            <span data-test-id="delivery-sent">
                "sent "
                <At at=sent />
            </span>
        }
        .into_any(),
        (None, Some(next)) if !failed => view! {
            <span data-test-id="delivery-next">
                "next "
                <At at=next />
                " "
                <span class="muted">{format!("({})", format_in(next - now))}</span>
            </span>
        }
        .into_any(),
        _ => view! { <span class="muted">"–"</span> }.into_any(),
    };
    let error = match row.last_error.clone() {
        Some(e) => view! {
            <span class="error-text" data-test-id="delivery-error">
                {e}
            </span>
        }
        .into_any(),
        None => view! { <span class="muted">"–"</span> }.into_any(),
    };
    view! {
        <tr
            class=if failed { "delivery failed-delivery" } else { "delivery" }
            data-test-id="delivery-row"
            data-status=row.status.clone()
            data-id=row.id.to_string()
            data-fingerprint=row.fingerprint.clone()
        >
            <td>
                <At at=row.created_at />
            </td>
            <td>
                <code data-test-id="delivery-rule">{row.rule.clone()}</code>
            </td>
            <td>
                <span class=format!("badge event-{}", row.event) data-test-id="delivery-event">
                    {title_case(&row.event)}
                </span>
            </td>
            <td>
                <code data-test-id="delivery-receiver">{row.receiver.clone()}</code>
            </td>
            <td>
                <span
                    class=format!("badge delivery-{}", row.status)
                    data-test-id="delivery-status"
                >
                    {title_case(&row.status)}
                </span>
            </td>
            <td class="num" data-test-id="delivery-attempts">
                {row.attempts.to_string()}
            </td>
            <td class="last-error">{error}</td>
            <td>{when}</td>
        </tr>
    }
}

/// Resolved alerts, newest first, one page at a time: how long each
/// lasted, to tell a blip from an outage.
#[component]
pub fn HistoryRegion(history: Vec<AlertRow>, offset: u64, total: u64, limit: u64) -> impl IntoView {
    let shown = history.len() as u64;
    let body = if history.is_empty() {
        let text = if total == 0 {
            "No alert has resolved yet."
        } else {
            "No resolved alert on this page."
        };
        view! {
            <p class="empty" data-test-id="history-empty">
                {text}
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="alert-history" data-test-id="history-table">
                    <thead>
                        <tr>
                            <th scope="col">"Severity"</th>
                            <th scope="col">"Rule"</th>
                            <th scope="col">"Subject"</th>
                            <th scope="col">"Summary"</th>
                            <th scope="col">"Pending"</th>
                            <th scope="col">"Fired"</th>
                            <th scope="col">"Resolved"</th>
                            <th scope="col" class="num">
                                "Lasted"
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        {history
                            .into_iter()
                            .map(|alert| view! { <HistoryTableRow alert /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let pager =
        (total > 0 || offset > 0).then(|| view! { <HistoryPager offset shown total limit /> });
    view! {
        <div id="alerts-history" data-test-id="alerts-history">
            {body}
            {pager}
        </div>
    }
}

/// One resolved alert. "Lasted" counts from when it fired (or, if it never
/// did, from when it started pending) to when it resolved.
#[component]
fn HistoryTableRow(alert: AlertRow) -> impl IntoView {
    let fired = match alert.firing_since {
        Some(at) => view! { <At at /> }.into_any(),
        None => view! { <span class="muted">"never"</span> }.into_any(),
    };
    let (resolved, lasted) = match alert.resolved_at {
        Some(at) => (
            view! { <At at /> }.into_any(),
            format_span(at - alert.since()),
        ),
        None => (
            view! { <span class="muted">"–"</span> }.into_any(),
            "–".into(),
        ),
    };
    view! {
        <tr
            data-test-id="history-row"
            data-fingerprint=alert.fingerprint.clone()
            data-rule=alert.rule.clone()
            data-status=alert.status.clone()
        >
            <td>
                <SeverityBadge severity=alert.severity.clone() />
            </td>
            <td>
                <code data-test-id="history-rule">{alert.rule.clone()}</code>
            </td>
            <td data-test-id="history-subject">
                <span class="muted">{alert.subject_label.clone()}</span>
                " "
                <code>{alert.subject.clone()}</code>
            </td>
            <td class="summary" data-test-id="history-summary">
                {alert.summary.clone()}
            </td>
            <td>
                <At at=alert.pending_since />
            </td>
            <td>{fired}</td>
            <td>{resolved}</td>
            <td class="num" data-test-id="history-lasted">
                {lasted}
            </td>
        </tr>
    }
}

/// Newest / newer / older / oldest links over the history, like the
/// queue page's pager: months of alerts stay two clicks away.
#[component]
fn HistoryPager(offset: u64, shown: u64, total: u64, limit: u64) -> impl IntoView {
    let limit = limit.max(1);
    let url = move |offset: u64| format!("{ALERTS_PAGE}?offset={offset}&limit={limit}");
    let shown_to = offset + shown;
    let first = (offset > 0).then(|| {
        view! {
            <a href=url(0) data-test-id="history-newest">
                "« Newest"
            </a>
            <a href=url(offset.saturating_sub(limit)) rel="prev" data-test-id="history-newer">
                "← Newer"
            </a>
        }
    });
    let last = (shown_to < total).then(|| {
        view! {
            <a href=url(shown_to) rel="next" data-test-id="history-older">
                "Older →"
            </a>
            <a href=url((total - 1) / limit * limit) data-test-id="history-oldest">
                "Oldest »"
            </a>
        }
    });
    let summary = if shown == 0 {
        format!("0 of {}", format_count(total))
    } else {
        format!(
            "{}–{} of {}",
            format_count(offset + 1),
            format_count(shown_to),
            format_count(total)
        )
    };
    view! {
        <p class="pager" data-test-id="history-pager">
            {first}
            <span class="summary">{summary}</span>
            {last}
        </p>
    }
}

/// Every rule with its settings in a form. Not a live region: an update
/// arriving while an operator types would wipe the form.
#[component]
pub fn RulesEditor(rules: Vec<RuleRow>) -> impl IntoView {
    let body = if rules.is_empty() {
        view! {
            <p class="empty" data-test-id="rules-empty">
                "No alert rule exists: create one below, or list them in the configuration file."
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="alert-rules" data-test-id="rules-table">
                    <thead>
                        <tr>
                            <th scope="col">"Rule"</th>
                            <th scope="col">"Kind"</th>
                            <th scope="col">"Target"</th>
                            <th scope="col">"Threshold"</th>
                            <th scope="col">"Window (s)"</th>
                            <th scope="col">"For (s)"</th>
                            <th scope="col">"Severity"</th>
                            <th scope="col">"Enabled"</th>
                            <th scope="col">
                                <span class="visually-hidden">"Actions"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        {rules
                            .into_iter()
                            .enumerate()
                            .map(|(index, rule)| view! { <RuleTableRow rule index /> })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="legend">
                "Target "
                <code>"*"</code>
                " watches every subject of the kind. Only failure rate and channel silence measure over a window; yes/no kinds have no threshold. "
                "For: how long the condition must hold before the alert fires (0 fires at once)."
            </p>
        }
        .into_any()
    };
    view! {
        <div class="alert-rules-editor" data-test-id="alert-rules">
            {body}
        </div>
    }
}

/// One rule's row. A form cannot wrap a table row, so the form sits in the
/// last cell and the row's inputs join it with `form=`; fields a kind does
/// not use travel hidden, unchanged.
#[component]
fn RuleTableRow(rule: RuleRow, index: usize) -> impl IntoView {
    let form_id = format!("rule-form-{index}");
    let action = rule_path(&rule.name);
    let delete = format!("{action}/delete");
    let confirm = format!(
        "Delete rule {}? Its alerts resolve at the next evaluation.",
        rule.name
    );
    let label = |what: &str| format!("{} of rule {}", what, rule.name);
    let threshold = if rule.uses_threshold {
        view! {
            <input
                type="number"
                step="any"
                name="threshold"
                value=input_number(rule.threshold)
                form=form_id.clone()
                aria-label=label("Threshold")
                data-test-id="rule-threshold"
            />
            " "
            <span class="unit">{rule.unit.clone()}</span>
        }
        .into_any()
    } else {
        view! {
            <span class="muted" title="This kind has no threshold">
                "–"
            </span>
            <input
                type="hidden"
                name="threshold"
                value=input_number(rule.threshold)
                form=form_id.clone()
            />
        }
        .into_any()
    };
    let window = if rule.uses_window {
        view! {
            <input
                type="number"
                min="1"
                step="1"
                name="window_secs"
                value=rule.window_secs.to_string()
                form=form_id.clone()
                aria-label=label("Window in seconds")
                data-test-id="rule-window"
            />
        }
        .into_any()
    } else {
        view! {
            <span class="muted" title="This kind does not measure over a window">
                "–"
            </span>
            <input
                type="hidden"
                name="window_secs"
                value=rule.window_secs.to_string()
                form=form_id.clone()
            />
        }
        .into_any()
    };
    let severities = SEVERITIES
        .iter()
        .map(|(value, text)| {
            view! {
                <option value=*value selected=rule.severity == *value>
                    {*text}
                </option>
            }
        })
        .collect_view();
    view! {
        <tr
            class=if rule.enabled { "rule" } else { "rule disabled" }
            data-test-id="rule-row"
            data-rule=rule.name.clone()
        >
            <th scope="row">
                <code data-test-id="rule-name">{rule.name.clone()}</code>
            </th>
            <td data-test-id="rule-kind">
                {rule.kind_label.clone()}
                <br />
                <code class="muted">{rule.kind.clone()}</code>
            </td>
            <td>
                <span class="muted">{rule.subject_label.clone()}</span>
                " "
                <input
                    type="text"
                    name="target"
                    value=rule.target.clone()
                    form=form_id.clone()
                    aria-label=label("Target")
                    data-test-id="rule-target"
                />
            </td>
            <td class="threshold">{threshold}</td>
            <td>{window}</td>
            <td>
                <input
                    type="number"
                    min="0"
                    step="1"
                    name="for_secs"
                    value=rule.for_secs.to_string()
                    form=form_id.clone()
                    aria-label=label("For, in seconds")
                    data-test-id="rule-for"
                />
            </td>
            <td>
                <select
                    name="severity"
                    form=form_id.clone()
                    aria-label=label("Severity")
                    data-test-id="rule-severity"
                >
                    {severities}
                </select>
            </td>
            <td>
                <input
                    type="checkbox"
                    name="enabled"
                    value="on"
                    checked=rule.enabled
                    form=form_id.clone()
                    aria-label=label("Enabled")
                    data-test-id="rule-enabled"
                />
            </td>
            <td class="actions">
                <form method="post" action=action id=form_id class="inline needs-admin">
                    <CsrfField />
                    <input type="hidden" name="back" value=ALERTS_PAGE />
                    <button type="submit" class="button primary" data-test-id="rule-save">
                        "Save"
                    </button>
                </form>
                " "
                <ActionForm
                    action=delete
                    back=ALERTS_PAGE.to_string()
                    label="Delete"
                    class="danger"
                    test_id="rule-delete".to_string()
                    confirm=confirm
                    needs="admin"
                />
            </td>
        </tr>
    }
}

/// Creates a rule. Not a live region, like the editor; enabled by default,
/// since a rule is created to be evaluated.
#[component]
pub fn NewRuleForm(kinds: Vec<(String, String, String)>) -> impl IntoView {
    let kinds = kinds
        .into_iter()
        .map(|(kind, label, unit)| {
            let text = if unit.is_empty() {
                label
            } else {
                format!("{label} ({unit})")
            };
            view! { <option value=kind>{text}</option> }
        })
        .collect_view();
    let severities = SEVERITIES
        .iter()
        .map(|(value, text)| view! { <option value=*value>{*text}</option> })
        .collect_view();
    view! {
        <form
            method="post"
            action="/alerts/rules"
            class="new-rule needs-admin"
            id="new-rule"
            data-test-id="new-rule-form"
        >
            <CsrfField />
            <input type="hidden" name="back" value=ALERTS_PAGE />
            <label>
                "Name "
                <input
                    type="text"
                    name="name"
                    required
                    maxlength="64"
                    pattern="[a-z0-9_.\\-]+"
                    title="1–64 of a–z, 0–9, _ . -"
                    placeholder="emails-failing"
                    data-test-id="new-rule-name"
                />
            </label>
            <label>
                "Kind " <select name="kind" required data-test-id="new-rule-kind">
                    {kinds}
                </select>
            </label>
            <label>
                "Target "
                <input type="text" name="target" value="*" data-test-id="new-rule-target" />
            </label>
            <label>
                "Threshold "
                <input
                    type="number"
                    step="any"
                    name="threshold"
                    value="0"
                    data-test-id="new-rule-threshold"
                />
            </label>
            <label>
                "Window (s) "
                <input
                    type="number"
                    min="1"
                    step="1"
                    name="window_secs"
                    value="300"
                    data-test-id="new-rule-window"
                />
            </label>
            <label>
                "For (s) "
                <input
                    type="number"
                    min="0"
                    step="1"
                    name="for_secs"
                    value="0"
                    data-test-id="new-rule-for"
                />
            </label>
            <label>
                "Severity " <select name="severity" data-test-id="new-rule-severity">
                    {severities}
                </select>
            </label>
            <label>
                <input
                    type="checkbox"
                    name="enabled"
                    value="on"
                    checked
                    data-test-id="new-rule-enabled"
                />
                " Enabled"
            </label>
            <button type="submit" class="button primary" data-test-id="rule-create">
                "Create rule"
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn values_carry_their_unit() {
        assert_eq!(format_value(12.5, "%"), "12.5%");
        assert_eq!(format_value(1204.0, "jobs"), "1,204 jobs");
        assert_eq!(format_value(830.456, "ms"), "830.46 ms");
        assert_eq!(format_value(1.0, ""), "1");
        assert_eq!(format_value(-2.0, "versions"), "-2 versions");
        assert_eq!(format_value(f64::NAN, "%"), "–");
        assert_eq!(input_number(2.5), "2.5");
        assert_eq!(input_number(300.0), "300");
        assert_eq!(input_number(f64::INFINITY), "");
    }

    #[test]
    fn rule_names_make_working_paths() {
        assert_eq!(rule_path("emails.failing"), "/alerts/rules/emails.failing");
        assert_eq!(rule_path("a/b c"), "/alerts/rules/a%2Fb%20c");
    }
}
