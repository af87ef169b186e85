//! View models of the Alerts page (`/alerts`) and of the firing-alerts
//! banner every page carries.
//!
//! Plain data filled by the server from its alert store, so the page and
//! the banner can be rendered and tested without a database. Rule names,
//! subjects, summaries, receivers and errors come from configuration, from
//! producers' queue and channel names and from remote webhooks: they are
//! only ever rendered as text and attribute values, which leptos escapes.

/// One alert, pending, firing or resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRow {
    /// Identifies the alert across evaluations (rule and subject hashed):
    /// what the buttons act on and what the banner links to.
    pub fingerprint: String,
    /// The rule that raised it.
    pub rule: String,
    /// The rule's kind (`failure_rate`, …).
    pub kind: String,
    /// What the subject is (`queue`, `instance`, `policy`, `channel`,
    /// `backend`), so the subject reads as "queue emails".
    pub subject_label: String,
    /// The queue, instance, policy or channel concerned.
    pub subject: String,
    /// `pending`, `firing` or `resolved`.
    pub status: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// The figure last compared with the threshold.
    pub value: f64,
    /// The value's unit (`%`, `jobs`, `ms`, …; empty for yes/no kinds).
    pub unit: String,
    /// One line saying what is wrong, written by the evaluator.
    pub summary: String,
    /// When the condition started to hold (ms since the epoch).
    pub pending_since: i64,
    /// When it had held long enough to fire, if it did.
    pub firing_since: Option<i64>,
    /// When the condition stopped holding, for history.
    pub resolved_at: Option<i64>,
    /// Who acknowledged it, if anyone: others need not look too.
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<i64>,
    /// Until when receivers are not told about it (ms since the epoch).
    pub silenced_until: Option<i64>,
}

impl AlertRow {
    /// Whether a silence is still running at `now`: an expired silence is
    /// no silence, whatever the stored row says.
    pub fn is_silenced(&self, now: i64) -> bool {
        self.silenced_until.is_some_and(|until| until > now)
    }

    /// Since when the alert is in its current state: firing alerts count
    /// from when they fired, pending ones from when the condition began.
    pub fn since(&self) -> i64 {
        self.firing_since.unwrap_or(self.pending_since)
    }
}

/// One rule, as its edit form shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleRow {
    /// Unique name; the edit and delete forms post to it.
    pub name: String,
    /// The kind (`failure_rate`, …): fixed once created.
    pub kind: String,
    /// The kind in words (`Failure rate`).
    pub kind_label: String,
    /// What the target names (`queue`, `instance`, …).
    pub subject_label: String,
    /// Which subject, or `*` for every one.
    pub target: String,
    /// The limit the figure is compared with, in `unit`.
    pub threshold: f64,
    /// The threshold's unit (empty for kinds without one).
    pub unit: String,
    /// The window a rate is measured over, in seconds.
    pub window_secs: u64,
    /// How long the condition must hold before firing, in seconds.
    pub for_secs: u64,
    /// `warning` or `critical`.
    pub severity: String,
    /// Disabled rules are kept but not evaluated.
    pub enabled: bool,
    /// Only some kinds (failure rate, channel silence) measure over a
    /// window: the others' window field would mislead, so it is not offered.
    pub uses_window: bool,
    /// Yes/no kinds (backend unreachable, …) have no threshold to edit.
    pub uses_threshold: bool,
}

/// One webhook delivery of an alert's change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The delivery's id in the outbox.
    pub id: i64,
    /// The alert it tells about.
    pub fingerprint: String,
    /// The alert's rule.
    pub rule: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// The receiver's display name (a URL without credentials).
    pub receiver: String,
    /// `pending`, `sent` or `failed` (gave up retrying).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt's error (a remote's answer: any text).
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<i64>,
    /// When the delivery was queued (ms since the epoch).
    pub created_at: i64,
    /// When the receiver accepted it.
    pub sent_at: Option<i64>,
}

/// Everything the Alerts page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsVm {
    /// Pending and firing alerts.
    pub active: Vec<AlertRow>,
    /// Every rule, by name.
    pub rules: Vec<RuleRow>,
    /// One page of resolved alerts, newest first.
    pub history: Vec<AlertRow>,
    /// Position of the first history row shown.
    pub history_offset: u64,
    /// Resolved alerts in all.
    pub history_total: u64,
    /// History page size.
    pub history_limit: u64,
    /// Recent webhook deliveries, newest first.
    pub deliveries: Vec<DeliveryRow>,
    /// Configured webhook receivers (display names), to tell "nothing to
    /// send to" from "nothing sent yet".
    pub receivers: Vec<String>,
    /// The instance holding the evaluation lease: only it evaluates rules,
    /// so when none does, no alert can change.
    pub evaluator: Option<String>,
    /// When the figures were read (ms since the epoch).
    pub now: i64,
    /// Every rule kind as (kind, label, unit), for the new-rule form.
    pub kinds: Vec<(String, String, String)>,
}

/// The firing alerts every page shows at its top.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertBannerVm {
    /// Firing alerts (silenced ones included: the banner counts them in
    /// one link, as a silence stops notifications, not the problem).
    pub firing: Vec<AlertRow>,
    /// When they were read (ms since the epoch), for "since … (4 min)".
    pub now: i64,
}

impl AlertBannerVm {
    /// Firing alerts nobody silenced: the banner's list and the number in
    /// the tab's title.
    pub fn loud(&self) -> usize {
        self.firing
            .iter()
            .filter(|a| !a.is_silenced(self.now))
            .count()
    }
}
