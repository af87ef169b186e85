//! The Channels page's view model from the traffic figures.

use app::vm::channels::{ChannelRow, ChannelsVm, MessageRow};

use super::ChannelFigures;
use super::traffic::{ChannelStats, SeenMessage};

fn message(m: &SeenMessage) -> MessageRow {
    MessageRow {
        at: m.at,
        instance: m.instance.clone(),
        change_type: m.change_type.clone(),
        preview: m.preview.clone(),
        malformed: m.malformed,
    }
}

fn row(c: &ChannelStats) -> ChannelRow {
    ChannelRow {
        name: c.name.clone(),
        per_second: c.per_second,
        total: c.total,
        malformed: c.malformed,
        subscribers: c.subscribers,
        by_instance: c.by_instance.clone(),
        per_minute: c.per_minute.clone(),
        last_messages: c.last_messages.iter().map(message).collect(),
    }
}

/// The page; an empty one when channels are not observed.
pub fn page(figures: Option<&ChannelFigures>) -> ChannelsVm {
    let Some(figures) = figures else {
        return ChannelsVm::default();
    };
    ChannelsVm {
        bus: figures.bus.to_owned(),
        connected: figures.connected,
        channels: figures.channels.iter().map(row).collect(),
    }
}

/// The overview's channels card: traffic summed, and the channels that
/// fell silent (no message in the last [`app::SILENT_MINUTES`] minutes).
pub fn glance(figures: &ChannelFigures) -> app::ChannelsGlance {
    let silent = figures
        .channels
        .iter()
        .filter(|c| {
            c.per_minute
                .iter()
                .rev()
                .take(app::SILENT_MINUTES)
                .all(|(_, n)| *n == 0)
        })
        .count();
    app::ChannelsGlance {
        channels: figures.channels.len() as u64,
        per_second: figures.channels.iter().map(|c| c.per_second).sum(),
        silent: silent as u64,
        connected: figures.connected,
    }
}
