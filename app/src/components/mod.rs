//! The building blocks of every page. Each component takes owned view-model
//! data and renders static HTML; leptos escapes every text node and
//! attribute value, so job names and data from producers can never inject
//! markup.
//!
//! Components whose content changes while a page is open render one element
//! with a fixed `id` (a *region*). The live stream sends that same
//! component, rendered alone, and the page's script swaps it in by id, so
//! the markup of a live update and of a full page load is written once.

mod alerts;
mod audit;
mod bullmq;
mod channels;
mod chart;
mod config;
mod instances;
mod job;
mod jobs;
mod overview;
mod queues;
mod ratelimits;
mod users;

pub use alerts::{
    ActiveAlertsRegion, AlertBannerRegion, DeliveriesRegion, HistoryRegion, NewRuleForm,
    RulesEditor,
};
pub use audit::{AuditFilterForm, AuditRegion};
pub use bullmq::{BullJobRegion, BullJobsRegion, BullQueueHeader, BullQueuesRegion};
pub use channels::ChannelsRegion;
pub use config::ConfigTable;
pub use instances::InstancesRegion;
pub use job::JobDetail;
pub use jobs::{JobsRegion, ProgressRegion, QueueHeader, SearchForm};
pub use overview::{RangeSelector, ThroughputRegion, TotalsRegion};
pub use queues::QueuesRegion;
pub use ratelimits::{
    BlockedKeysRegion, LimiterStatusRegion, PoliciesRegion, RequestsChartRegion, TopKeysRegion,
    format_window,
};
pub use users::{NewUserForm, UsersTable};

use leptos::prelude::*;

use crate::session::{CsrfToken, PageCtx, UserVm};
use crate::vm::{HealthVm, format_bytes};

/// Which top-level section a page belongs to, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/`
    Overview,
    /// `/queues…`
    Queues,
    /// `/bullmq…`: BullMQ (Node) queues.
    BullMq,
    /// `/channels`
    Channels,
    /// `/instances`
    Instances,
    /// `/ratelimits`
    RateLimits,
    /// `/alerts`
    Alerts,
    /// `/audit`
    Audit,
    /// `/users`
    Users,
    /// `/config`
    Config,
    /// Pages outside the navigation (errors).
    None,
}

/// The document around every page: one stylesheet, one script, the
/// navigation, and the live stream the page listens to.
#[component]
pub fn Shell(
    /// The `<title>`, also what a browser tab and history show.
    title: String,
    /// The navigation entry to highlight.
    section: Section,
    /// The server-sent events URL whose fragments keep this page current;
    /// pages without one are static (forms, errors).
    #[prop(optional)]
    live: Option<String>,
    /// Without JavaScript, reload every 10 s. Only for read-only pages: a
    /// reload would wipe a selection or a half-typed filter.
    #[prop(optional)]
    reload: bool,
    /// Who is signed in, the session's CSRF token and the firing alerts
    /// (shown above every page's content so a problem is seen wherever the
    /// operator is; empty, the banner is an empty region the live stream
    /// can fill).
    #[prop(optional)]
    page: PageCtx,
    /// Without the sections (the sign-in page: they would all answer with
    /// the sign-in page).
    #[prop(optional)]
    bare: bool,
    children: Children,
) -> impl IntoView {
    let admin = page.is_admin();
    let role = page.role().to_owned();
    let csrf = page.csrf_token.clone();
    let banner = page.banner.clone();
    let user = page
        .user
        .clone()
        .map(|user| view! { <UserMenu user=user /> });
    let nav = [
        (Section::Overview, "/", "Overview"),
        (Section::Queues, "/queues", "Queues"),
        (Section::BullMq, "/bullmq", "BullMQ"),
        (Section::Channels, "/channels", "Channels"),
        (Section::Instances, "/instances", "Instances"),
        (Section::RateLimits, "/ratelimits", "Rate limits"),
        (Section::Alerts, "/alerts", "Alerts"),
        (Section::Audit, "/audit", "Audit"),
        (Section::Users, "/users", "Users"),
        (Section::Config, "/config", "Configuration"),
    ];
    // Users and settings are the admin's; other roles are not shown links
    // that could only answer 403.
    let nav = nav
        .into_iter()
        .filter(|(s, _, _)| !bare && (admin || !matches!(s, Section::Users | Section::Config)));
    let is_live = live.is_some();
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                {reload
                    .then(|| {
                        view! {
                            <noscript>
                                <meta http-equiv="refresh" content="10" />
                            </noscript>
                        }
                    })}
                <title>{title}</title>
                {(!csrf.is_empty()).then(|| view! { <meta name="csrf-token" content=csrf /> })}
                <link rel="stylesheet" href="/style.css" />
                <script src="/app.js" defer></script>
            </head>
            <body data-live=live data-role=role>
                <header class="top">
                    <a class="brand" href="/">
                        "Switchyard"
                    </a>
                    <nav class="sections" aria-label="Sections">
                        {nav
                            .into_iter()
                            .map(|(s, href, label)| {
                                let current = s == section;
                                view! {
                                    <a
                                        href=href
                                        class=if current { "current" } else { "" }
                                        aria-current=current.then_some("page")
                                    >
                                        {label}
                                    </a>
                                }
                            })
                            .collect_view()}
                    </nav>
                    {user}
                    {is_live
                        .then(|| {
                            view! {
                                <span
                                    class="live-state"
                                    id="live-state"
                                    data-test-id="live-state"
                                    title="Whether this page receives live updates"
                                >
                                    "static"
                                </span>
                            }
                        })}
                </header>
                <main>
                    <AlertBannerRegion banner=banner />
                    {children()}
                </main>
            </body>
        </html>
    }
}

/// The backend's health on one line: whether the figures on the page can be
/// trusted, how fast the backend answers, and its memory where it tells.
#[component]
pub fn HealthRegion(health: HealthVm) -> impl IntoView {
    let (class, text) = if health.backend_ok {
        let latency = health
            .latency_ms
            .map(|ms| format!(", {ms:.1} ms"))
            .unwrap_or_default();
        let memory = health
            .memory_bytes
            .map(|b| format!(", {} used", format_bytes(b)))
            .unwrap_or_default();
        (
            "status ok",
            format!("Backend {}: reachable{latency}{memory}", health.backend),
        )
    } else {
        let why = health.problem.map(|p| format!(": {p}")).unwrap_or_default();
        (
            "status down",
            format!("Backend {}: unreachable{why}", health.backend),
        )
    };
    view! {
        <div id="health" class="health">
            <p class=class data-test-id="backend-status">
                <span class="dot" aria-hidden="true"></span>
                {text}
            </p>
            {health
                .dependencies
                .into_iter()
                .map(|dep| {
                    let (class, word) = if dep.down {
                        ("status down", "down")
                    } else {
                        ("status degraded", "degraded")
                    };
                    view! {
                        <p class=class data-test-id="dependency-status" data-dependency=dep.name.clone()>
                            <span class="dot" aria-hidden="true"></span>
                            {format!("{} {word}: {}", dependency_label(&dep.name), dep.detail)}
                        </p>
                    }
                })
                .collect::<Vec<_>>()}
            {health
                .stale
                .then(|| {
                    view! {
                        <p class="stale" data-test-id="stale-note">
                            "The figures below are the last known ones; they update when the backend answers again."
                        </p>
                    }
                })}
        </div>
    }
}

/// How a dependency's name reads on the page.
fn dependency_label(name: &str) -> &str {
    match name {
        "queues" => "Queue store",
        "database" => "Database",
        "ratelimits" => "Rate limiter",
        "bullmq" => "BullMQ Redis",
        other => other,
    }
}

/// A button that POSTs to `action` and comes back to `back`: every action
/// works without JavaScript. `confirm` asks first when scripts run.
#[component]
pub fn ActionForm(
    /// Where the form posts.
    action: String,
    /// The page to return to afterwards.
    back: String,
    /// The button's text.
    label: &'static str,
    /// Extra class of the button (`danger`, `primary`).
    #[prop(optional)]
    class: &'static str,
    /// A `data-test-id` for the button.
    test_id: String,
    /// A question asked before posting, when scripts run.
    #[prop(optional)]
    confirm: Option<String>,
    /// More hidden inputs (name, value): what the action applies to, when
    /// that is not in its URL (a rate-limit key can be any text, so it
    /// travels in the body rather than in a path segment).
    #[prop(optional)]
    fields: Vec<(&'static str, String)>,
    /// The least role that may use it (`operator` unless given): pages
    /// hide buttons the signed-in role may not use. The server checks it.
    #[prop(optional)]
    needs: Option<&'static str>,
) -> impl IntoView {
    let form_class = format!("inline needs-{}", needs.unwrap_or("operator"));
    let fields = fields
        .into_iter()
        .map(|(name, value)| view! { <input type="hidden" name=name value=value /> })
        .collect_view();
    view! {
        <form method="post" action=action class=form_class data-confirm=confirm>
            <CsrfField />
            <input type="hidden" name="back" value=back />
            {fields}
            <button type="submit" class=format!("button {class}") data-test-id=test_id>
                {label}
            </button>
        </form>
    }
}

/// The hidden field carrying the session's CSRF token, in every form
/// that changes state. Rendered inside a page it holds the page's token;
/// rendered in a live region (shared by every open page) it is empty and
/// the page script fills it from the page's meta tag before posting.
#[component]
pub fn CsrfField() -> impl IntoView {
    let token = use_context::<CsrfToken>().map(|t| t.0).unwrap_or_default();
    view! { <input type="hidden" name="csrf_token" value=token /> }
}

/// Who is signed in, their role, and the sign-out button.
#[component]
fn UserMenu(user: UserVm) -> impl IntoView {
    let sign_out = user.can_sign_out.then(|| {
        view! {
            <form method="post" action="/logout" class="inline">
                <CsrfField />
                <button type="submit" class="button link" data-test-id="sign-out">
                    "Sign out"
                </button>
            </form>
        }
    });
    view! {
        <span class="user" data-test-id="user-menu">
            <span data-test-id="user-name">{user.name}</span>
            " "
            <span class="badge role" data-test-id="user-role">
                {user.role}
            </span>
            " "
            {sign_out}
        </span>
    }
}

/// A one-off message after an action ("Retried 3 jobs"). Outside every
/// live region, so an update does not wipe it before it is read.
#[component]
pub fn Notice(notice: Option<String>) -> impl IntoView {
    notice.map(|n| {
        view! {
            <p class="notice" role="status" data-test-id="notice">
                {n}
            </p>
        }
    })
}
