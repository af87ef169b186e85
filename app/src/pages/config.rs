//! The configuration page (`/config`): the effective settings, passwords
//! hidden.

use leptos::prelude::*;

use crate::vm::config::ConfigVm;
use crate::vm::session::PageCtx;
use crate::widgets::shell::{Frame, Section, document};
use crate::widgets::table::Table;

/// The configuration page: the effective settings, passwords hidden.
pub fn render_config_page(vm: &ConfigVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Configuration · Switchyard", Section::Config);
    document(page, frame, move || {
        view! {
            <section class="config-page">
                <h1>"Configuration"</h1>
                <ConfigTable vm=vm />
            </section>
        }
    })
}

/// Every setting with its flag, effective value and purpose.
#[component]
fn ConfigTable(vm: ConfigVm) -> impl IntoView {
    view! {
        <p class="muted" data-test-id="config-summary">
            {format!("Switchyard {} · {} deployment", vm.version, vm.deployment)}
        </p>
        <Table
            class="config"
            test_id="config-table"
            head={view! {
                <tr>
                    <th scope="col">"Setting"</th>
                    <th scope="col">"Value"</th>
                    <th scope="col">"What it does"</th>
                </tr>
            }}
        >
            {vm
                .entries
                .into_iter()
                .map(|e| {
                    let test_id = format!("config-{}", e.flag.trim_start_matches('-'));
                    view! {
                        <tr data-test-id=test_id>
                            <th scope="row">
                                <code>{e.flag}</code>
                            </th>
                            <td>
                                <code>{e.value}</code>
                            </td>
                            <td>{e.help}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
        <p class="muted">
            "Values are layered: defaults, then the --config file, then SWITCHYARD_* environment variables, then flags. Passwords are never shown."
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn config_page_lists_settings() {
        let html = render_config_page(
            &ConfigVm {
                version: "0.1.0".into(),
                deployment: "redis".into(),
                entries: vec![ConfigEntry {
                    flag: "--redis".into(),
                    value: "redis://:***@cache:6379".into(),
                    help: "Redis for scale-out".into(),
                }],
            },
            &PAGE,
        );
        assert!(html.contains(r#"data-test-id="config-redis""#), "{html}");
        assert!(html.contains("redis://:***@cache:6379"), "{html}");
        assert!(!html.contains("data-live"), "{html}");
    }
}
