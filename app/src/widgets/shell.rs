//! The frame of every page: the document with its head, navigation and
//! alerts banner, the one-off notice after an action, and the fragments
//! live streams carry.
//!
//! A page and its live updates render their regions with the same
//! components, so they cannot disagree on markup.

use leptos::prelude::*;

use super::banner::AlertBannerRegion;
use super::forms::{CsrfField, CsrfToken};
use crate::vm::session::{PageCtx, UserVm};

/// The doctype leptos does not emit itself; without it browsers fall back to
/// quirks mode and the stylesheet renders differently.
const DOCTYPE: &str = "<!DOCTYPE html>";

/// One live region of a page, rendered: the element whose `id` is `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The region's element id.
    pub id: &'static str,
    /// The region's outer HTML.
    pub html: String,
}

/// A region rendered alone, for a live stream.
pub fn fragment(id: &'static str, view: impl RenderHtml) -> Fragment {
    Fragment {
        id,
        html: view.to_html(),
    }
}

/// A live region: the element a page's script swaps by its `id` when the
/// stream sends it again, and tests find by the same name.
#[component]
pub fn Region(id: &'static str, children: Children) -> impl IntoView {
    view! {
        <div id=id data-test-id=id>
            {children()}
        </div>
    }
}

/// What the shell needs to know of a page besides its content.
#[derive(Debug, Clone)]
pub struct Frame {
    title: String,
    section: Section,
    live: Option<String>,
    reload: bool,
    bare: bool,
}

impl Frame {
    /// A static page: `title` is also what a browser tab and history show,
    /// `section` the navigation entry to highlight.
    pub fn new(title: impl Into<String>, section: Section) -> Self {
        Frame {
            title: title.into(),
            section,
            live: None,
            reload: false,
            bare: false,
        }
    }

    /// Kept current by the fragments of the server-sent events at `url`.
    pub fn live(self, url: impl Into<String>) -> Self {
        Frame {
            live: Some(url.into()),
            ..self
        }
    }

    /// Reloaded every 10 s where JavaScript does not run. Only for
    /// read-only pages: a reload would wipe a selection or a half-typed
    /// filter.
    pub fn reloading(self) -> Self {
        Frame {
            reload: true,
            ..self
        }
    }

    /// Without the sections (the sign-in page: they would all answer with
    /// the sign-in page).
    pub fn bare(self) -> Self {
        Frame { bare: true, ..self }
    }
}

/// A whole page, built and rendered with the page's CSRF token in context
/// so every form inside finds it ([`CsrfField`]).
pub fn document<V>(
    page: &PageCtx,
    frame: Frame,
    content: impl FnOnce() -> V + Send + 'static,
) -> String
where
    V: IntoView + 'static,
{
    let page = page.clone();
    let owner = Owner::new();
    let html = owner.with(|| {
        provide_context(CsrfToken(page.csrf_token.clone()));
        view! { <Shell frame page>{content()}</Shell> }.to_html()
    });
    format!("{DOCTYPE}{html}")
}

/// Which top-level section a page belongs to, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/`
    Overview,
    /// `/queues…`
    Queues,
    /// `/errors`, `/queues/…/errors`: failed jobs grouped by reason.
    Errors,
    /// `/bullmq…`: BullMQ (Node) queues.
    BullMq,
    /// `/workers`: who takes the queues' jobs.
    Workers,
    /// `/schedules`: repeatable jobs.
    Schedules,
    /// `/channels`
    Channels,
    /// `/instances`
    Instances,
    /// `/ratelimits`
    RateLimits,
    /// `/redis`: the Redis every capability depends on.
    Redis,
    /// `/cache`: the services' cache namespaces.
    Cache,
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
/// navigation, the alerts banner, and the live stream the page listens to.
#[component]
fn Shell(
    /// The page's title, section and live stream.
    frame: Frame,
    /// Who is signed in, the session's CSRF token and the firing alerts
    /// (shown above every page's content so a problem is seen wherever the
    /// operator is; empty, the banner is an empty region the live stream
    /// can fill).
    page: PageCtx,
    children: Children,
) -> impl IntoView {
    let Frame {
        title,
        section,
        live,
        reload,
        bare,
    } = frame;
    let admin = page.is_admin();
    let role = page.role().to_owned();
    let csrf = page.csrf_token.clone();
    let banner = page.banner.clone();
    // Firing alerts nobody silenced, in the tab's title, so trouble shows
    // from another tab; the page script keeps it current.
    let firing = banner.loud();
    let title = if firing > 0 {
        format!("({firing}) {title}")
    } else {
        title
    };
    let user = page
        .user
        .clone()
        .map(|user| view! { <UserMenu user=user /> });
    let nav = [
        (Section::Overview, "/", "Overview"),
        (Section::Queues, "/queues", "Queues"),
        (Section::Errors, "/errors", "Errors"),
        (Section::BullMq, "/bullmq", "BullMQ"),
        (Section::Workers, "/workers", "Workers"),
        (Section::Schedules, "/schedules", "Schedules"),
        (Section::Channels, "/channels", "Channels"),
        (Section::Instances, "/instances", "Instances"),
        (Section::RateLimits, "/ratelimits", "Rate limits"),
        (Section::Redis, "/redis", "Redis"),
        (Section::Cache, "/cache", "Cache"),
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
    // Jump to a job by id, or search, from every page.
    let search = (!bare && page.user.is_some()).then(|| {
        view! {
            <form
                method="get"
                action="/search"
                class="header-search"
                role="search"
                aria-label="Find a job"
            >
                <input
                    type="search"
                    name="q"
                    maxlength="256"
                    placeholder="Job id or search…"
                    aria-label="Find a job by id, or search jobs"
                    data-test-id="header-search"
                />
            </form>
        }
    });
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
                // The first stop for the keyboard: past the navigation to
                // the page's own content.
                <a class="skip-link" href="#content" data-test-id="skip-link">
                    "Skip to content"
                </a>
                <header class="top">
                    <a class="brand" href="/">
                        "Switchyard"
                    </a>
                    {(!bare)
                        .then(|| {
                            view! {
                                // On a phone the sections fold behind this
                                // button (shown by the page script; without
                                // it they wrap instead).
                                <button
                                    type="button"
                                    class="button nav-toggle"
                                    id="nav-toggle"
                                    data-test-id="nav-toggle"
                                    aria-expanded="false"
                                    aria-controls="sections"
                                    hidden
                                >
                                    "Menu"
                                </button>
                            }
                        })}
                    <nav class="sections" id="sections" aria-label="Sections">
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
                    {search}
                    {user}
                    {is_live
                        .then(|| {
                            view! {
                                <span class="live-controls">
                                    <span
                                        class="live-state"
                                        id="live-state"
                                        data-test-id="live-state"
                                        title="Whether this page receives live updates"
                                    >
                                        "static"
                                    </span>
                                    // Shown by the page script, which is what
                                    // pauses: without it there is nothing to pause.
                                    <button
                                        type="button"
                                        class="button live-pause"
                                        id="live-pause"
                                        data-test-id="live-pause"
                                        aria-pressed="false"
                                        hidden
                                    >
                                        "Pause live"
                                    </button>
                                </span>
                            }
                        })}
                </header>
                <main id="content" tabindex="-1">
                    {is_live
                        .then(|| {
                            view! {
                                <p
                                    class="live-note"
                                    id="live-note"
                                    role="status"
                                    data-test-id="live-note"
                                    hidden
                                ></p>
                            }
                        })}
                    <AlertBannerRegion banner=banner />
                    {children()}
                </main>
            </body>
        </html>
    }
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

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn rate_limits_sit_between_instances_and_configuration_in_the_nav() {
        let html = render_config_page(&ConfigVm::default(), &admin_page());
        let instances = html.find(r#"href="/instances""#).expect("instances");
        let limits = html.find(r#"href="/ratelimits""#).expect("rate limits");
        let config = html.find(r#"href="/config""#).expect("config");
        assert!(instances < limits && limits < config, "{html}");
        assert!(html.contains(">Rate limits</a>"), "{html}");
        assert!(
            !html.contains(r#"<a href="/ratelimits" aria-current"#),
            "{html}"
        );
    }

    #[test]
    fn every_page_starts_with_a_skip_link_and_live_pages_carry_their_controls() {
        let html = render_queue_page(&failed_page(), 0, &firing_page());
        // The skip link is the first thing in the body, and leads to main.
        let body = html.find("<body").expect("body");
        let first = html[body..].find("<a ").expect("a link") + body;
        assert!(
            html[first..].starts_with(r##"<a class="skip-link" href="#content""##),
            "{html}"
        );
        assert!(
            html.contains(r#"<main id="content" tabindex="-1">"#),
            "{html}"
        );
        // Pause and Menu wait for the script that makes them work.
        assert!(
            html.contains(
                r#"id="live-pause" data-test-id="live-pause" aria-pressed="false" hidden"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-controls="sections" hidden"#),
            "{html}"
        );
        assert!(html.contains(r#"id="live-note""#), "{html}");
        // Firing alerts are counted in the tab's title.
        assert!(
            html.contains("<title>(1) emails · 1 failed · Switchyard"),
            "{html}"
        );
        assert!(
            html.contains(r#"<div id="queue-header" data-title="emails · 1 failed · Switchyard">"#),
            "{html}"
        );
        // A page with nothing to keep current has no live controls.
        let config = render_config_page(&ConfigVm::default(), &admin_page());
        assert!(!config.contains("live-pause"), "{config}");
        assert!(!config.contains("live-note"), "{config}");
        assert!(config.contains("skip-link"), "{config}");
        assert!(!config.contains("<title>("), "{config}");
    }

    #[test]
    fn the_shell_shows_who_is_signed_in_and_carries_the_csrf_token() {
        let html = render_queue_page(&failed_page(), 0, &signed_in("olga", "operator"));
        assert!(
            html.contains(r#"<meta name="csrf-token" content="tok-123">"#),
            "{html}"
        );
        assert!(html.contains(r#"data-role="operator""#), "{html}");
        assert!(
            html.contains(r#"<span data-test-id="user-name">olga</span>"#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="sign-out""#), "{html}");
        // Every form that posts carries the token; forms that only GET
        // (filters, search) do not need it.
        let posts = html.matches(r#"method="post""#).count();
        assert!(posts > 3, "{html}");
        assert_eq!(
            html.matches(r#"<input type="hidden" name="csrf_token" value="tok-123">"#)
                .count(),
            posts,
            "{html}"
        );
        // Users and settings are the admin's: no links for an operator.
        assert!(!html.contains(r#"href="/config""#), "{html}");
        assert!(!html.contains(r#"href="/users""#), "{html}");
        let admin = render_queue_page(&failed_page(), 0, &admin_page());
        assert!(admin.contains(r#"href="/config""#), "{admin}");
        assert!(admin.contains(r#"href="/users""#), "{admin}");
        // Buttons say which role they need, so the stylesheet hides them
        // from a viewer.
        assert!(html.contains("needs-operator"), "{html}");
        // A live region is shared by every open page: its forms carry an
        // empty token that the page script fills in.
        let region = queue_fragments(&failed_page(), 0)
            .into_iter()
            .find(|f| f.id == "jobs")
            .expect("jobs region");
        assert!(
            region
                .html
                .contains(r#"<input type="hidden" name="csrf_token" value="">"#),
            "{}",
            region.html
        );
        // Nobody signed in: no token, no menu.
        let anonymous = render_queue_page(&failed_page(), 0, &PAGE);
        assert!(!anonymous.contains("csrf-token"), "{anonymous}");
        assert!(!anonymous.contains("user-menu"), "{anonymous}");
    }
}
