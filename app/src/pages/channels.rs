//! The channels page (`/channels`): the bus observer's state and one card
//! per notification channel (rate, totals, a per-minute chart, senders and
//! the newest messages). Channel names and payloads come from any service
//! on the bus, so every piece of their text goes through leptos' escaping.

use leptos::prelude::*;

use crate::format::{counted, format_count, format_timestamp, iso_timestamp};
use crate::vm::channels::{ChannelRow, ChannelsVm, MessageRow};
use crate::vm::session::PageCtx;
use crate::widgets::chart::{BarChart, Series, stacked_peak};
use crate::widgets::shell::{Fragment, Frame, Section, document, fragment};
use crate::widgets::table::Empty;

/// The live stream of the channels page.
pub const CHANNELS_EVENTS: &str = "/events/channels";

/// The channels page (`/channels`): the notification bus as the
/// dashboard observes it, one card per channel. Read-only, so it reloads
/// itself without scripts.
pub fn render_channels_page(vm: &ChannelsVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Channels · Switchyard", Section::Channels)
        .live(CHANNELS_EVENTS)
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="channels-page">
                <h1>"Channels"</h1>
                <ChannelsRegion vm=vm />
            </section>
        }
    })
}

/// The live regions of the channels page: one, `channels`, holding the bus
/// line and every channel (a rate changes every second, so all of it is
/// live).
pub fn channels_fragments(vm: &ChannelsVm) -> Vec<Fragment> {
    vec![fragment(
        "channels",
        view! { <ChannelsRegion vm=vm.clone() /> },
    )]
}

/// How many senders a card lists before summing the rest up as "+N more":
/// a channel every instance publishes on would otherwise dwarf its card.
const TOP_SENDERS: usize = 5;

/// Messages per second with one decimal, or "–" when the figure is not a
/// number (a rate over an empty window must not print `NaN`).
pub(crate) fn format_rate(per_second: f64) -> String {
    if per_second.is_finite() {
        format!("{:.1}", per_second.max(0.0))
    } else {
        "–".into()
    }
}

/// The whole live region of `/channels`: whether the observer is
/// connected, then every channel, or a hint on where traffic comes from.
#[component]
fn ChannelsRegion(vm: ChannelsVm) -> impl IntoView {
    let (status_class, status_text) = if vm.connected {
        ("status ok", format!("Bus {}: connected", vm.bus))
    } else {
        ("status down", format!("Bus {}: not connected", vm.bus))
    };
    let body = if vm.channels.is_empty() {
        if vm.connected {
            view! {
                <Empty test_id="empty-state">
                    "No channel traffic yet. Channels appear here as soon as a service publishes on "
                    <code>"<prefix>:notifications:<channel>"</code>
                    " — or run "
                    <code>"switchyard demo"</code>
                </Empty>
            }
            .into_any()
        } else {
            view! {
                <Empty test_id="bus-down">
                    "Channel traffic is unavailable until the dashboard reconnects to the bus."
                </Empty>
            }
            .into_any()
        }
    } else {
        view! {
            <div class="channel-grid">
                {vm
                    .channels
                    .into_iter()
                    .map(|channel| view! { <ChannelCard channel /> })
                    .collect_view()}
            </div>
        }
        .into_any()
    };
    view! {
        <div id="channels">
            <p
                class=status_class
                data-test-id="bus-status"
                data-health="known"
                data-unknown="Bus: unknown"
            >
                <span class="dot" aria-hidden="true"></span>
                {status_text}
            </p>
            {body}
        </div>
    }
}

/// One channel: figures first (what an operator scans for), then the
/// chart, the senders and the newest messages.
#[component]
fn ChannelCard(channel: ChannelRow) -> impl IntoView {
    let malformed_class = if channel.malformed > 0 {
        "stat flagged"
    } else {
        "stat"
    };
    let subscribers = channel
        .subscribers
        .map(format_count)
        .unwrap_or_else(|| "–".into());
    let subscribers_title = channel
        .subscribers
        .is_none()
        .then_some("Not known on the in-process bus");
    view! {
        <article class="channel-card" data-test-id=format!("channel-{}", channel.name)>
            <h2>
                <code>{channel.name.clone()}</code>
            </h2>
            <dl class="channel-stats">
                <div class="stat">
                    <dt>"Messages/s"</dt>
                    <dd data-test-id="channel-rate">{format_rate(channel.per_second)}</dd>
                </div>
                <div class="stat">
                    <dt>"Total"</dt>
                    <dd data-test-id="channel-total">{format_count(channel.total)}</dd>
                </div>
                <div class=malformed_class>
                    <dt>"Malformed"</dt>
                    <dd data-test-id="channel-malformed">{format_count(channel.malformed)}</dd>
                </div>
                <div class="stat" title=subscribers_title>
                    <dt>"Subscribers"</dt>
                    <dd data-test-id="channel-subscribers">{subscribers}</dd>
                </div>
            </dl>
            <MessagesChart name=channel.name.clone() points=channel.per_minute.clone() />
            <Senders by_instance=channel.by_instance.clone() />
            <LastMessages messages=channel.last_messages />
        </article>
    }
}

/// Messages per minute over the last hour, drawn like the overview's
/// throughput charts.
#[component]
fn MessagesChart(name: String, points: Vec<(i64, u64)>) -> impl IntoView {
    let minutes = points.iter().map(|p| p.0).collect();
    let series = vec![Series {
        class: "messages",
        noun: "messages",
        values: points.iter().map(|p| p.1).collect(),
    }];
    let peak = stacked_peak(&series);
    let total: u64 = series[0].values.iter().sum();
    let label = format!(
        "{name}: {} messages in the last hour, at most {peak} a minute",
        format_count(total)
    );
    view! {
        <BarChart
            class="chart channel-chart"
            test_id="channel-chart".to_string()
            minutes
            series
            label
        >
            <figcaption class="muted">
                {format!("Last hour: {} · peak {peak}/min", counted(total, "message", "messages"))}
            </figcaption>
        </BarChart>
    }
}

/// Who publishes on the channel: the top senders, the rest summed up.
#[component]
fn Senders(by_instance: Vec<(String, u64)>) -> impl IntoView {
    if by_instance.is_empty() {
        return view! {
            <p class="muted senders" data-test-id="channel-instances">
                "No coord envelopes yet: senders are unknown."
            </p>
        }
        .into_any();
    }
    let rest = by_instance.get(TOP_SENDERS..).unwrap_or_default();
    let more = (!rest.is_empty()).then(|| {
        let messages: u64 = rest.iter().map(|r| r.1).sum();
        view! {
            <li class="muted">
                {format!(
                    "+{} more ({} messages)",
                    rest.len(),
                    format_count(messages),
                )}
            </li>
        }
    });
    let top = by_instance
        .iter()
        .take(TOP_SENDERS)
        .cloned()
        .map(|(instance, n)| {
            view! {
                <li>
                    <span class="sender">{instance}</span>
                    " "
                    <span class="n">{format_count(n)}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="senders">
            <h3>"By instance"</h3>
            <ul data-test-id="channel-instances">{top} {more}</ul>
        </div>
    }
    .into_any()
}

/// The newest messages, newest first: when, who, what kind of change, and
/// the payload as text (a payload is never markup, whatever it contains).
#[component]
fn LastMessages(messages: Vec<MessageRow>) -> impl IntoView {
    let list = if messages.is_empty() {
        view! { <li class="muted">"No messages kept yet."</li> }.into_any()
    } else {
        messages
            .into_iter()
            .map(|m| view! { <Message m /> })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="last-messages">
            <h3>"Last messages"</h3>
            <ol class="messages" data-test-id="channel-messages">{list}</ol>
        </div>
    }
}

/// One message of the list. Its time is absolute without scripts; the
/// page script turns it into "4 s ago" and keeps it current.
#[component]
fn Message(m: MessageRow) -> impl IntoView {
    let class = if m.malformed { "msg malformed" } else { "msg" };
    let sender = m.instance.unwrap_or_else(|| "unknown sender".into());
    view! {
        <li class=class>
            <span class="meta">
                <time datetime=iso_timestamp(m.at) title=format_timestamp(m.at) data-ago="">
                    {format_timestamp(m.at)}
                </time>
                " "
                <span class="sender">{sender}</span>
                {m
                    .change_type
                    .map(|t| {
                        view! {
                            " "
                            <span class="badge change">{t}</span>
                        }
                    })}
                {m
                    .malformed
                    .then(|| {
                        view! {
                            " "
                            <span class="badge failed" data-test-id="message-malformed">
                                "malformed"
                            </span>
                        }
                    })}
            </span>
            <code class="preview">{m.preview}</code>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn channels_page_is_a_full_live_document() {
        let vm = channels_vm(
            vec![
                channel("sw:notifications:config.flags", 0),
                channel("jobs", 2),
            ],
            true,
        );
        let html = render_channels_page(&vm, &PAGE);
        assert!(html.starts_with("<!DOCTYPE html><html"), "{html}");
        assert!(
            html.contains("<title>Channels · Switchyard</title>"),
            "{html}"
        );
        assert!(html.contains(r#"data-live="/events/channels""#), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(html.contains(r#"aria-current="page""#), "{html}");
        assert!(html.contains(r#"href="/channels""#), "{html}");
        assert!(html.contains(r#"href="/instances""#), "{html}");
        assert!(html.contains("Bus redis: connected"), "{html}");
        assert!(
            html.contains(r#"data-test-id="channel-sw:notifications:config.flags""#),
            "{html}"
        );
        assert!(html.contains(r#"data-test-id="channel-jobs""#), "{html}");
        assert!(
            html.contains(r#"<dd data-test-id="channel-rate">12.3</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-total">1,234,567</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-subscribers">3</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-test-id="channel-messages""#),
            "{html}"
        );
        // Malformed is flagged only where there are some.
        assert_eq!(html.matches(r#"class="stat flagged""#).count(), 1, "{html}");
        // 60 bars per channel, top 5 senders and the rest summed up.
        assert_eq!(html.matches(r#" class="bar "#).count(), 120, "{html}");
        assert!(html.contains("api-4"), "{html}");
        assert!(!html.contains("api-5"), "{html}");
        assert!(html.contains("+2 more (189 messages)"), "{html}");
        assert!(
            html.contains("Last hour: 1,770 messages · peak 59/min"),
            "{html}"
        );
        // Messages: time, sender, change type, malformed mark.
        assert!(html.contains(r#"datetime="2026-11-23T"#), "{html}");
        assert!(html.contains("updated"), "{html}");
        assert!(html.contains("unknown sender"), "{html}");
        assert!(html.contains(r#"class="msg malformed""#), "{html}");
        assert!(
            html.contains(r#"data-test-id="message-malformed""#),
            "{html}"
        );
        let fragments = channels_fragments(&vm);
        assert_eq!(
            fragments.iter().map(|f| f.id).collect::<Vec<_>>(),
            ["channels"]
        );
        for f in &fragments {
            assert!(
                f.html.starts_with(&format!(r#"<div id="{}""#, f.id)),
                "{}",
                f.html
            );
            assert!(html.contains(&f.html), "page lacks region {}", f.id);
        }
    }

    #[test]
    fn channels_page_escapes_foreign_names_and_payloads() {
        let mut hostile = channel(HOSTILE, 1);
        hostile.by_instance = vec![(HOSTILE.into(), 1)];
        hostile.last_messages[0].instance = Some(HOSTILE.into());
        hostile.last_messages[0].change_type = Some(HOSTILE.into());
        hostile.subscribers = None;
        hostile.per_second = f64::NAN;
        let html = render_channels_page(&channels_vm(vec![hostile], false), &PAGE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("Bus redis: not connected"), "{html}");
        assert!(
            html.contains(r#"<dd data-test-id="channel-subscribers">–</dd>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<dd data-test-id="channel-rate">–</dd>"#),
            "{html}"
        );
    }

    #[test]
    fn channels_page_without_traffic_says_where_it_comes_from() {
        let html = render_channels_page(&channels_vm(vec![], true), &PAGE);
        assert!(html.contains("No channel traffic yet"), "{html}");
        assert!(
            html.contains("<code>&lt;prefix&gt;:notifications:&lt;channel&gt;</code>"),
            "{html}"
        );
        assert!(html.contains(r#"<div id="channels""#), "{html}");
        let down = render_channels_page(&channels_vm(vec![], false), &PAGE);
        assert!(!down.contains("No channel traffic yet"), "{down}");
        assert!(down.contains("until the dashboard reconnects"), "{down}");
    }
}
