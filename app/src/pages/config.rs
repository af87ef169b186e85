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
