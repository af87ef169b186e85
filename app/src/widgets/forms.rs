//! The parts of the forms that change state. Every form posts and the
//! server redirects back, so every action works without JavaScript; the
//! page script only adds the confirmations.

use leptos::prelude::*;

/// The CSRF token of the page being rendered, provided as context so every
/// form component finds it without threading it through each view model.
#[derive(Debug, Clone)]
pub(crate) struct CsrfToken(pub String);

/// The hidden field carrying the session's CSRF token, in every form
/// that changes state. Rendered inside a page it holds the page's token;
/// rendered in a live region (shared by every open page) it is empty and
/// the page script fills it from the page's meta tag before posting.
#[component]
pub fn CsrfField() -> impl IntoView {
    let token = use_context::<CsrfToken>().map(|t| t.0).unwrap_or_default();
    view! { <input type="hidden" name="csrf_token" value=token /> }
}

/// The hidden fields every state-changing form posts: the session's CSRF
/// token, and the page the server redirects back to.
#[component]
pub fn PostFields(#[prop(into)] back: String) -> impl IntoView {
    view! {
        <CsrfField />
        <input type="hidden" name="back" value=back />
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
    #[prop(optional)]
    label: &'static str,
    /// The button's text when it is computed (a count in it).
    #[prop(optional)]
    label_text: Option<String>,
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
            <PostFields back />
            {fields}
            <button type="submit" class=format!("button {class}") data-test-id=test_id>
                {label_text.unwrap_or_else(|| label.to_owned())}
            </button>
        </form>
    }
}

/// A page's queue filter: a GET form, so it works without the page script,
/// and outside the live regions, so what the operator types survives
/// updates. `test_id` names the form; its input is `<test_id>-queue`.
#[component]
pub fn QueueFilter(
    /// The page it filters (`/workers`).
    action: &'static str,
    /// The filter in force, if any.
    queue: Option<String>,
    /// The form's `data-test-id`.
    test_id: &'static str,
) -> impl IntoView {
    let active = queue.is_some();
    view! {
        <form method="get" action=action class="filter" data-test-id=test_id>
            <label>
                "Queue "
                <input
                    type="search"
                    name="queue"
                    value=queue.unwrap_or_default()
                    maxlength="200"
                    placeholder="any"
                    data-test-id=format!("{test_id}-queue")
                />
            </label>
            <button type="submit" class="button">
                "Show"
            </button>
            {active.then(|| view! { <a href=action>"All queues"</a> })}
        </form>
    }
}
