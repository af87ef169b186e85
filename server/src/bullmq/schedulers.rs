//! BullMQ's job schedulers and legacy repeatables on the schedules page:
//! one chosen BullMQ queue at a time (a read of that queue's keys), never
//! every queue's.

use crate::schedules::vm::SchedulesQuery;
use crate::state::AppState;

/// BullMQ queue names the page offers to choose from, at most.
const MAX_CHOICES: usize = 500;

/// The BullMQ part of the schedules page: `None` when BullMQ is not
/// configured.
pub async fn read(state: &AppState, query: &SchedulesQuery) -> Option<app::BullSchedulersVm> {
    let bull = state.bullmq.as_ref()?;
    let queues: Vec<String> = bull
        .current()
        .queues
        .keys()
        .take(MAX_CHOICES)
        .cloned()
        .collect();
    let chosen = query.bull().map(str::to_owned);
    Some(app::BullSchedulersVm {
        queues,
        queue: chosen,
        offset: query.bull_offset,
        ..app::BullSchedulersVm::default()
    })
}
