//! The configuration page's table.

use leptos::prelude::*;

use crate::vm::ConfigVm;

/// Every setting with its flag, effective value and purpose.
#[component]
pub fn ConfigTable(vm: ConfigVm) -> impl IntoView {
    view! {
        <p class="muted" data-test-id="config-summary">
            {format!("Switchyard {} · {} deployment", vm.version, vm.deployment)}
        </p>
        <div class="table-wrap">
            <table class="config" data-test-id="config-table">
                <thead>
                    <tr>
                        <th scope="col">"Setting"</th>
                        <th scope="col">"Value"</th>
                        <th scope="col">"What it does"</th>
                    </tr>
                </thead>
                <tbody>
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
                </tbody>
            </table>
        </div>
        <p class="muted">
            "Values are layered: defaults, then the --config file, then SWITCHYARD_* environment variables, then flags. Passwords are never shown."
        </p>
    }
}
