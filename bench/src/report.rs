//! Measurements, their JSON-line form and the markdown summary table.
//!
//! Every benchmark of this directory — `switchyard-bench` and
//! `bullmq/bench.mjs` — prints one JSON object per measurement on its own
//! line, so that `bench/run` can merge the outputs of both into one table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What was measured.
pub const ENQUEUE_SINGLE: &str = "enqueue_single";
pub const ENQUEUE_BULK: &str = "enqueue_bulk";
pub const PROCESS: &str = "process";

/// One timed measurement, printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `switchyard` or `bullmq`.
    pub system: String,
    /// `redis` or `embedded` (BullMQ: `redis`).
    pub backend: String,
    /// [`ENQUEUE_SINGLE`], [`ENQUEUE_BULK`] or [`PROCESS`].
    pub measure: String,
    /// 1-based run number.
    pub run: u32,
    /// Jobs enqueued or processed in the timed section.
    pub jobs: u64,
    /// Producer tasks (single enqueue), batch size (bulk) or worker
    /// concurrency (process).
    pub concurrency: u64,
    /// Wall-clock seconds of the timed section.
    pub seconds: f64,
    pub jobs_per_sec: f64,
}

impl Measurement {
    pub fn new(
        system: &str,
        backend: &str,
        measure: &str,
        run: u32,
        jobs: u64,
        concurrency: u64,
        seconds: f64,
    ) -> Self {
        Self {
            system: system.into(),
            backend: backend.into(),
            measure: measure.into(),
            run,
            jobs,
            concurrency,
            seconds,
            jobs_per_sec: if seconds > 0.0 {
                jobs as f64 / seconds
            } else {
                0.0
            },
        }
    }

    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a measurement always serialises")
    }
}

/// Reads the measurements out of benchmark output, skipping every line that
/// is not a measurement's JSON (tables, log lines).
pub fn parse_lines(text: &str) -> Vec<Measurement> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn measure_order(m: &str) -> usize {
    match m {
        ENQUEUE_SINGLE => 0,
        ENQUEUE_BULK => 1,
        PROCESS => 2,
        _ => 3,
    }
}

fn system_order(system: &str, backend: &str) -> usize {
    match (system, backend) {
        ("switchyard", "redis") => 0,
        ("bullmq", _) => 1,
        ("switchyard", "embedded") => 2,
        _ => 3,
    }
}

/// A markdown table: one row per measure and system, the median of the
/// runs, its ratio to BullMQ's median for the same measure (when BullMQ was
/// measured) and every run in order.
pub fn table(measurements: &[Measurement]) -> String {
    type Key = (usize, usize, String, String, String);
    let mut groups: BTreeMap<Key, Vec<&Measurement>> = BTreeMap::new();
    for m in measurements {
        groups
            .entry((
                measure_order(&m.measure),
                system_order(&m.system, &m.backend),
                m.measure.clone(),
                m.system.clone(),
                m.backend.clone(),
            ))
            .or_default()
            .push(m);
    }
    let medians: BTreeMap<&Key, f64> = groups
        .iter()
        .map(|(k, runs)| {
            let rates: Vec<f64> = runs.iter().map(|m| m.jobs_per_sec).collect();
            (k, median(&rates))
        })
        .collect();
    let bullmq = |measure: &str| {
        medians
            .iter()
            .find(|(k, _)| k.2 == measure && k.3 == "bullmq")
            .map(|(_, v)| *v)
    };
    let mut out = String::new();
    out.push_str(
        "| measure | system | backend | jobs | conc. | median jobs/s | vs BullMQ | runs (jobs/s) |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---|\n");
    for (key, runs) in &groups {
        let (_, _, measure, system, backend) = key;
        let mut runs = runs.clone();
        runs.sort_by_key(|m| m.run);
        let each = runs
            .iter()
            .map(|m| format!("{:.0}", m.jobs_per_sec))
            .collect::<Vec<_>>()
            .join(", ");
        let jobs = runs.first().map(|m| m.jobs).unwrap_or(0);
        let conc = runs.first().map(|m| m.concurrency).unwrap_or(0);
        let med = medians[key];
        let ratio = match bullmq(measure) {
            Some(b) if b > 0.0 => format!("{:.2}×", med / b),
            _ => "–".to_string(),
        };
        let _ = writeln!(
            out,
            "| {measure} | {system} | {backend} | {jobs} | {conc} | {med:.0} | {ratio} | {each} |"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn parses_only_measurement_lines() {
        let m = Measurement::new("bullmq", "redis", PROCESS, 1, 100, 50, 0.5);
        let text = format!("| table |\n{}\n{{\"other\": 1}}\nlog line\n", m.json_line());
        assert_eq!(parse_lines(&text), vec![m]);
    }

    #[test]
    fn table_has_a_row_per_measure_and_system() {
        let ms = vec![
            Measurement::new("switchyard", "redis", PROCESS, 2, 100, 50, 0.01),
            Measurement::new("switchyard", "redis", PROCESS, 1, 100, 50, 0.02),
            Measurement::new("bullmq", "redis", PROCESS, 1, 100, 50, 0.01),
        ];
        let t = table(&ms);
        assert_eq!(t.lines().count(), 4);
        assert!(
            t.contains("| process | switchyard | redis | 100 | 50 | 7500 | 0.75× | 5000, 10000 |")
        );
        assert!(t.contains("| process | bullmq | redis | 100 | 50 | 10000 | 1.00× | 10000 |"));
    }
}
