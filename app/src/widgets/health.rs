//! The backend's health line, on the overview and the queues page.

use leptos::prelude::*;

use crate::format::format_bytes;
use crate::vm::queues::HealthVm;

/// The backend's health on one line: whether the figures on the page can be
/// trusted, how fast the backend answers, and its memory where it tells.
#[component]
pub fn HealthRegion(health: HealthVm) -> impl IntoView {
    let backend = health.backend.clone();
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
            <p
                class=class
                data-test-id="backend-status"
                data-health="known"
                data-unknown=format!("Backend {}: unknown", backend)
            >
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
                        <p
                            class=class
                            data-test-id="dependency-status"
                            data-dependency=dep.name.clone()
                            data-health="known"
                            data-unknown=format!("{}: unknown", dependency_label(&dep.name))
                        >
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

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn dependencies_that_are_not_ok_get_a_line_each() {
        let mut vm = queues_vm(vec![], true);
        vm.health.dependencies = vec![
            DependencyVm {
                name: "database".into(),
                down: true,
                detail: "postgres: the schema is missing <b>".into(),
            },
            DependencyVm {
                name: "ratelimits".into(),
                down: false,
                detail: "Redis unreachable; deciding with the local fallback".into(),
            },
        ];
        let html = render_queues_page(&vm, &PAGE);
        assert!(
            html.contains("Database down: postgres: the schema is missing &lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-test-id="dependency-status" data-dependency="database" data-health="known" data-unknown="Database: unknown" class="status down""#
            ),
            "{html}"
        );
        assert!(
            html.contains("Rate limiter degraded: Redis unreachable"),
            "{html}"
        );
        assert!(html.contains(r#"class="status degraded""#), "{html}");
        let healthy = render_queues_page(&queues_vm(vec![], true), &PAGE);
        assert!(!healthy.contains("dependency-status"), "{healthy}");
    }
}
