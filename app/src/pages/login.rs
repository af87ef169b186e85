//! The sign-in page (`/login`): name and password, posted with where to go
//! afterwards.

use leptos::prelude::*;

use crate::vm::session::{LoginVm, PageCtx};
use crate::widgets::shell::{Frame, Notice, Section, document};

/// The sign-in page. Not live and without the sections, which would all
/// answer with this page.
pub fn render_login_page(vm: &LoginVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Sign in · Switchyard", Section::None).bare();
    document(page, frame, move || {
        view! {
            <section class="login-page">
                <h1>"Sign in"</h1>
                <Notice notice=vm.notice.clone() />
                {vm
                    .error
                    .clone()
                    .map(|e| {
                        view! {
                            <p class="error-message" role="alert" data-test-id="login-error">
                                {e}
                            </p>
                        }
                    })}
                <form method="post" action="/login" class="login" data-test-id="login-form">
                    <input type="hidden" name="next" value=vm.next.clone() />
                    <label>
                        "User name"
                        <input
                            type="text"
                            name="username"
                            value=vm.username.clone()
                            required
                            autocomplete="username"
                            autofocus
                            data-test-id="login-username"
                        />
                    </label>
                    <label>
                        "Password"
                        <input
                            type="password"
                            name="password"
                            required
                            autocomplete="current-password"
                            data-test-id="login-password"
                        />
                    </label>
                    <button type="submit" class="button primary" data-test-id="login-submit">
                        "Sign in"
                    </button>
                </form>
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn the_login_page_keeps_the_name_and_where_to_go() {
        let html = render_login_page(
            &LoginVm {
                username: "ada<b>".into(),
                next: "/queues?state=failed".into(),
                error: Some("wrong user name or password".into()),
                notice: None,
            },
            &PAGE,
        );
        assert!(
            html.contains("<title>Sign in · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"value="ada&lt;b&gt;""#), "{html}");
        assert!(
            html.contains(r#"<input type="hidden" name="next" value="/queues?state=failed">"#),
            "{html}"
        );
        assert!(html.contains("wrong user name or password"), "{html}");
        assert!(html.contains(r#"type="password""#), "{html}");
        // No sections to click while signed out.
        assert!(!html.contains(r#"href="/queues""#), "{html}");
    }
}
