//! The Alerts page (`/alerts`): pending and firing alerts with their
//! buttons, the rules editor, webhook deliveries and the history.
//!
//! The active alerts, the deliveries and the history are live regions,
//! like the banner ([`crate::widgets::banner`]). The rules editor is not: an operator types in it, and a live
//! swap would wipe what they typed. Rules only change through its forms,
//! which post and come back, so a full page load shows the new state.
//!
//! Rule names, subjects, summaries, receivers and errors are only ever text
//! and attribute values, which leptos escapes; a rule name in a URL path is
//! percent-encoded as well.

use leptos::prelude::*;

use crate::format::{encode_query, format_count, format_in};
use crate::vm::alerts::{AlertRow, AlertsVm, DeliveryRow, RuleRow};
use crate::vm::session::PageCtx;
use crate::widgets::banner::{ALERTS_PAGE, AlertMarks, SeverityBadge, format_span, title_case};
use crate::widgets::forms::{ActionForm, PostFields};
use crate::widgets::pager::Pager;
use crate::widgets::shell::{Fragment, Frame, Notice, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::At;

/// The live stream of the Alerts page (later history pages add their
/// `?offset=&limit=`, so the history region stays on the page shown).
pub const ALERTS_EVENTS: &str = "/events/alerts";

/// How long a silence can be chosen for, as (`for` value, label): the
/// server also accepts other lengths, but three cover "until the end of
/// this incident", "this shift" and "until tomorrow".
const SILENCE_LENGTHS: [(&str, &str); 3] = [("1h", "1 h"), ("4h", "4 h"), ("24h", "24 h")];

/// Severities a rule can have, as (value, label).
const SEVERITIES: [(&str, &str); 2] = [("warning", "Warning"), ("critical", "Critical")];

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

/// The Alerts page (`/alerts`): pending and firing alerts with their
/// Acknowledge and Silence buttons, the rules editor, webhook deliveries
/// and the history. `notice` reports an action outside the live regions,
/// so an update does not wipe it.
pub fn render_alerts_page(vm: &AlertsVm, notice: Option<String>, page: &PageCtx) -> String {
    let vm = vm.clone();
    // Later history pages stream their own page of history, not the first.
    let live = if vm.history_offset > 0 {
        format!(
            "{ALERTS_EVENTS}?offset={}&limit={}",
            vm.history_offset, vm.history_limit
        )
    } else {
        ALERTS_EVENTS.to_string()
    };
    let frame = Frame::new("Alerts · Switchyard", Section::Alerts).live(live);
    document(page, frame, move || {
        view! {
            <section class="alerts-page">
                <h1>"Alerts"</h1>
                <Notice notice=notice />
                <h2>"Pending and firing"</h2>
                <ActiveAlertsRegion
                    active=vm.active.clone()
                    evaluator=vm.evaluator.clone()
                    now=vm.now
                />
                <h2 id="rules">"Rules"</h2>
                <RulesEditor rules=vm.rules.clone() />
                <h2>"New rule"</h2>
                <NewRuleForm kinds=vm.kinds.clone() />
                <h2>"Webhook deliveries"</h2>
                <DeliveriesRegion
                    deliveries=vm.deliveries.clone()
                    receivers=vm.receivers.clone()
                    now=vm.now
                />
                <h2>"History"</h2>
                <HistoryRegion
                    history=vm.history.clone()
                    offset=vm.history_offset
                    total=vm.history_total
                    limit=vm.history_limit
                />
            </section>
        }
    })
}

/// The live regions of the Alerts page: `alerts-active`,
/// `alerts-deliveries` and `alerts-history` (the rules editor is not live:
/// it holds what the operator types). The banner is
/// [`banner_fragment`](crate::banner_fragment), streamed by every page.
pub fn alerts_fragments(vm: &AlertsVm) -> Vec<Fragment> {
    vec![
        fragment(
            "alerts-active",
            view! {
                <ActiveAlertsRegion
                    active=vm.active.clone()
                    evaluator=vm.evaluator.clone()
                    now=vm.now
                />
            },
        ),
        fragment(
            "alerts-deliveries",
            view! {
                <DeliveriesRegion
                    deliveries=vm.deliveries.clone()
                    receivers=vm.receivers.clone()
                    now=vm.now
                />
            },
        ),
        fragment(
            "alerts-history",
            view! {
                <HistoryRegion
                    history=vm.history.clone()
                    offset=vm.history_offset
                    total=vm.history_total
                    limit=vm.history_limit
                />
            },
        ),
    ]
}

/// Pending and firing alerts with their buttons, and which instance
/// evaluates the rules (when none does, nothing here can change).
#[component]
fn ActiveAlertsRegion(active: Vec<AlertRow>, evaluator: Option<String>, now: i64) -> impl IntoView {
    let evaluator = match evaluator {
        Some(instance) => view! {
            <p class="status ok" data-test-id="alert-evaluator" data-health="known" data-unknown="Evaluator: unknown">
                <span class="dot" aria-hidden="true"></span>
                "Rules are evaluated by "
                <code>{instance}</code>
                ", which holds the evaluation lease."
            </p>
        }
        .into_any(),
        None => view! {
            <p class="status down" data-test-id="alert-evaluator" data-health="known" data-unknown="Evaluator: unknown">
                <span class="dot" aria-hidden="true"></span>
                "No instance holds the evaluation lease: no alert starts, fires or resolves until one does."
            </p>
        }
        .into_any(),
    };
    let body = if active.is_empty() {
        view! {
            <Empty test_id="alerts-active-empty">
                "Nothing is pending or firing."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="alerts"
                test_id="alerts-table"
                head={view! {
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
                }}
            >
                {active
                    .into_iter()
                    .map(|alert| view! { <ActiveAlertRow alert now /> })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! {
        <Region id="alerts-active">
            {evaluator}
            {body}
        </Region>
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
            <PostFields back=ALERTS_PAGE />
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
fn DeliveriesRegion(
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
            <Empty test_id="deliveries-empty">
                {text}
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="deliveries"
                test_id="deliveries-table"
                head={view! {
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
                }}
            >
                {deliveries
                    .into_iter()
                    .map(|row| view! { <DeliveryTableRow row now /> })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! {
        <Region id="alerts-deliveries">
            {receivers_line}
            {body}
        </Region>
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
fn HistoryRegion(history: Vec<AlertRow>, offset: u64, total: u64, limit: u64) -> impl IntoView {
    let shown = history.len() as u64;
    let body = if history.is_empty() {
        let text = if total == 0 {
            "No alert has resolved yet."
        } else {
            "No resolved alert on this page."
        };
        view! {
            <Empty test_id="history-empty">
                {text}
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="alert-history"
                test_id="history-table"
                head={view! {
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
                }}
            >
                {history
                    .into_iter()
                    .map(|alert| view! { <HistoryTableRow alert /> })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    let pager = (total > 0 || offset > 0).then(|| {
        view! {
            <Pager
                offset
                shown
                total
                limit
                href=move |offset| {
                    format!("{ALERTS_PAGE}?offset={offset}&limit={}", limit.max(1))
                }
                test_id="history-pager"
                ids="history"
            />
        }
    });
    view! {
        <Region id="alerts-history">
            {body}
            {pager}
        </Region>
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

/// Every rule with its settings in a form. Not a live region: an update
/// arriving while an operator types would wipe the form.
#[component]
fn RulesEditor(rules: Vec<RuleRow>) -> impl IntoView {
    let body = if rules.is_empty() {
        view! {
            <Empty test_id="rules-empty">
                "No alert rule exists: create one below, or list them in the configuration file."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="alert-rules"
                test_id="rules-table"
                head={view! {
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
                }}
            >
                {rules
                    .into_iter()
                    .enumerate()
                    .map(|(index, rule)| view! { <RuleTableRow rule index /> })
                    .collect_view()}
            </Table>
            <p class="legend">
                "Target "
                <code>"*"</code>
                " watches every subject of the kind. Only failure rate, channel silence and cache hit ratio measure over a window; yes/no kinds have no threshold. "
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
            data-id=rule.name.clone()
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
                    <PostFields back=ALERTS_PAGE />
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
fn NewRuleForm(kinds: Vec<(String, String, String)>) -> impl IntoView {
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
            <PostFields back=ALERTS_PAGE />
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
    use crate::testing::*;

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

    const ALERT_REGIONS: [&str; 3] = ["alerts-active", "alerts-deliveries", "alerts-history"];

    #[test]
    fn alerts_page_renders_every_region() {
        let html = render_alerts_page(
            &alerts_vm(),
            Some("Rule emails-failing saved.".into()),
            &firing_page(),
        );
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>(1) Alerts · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/alerts""#), "{html}");
        assert!(
            !html.contains("http-equiv"),
            "a page with forms being typed in must not reload itself: {html}"
        );
        assert!(
            html.contains(r#"<a href="/alerts" aria-current="page" class="current">Alerts</a>"#),
            "{html}"
        );
        for id in ALERT_REGIONS {
            assert!(html.contains(&format!(r#"<div id="{id}""#)), "{id}: {html}");
        }
        assert!(html.contains("Rule emails-failing saved."), "{html}");
        // Active alerts: status, severity, value with unit, since and age.
        assert_eq!(
            html.matches(r#"data-test-id="alert-row""#).count(),
            2,
            "{html}"
        );
        assert!(
            html.contains(
                r#"id="alert-fp1" data-test-id="alert-row" data-fingerprint="fp1" data-rule="emails-failing" data-status="firing" data-severity="critical""#
            ),
            "{html}"
        );
        assert!(html.contains(r#"data-status="pending""#), "{html}");
        assert!(
            html.contains(r#"class="badge status-firing">Firing<"#),
            "{html}"
        );
        assert!(
            html.contains(r#"class="badge severity sev-critical">Critical<"#),
            "{html}"
        );
        assert!(html.contains(r#"class="num">12.5%</td>"#), "{html}");
        assert!(html.contains("(4 min)"), "{html}");
        assert!(
            html.contains("(6 min)"),
            "pending counts from its start: {html}"
        );
        assert!(
            html.contains("Rules are evaluated by <code>api-1</code>"),
            "{html}"
        );
        // Rules, outside the live regions.
        assert_eq!(
            html.matches(r#"data-test-id="rule-row""#).count(),
            2,
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="new-rule-form""#), "{html}");
        assert!(
            html.contains(r#"<option value="failure_rate">Failure rate (%)</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="backend_unreachable">Backend unreachable</option>"#),
            "{html}"
        );
        // Deliveries: failed ones flagged, pending ones with their next try.
        assert_eq!(
            html.matches(r#"data-test-id="delivery-row""#).count(),
            3,
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="delivery-row" data-status="failed" data-id="3" data-fingerprint="fp1" class="delivery failed-delivery""#),
            "{html}"
        );
        assert_eq!(html.matches("failed-delivery").count(), 1, "{html}");
        assert!(html.contains("HTTP 502 Bad Gateway"), "{html}");
        assert!(html.contains("(in 30 s)"), "{html}");
        assert!(
            html.contains(r#"data-test-id="delivery-sent">sent "#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="alert-receiver">https://hooks.example.com/alerts<"#),
            "{html}"
        );
        // History: times, never-fired, how long it lasted, pager.
        assert_eq!(
            html.matches(r#"data-test-id="history-row""#).count(),
            1,
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="history-lasted" class="num">3 min<"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="history-pager""#), "{html}");
        assert!(html.contains("1–1 of 1"), "{html}");
        assert!(!html.contains("history-older"), "{html}");
    }

    #[test]
    fn alerts_page_without_data_shows_every_empty_state() {
        let vm = AlertsVm {
            now: T0,
            history_limit: 50,
            ..AlertsVm::default()
        };
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(html.contains("Nothing is pending or firing."), "{html}");
        assert!(html.contains("No webhook is configured."), "{html}");
        assert!(html.contains("No alert has resolved yet."), "{html}");
        assert!(html.contains(r#"data-test-id="rules-empty""#), "{html}");
        assert!(
            html.contains("No instance holds the evaluation lease"),
            "{html}"
        );
        assert!(!html.contains("<table"), "{html}");
        assert!(!html.contains("history-pager"), "{html}");
        assert!(!html.contains(r#"data-test-id="notice""#), "{html}");
        assert!(!html.contains("ack-button"), "{html}");
        let with_webhook = render_alerts_page(
            &AlertsVm {
                receivers: vec!["https://hooks.example.com/x".into()],
                ..vm
            },
            None,
            &PAGE,
        );
        assert!(
            with_webhook.contains("Nothing has been sent yet."),
            "{with_webhook}"
        );
        assert!(
            !with_webhook.contains("No webhook is configured."),
            "{with_webhook}"
        );
    }

    #[test]
    fn alerts_fragments_are_the_regions_of_the_page() {
        for vm in [alerts_vm(), AlertsVm::default()] {
            let html = render_alerts_page(&vm, Some("done".into()), &firing_page());
            let fragments = alerts_fragments(&vm);
            assert_eq!(
                fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
                ALERT_REGIONS
            );
            for f in &fragments {
                assert!(
                    f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                    "{}",
                    f.html
                );
                assert!(html.contains(&f.html), "page lacks region {}", f.id);
                assert!(!f.html.contains(r#"data-test-id="notice""#), "{}", f.html);
                // The rules editor is never swapped under the operator.
                assert!(!f.html.contains("rule-save"), "{}", f.html);
                assert!(!f.html.contains(r#"name="target""#), "{}", f.html);
                assert!(!f.html.contains("new-rule"), "{}", f.html);
            }
            let banner = banner_fragment(&firing_banner());
            assert_eq!(banner.id, "alert-banner");
            assert!(html.contains(&banner.html), "{html}");
        }
    }

    #[test]
    fn alert_buttons_post_to_the_alert_and_come_back() {
        let mut vm = alerts_vm();
        vm.active[1].acknowledged_by = Some("dashboard".into());
        vm.active[1].silenced_until = Some(T0 + 60_000);
        let html = render_alerts_page(&vm, None, &PAGE);
        let form =
            |action: &str| element(&html, &format!(r#"action="{action}""#), "</form>").to_string();
        let ack = form("/alerts/fp1/ack");
        assert!(ack.contains(r#"method="post""#), "{ack}");
        assert!(
            ack.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{ack}"
        );
        assert!(
            ack.contains(r#"data-test-id="ack-button" class="button">Acknowledge</button>"#),
            "{ack}"
        );
        let silence = form("/alerts/fp1/silence");
        assert!(silence.contains(r#"method="post""#), "{silence}");
        assert!(
            silence.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{silence}"
        );
        assert!(
            silence.contains(r#"<select name="for" data-test-id="silence-for">"#),
            "{silence}"
        );
        for value in ["1h", "4h", "24h"] {
            assert!(
                silence.contains(&format!(r#"<option value="{value}""#)),
                "{silence}"
            );
        }
        assert!(
            silence.contains(r#"<option value="1h" selected>"#),
            "{silence}"
        );
        assert!(
            silence.contains(r#"data-test-id="silence-button""#),
            "{silence}"
        );
        assert!(
            !html.contains(r#"action="/alerts/fp1/unsilence""#),
            "{html}"
        );
        // Acknowledged and silenced: no second ack, and Unsilence instead.
        assert!(!html.contains(r#"action="/alerts/fp2/ack""#), "{html}");
        assert!(!html.contains(r#"action="/alerts/fp2/silence""#), "{html}");
        let unsilence = form("/alerts/fp2/unsilence");
        assert!(
            unsilence.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{unsilence}"
        );
        assert!(
            unsilence.contains(r#"data-test-id="unsilence-button""#),
            "{unsilence}"
        );
        let row = element(&html, r#"id="alert-fp2""#, "</tr>");
        assert!(
            row.contains(r#"class="alert-row sev-warning silenced""#),
            "{row}"
        );
        assert!(row.contains("Acknowledged by dashboard"), "{row}");
        assert!(row.contains("Silenced until "), "{row}");
        // Live updates carry the same forms.
        let active = &alerts_fragments(&vm)[0];
        assert!(active.html.contains(&ack), "{}", active.html);
    }

    #[test]
    fn rule_forms_post_every_field_by_name() {
        let mut vm = alerts_vm();
        vm.rules[1].enabled = false;
        let html = render_alerts_page(&vm, None, &PAGE);
        let row = element(
            &html,
            r#"data-test-id="rule-row" data-rule="emails-failing""#,
            "</tr>",
        );
        let save = element(row, r#"action="/alerts/rules/emails-failing""#, "</form>");
        assert!(save.contains(r#"method="post""#), "{save}");
        assert!(save.contains(r#"id="rule-form-0""#), "{save}");
        assert!(
            save.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{save}"
        );
        assert!(save.contains(r#"data-test-id="rule-save""#), "{save}");
        for field in [
            r#"<input type="text" name="target" value="*" form="rule-form-0""#,
            r#"<input type="number" step="any" name="threshold" value="5.5" form="rule-form-0""#,
            r#"name="window_secs" value="300" form="rule-form-0""#,
            r#"name="for_secs" value="60" form="rule-form-0""#,
            r#"<select name="severity" form="rule-form-0""#,
            r#"<option value="critical" selected>Critical</option>"#,
            r#"<input type="checkbox" name="enabled" value="on" checked form="rule-form-0""#,
        ] {
            assert!(row.contains(field), "{field}: {row}");
        }
        let delete = element(
            row,
            r#"action="/alerts/rules/emails-failing/delete""#,
            "</form>",
        );
        assert!(
            delete.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{delete}"
        );
        assert!(
            delete.contains("data-confirm=\"Delete rule emails-failing?"),
            "{delete}"
        );
        assert!(
            delete.contains(r#"data-test-id="rule-delete" class="button danger""#),
            "{delete}"
        );
        // A yes/no kind: threshold and window travel hidden, unchanged.
        let row = element(
            &html,
            r#"data-test-id="rule-row" data-rule="backend-down""#,
            "</tr>",
        );
        assert!(row.contains(r#"class="rule disabled""#), "{row}");
        assert!(
            row.contains(
                r#"<input type="hidden" name="threshold" value="5.5" form="rule-form-1">"#
            ),
            "{row}"
        );
        assert!(
            row.contains(
                r#"<input type="hidden" name="window_secs" value="300" form="rule-form-1">"#
            ),
            "{row}"
        );
        assert!(!row.contains("rule-threshold"), "{row}");
        assert!(!row.contains("rule-window"), "{row}");
        assert!(
            row.contains(r#"<input type="checkbox" name="enabled" value="on" form="rule-form-1""#),
            "{row}"
        );
        // New rule.
        let create = element(&html, r#"action="/alerts/rules""#, "</form>");
        assert!(create.contains(r#"method="post""#), "{create}");
        assert!(
            create.contains(r#"<input type="hidden" name="back" value="/alerts">"#),
            "{create}"
        );
        for name in ["name", "target", "threshold", "window_secs", "for_secs"] {
            assert!(
                create.contains(&format!(r#"name="{name}""#)),
                "{name}: {create}"
            );
        }
        assert!(create.contains(r#"<select name="kind""#), "{create}");
        assert!(create.contains(r#"<select name="severity""#), "{create}");
        assert!(
            create.contains(r#"name="enabled" value="on" checked"#),
            "{create}"
        );
        assert!(create.contains(r#"data-test-id="rule-create""#), "{create}");
    }

    #[test]
    fn history_pages_link_both_ways_and_stream_their_own_page() {
        let mut vm = alerts_vm();
        vm.history = (0..50)
            .map(|i| alert(&format!("h{i}"), "resolved", "warning"))
            .collect();
        vm.history_offset = 50;
        vm.history_total = 1_234;
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(
            html.contains(r#"data-live="/events/alerts?offset=50&amp;limit=50""#),
            "{html}"
        );
        assert!(html.contains("51–100 of 1,234"), "{html}");
        assert!(
            html.contains(r#"href="/alerts?offset=0&amp;limit=50" data-test-id="history-newest""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/alerts?offset=0&amp;limit=50" rel="prev""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/alerts?offset=100&amp;limit=50" rel="next""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"href="/alerts?offset=1200&amp;limit=50" data-test-id="history-oldest""#
            ),
            "{html}"
        );
        let history = &alerts_fragments(&vm)[2];
        assert!(history.html.contains("51–100 of 1,234"), "{}", history.html);
        // Past the end: say so, and offer the way back.
        vm.history.clear();
        vm.history_offset = 5_000;
        let html = render_alerts_page(&vm, None, &PAGE);
        assert!(html.contains("No resolved alert on this page."), "{html}");
        assert!(html.contains("history-newest"), "{html}");
    }

    #[test]
    fn alerts_page_escapes_names_subjects_summaries_and_errors() {
        let hostile = format!("{HOSTILE}\"x");
        let escaped_text = "&lt;script&gt;alert(1)&lt;/script&gt;\"x";
        let escaped_attr = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;x";
        let bad = |mut a: AlertRow| {
            a.rule = hostile.clone();
            a.subject = hostile.clone();
            a.summary = hostile.clone();
            a.acknowledged_by = Some(hostile.clone());
            a
        };
        let mut vm = alerts_vm();
        vm.active = vec![bad(alert("fp1", "firing", "critical"))];
        vm.history = vec![bad(alert("fp0", "resolved", "warning"))];
        vm.rules[0].name = hostile.clone();
        vm.rules[0].target = hostile.clone();
        vm.receivers = vec![hostile.clone()];
        for d in &mut vm.deliveries {
            d.rule = hostile.clone();
            d.receiver = hostile.clone();
            d.last_error = Some(hostile.clone());
        }
        vm.evaluator = Some(hostile.clone());
        vm.kinds[0].1 = hostile.clone();
        let banner = PageCtx {
            banner: AlertBannerVm {
                firing: vec![bad(alert("fp1", "firing", "critical"))],
                now: T0,
            },
            user: Some(UserVm {
                name: hostile.clone(),
                role: hostile.clone(),
                can_sign_out: true,
            }),
            csrf_token: hostile.clone(),
        };
        let html = render_alerts_page(&vm, Some(hostile.clone()), &banner);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        for text in [
            format!(r#"<code data-test-id="alert-rule">{escaped_text}</code>"#),
            format!(r#"<code>{escaped_text}</code>"#),
            format!(r#"data-test-id="alert-summary" class="summary">{escaped_text}</td>"#),
            format!(r#"data-test-id="banner-summary" class="summary">{escaped_text}</span>"#),
            format!(r#"data-test-id="history-summary" class="summary">{escaped_text}</td>"#),
            format!(r#"<code data-test-id="rule-name">{escaped_text}</code>"#),
            format!(r#"<code data-test-id="alert-receiver">{escaped_text}</code>"#),
            format!(r#"<code data-test-id="delivery-receiver">{escaped_text}</code>"#),
            format!(r#"data-test-id="delivery-error" class="error-text">{escaped_text}</span>"#),
            format!("Acknowledged by {escaped_text}"),
            format!(r#"data-test-id="notice" class="notice">{escaped_text}</p>"#),
        ] {
            assert!(html.contains(&text), "{text}: {html}");
        }
        for attr in [
            format!(r#"data-rule="{escaped_attr}" data-status="firing""#),
            format!(r#"data-test-id="rule-row" data-rule="{escaped_attr}""#),
            format!(r#"name="target" value="{escaped_attr}""#),
            format!(r#"aria-label="Target of rule {escaped_attr}""#),
            format!(r#"data-confirm="Delete rule {escaped_attr}?"#),
        ] {
            assert!(html.contains(&attr), "{attr}: {html}");
        }
        // In a path, the name is percent-encoded: no quote, no markup.
        assert!(
            html.contains(r#"action="/alerts/rules/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22x""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"action="/alerts/rules/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22x/delete""#
            ),
            "{html}"
        );
        // Every page's banner escapes just the same.
        for (page, html) in every_page(&banner) {
            assert!(!html.contains("<script>"), "{page}: {html}");
            assert!(
                html.contains(&format!(r#"class="summary">{escaped_text}</span>"#)),
                "{page}: {html}"
            );
        }
    }
}
