//! View model of the Audit page (`/audit`): who did what, to what, when,
//! and how it ended.
//!
//! Plain data filled by the server from its audit log, so the page can be
//! rendered and tested without a database. Targets (queue names, job ids,
//! rate-limit keys, rule names) and details (backend errors) come from
//! operators and producers: they are only ever rendered as text and
//! attribute values, which leptos escapes.

use crate::format::encode_query;

/// One entry of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRow {
    /// Its id: stable across pages, for linking and tests.
    pub id: i64,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// Who acted (`anonymous` until sign-in exists).
    pub actor: String,
    /// The client's IP address, when known.
    pub address: Option<String>,
    /// What was done (`queue.pause`, …).
    pub action: String,
    /// What kind of thing it was done to (`queue`, `job`, …).
    pub target_kind: String,
    /// Which one.
    pub target: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Why it was refused or failed, or what it amounted to.
    pub detail: Option<String>,
}

impl AuditRow {
    /// Where the target is shown, for a link from the log: the queue, the
    /// job, the alert, the rules, the users or the rate limits page. None
    /// for a kind no page shows.
    pub fn target_href(&self) -> Option<String> {
        let path = |text: &str| encode_query(text);
        let target = self.target.as_str();
        match self.target_kind.as_str() {
            "queue" => Some(format!("/queues/{}", path(target))),
            "job" => target
                .split_once('/')
                .map(|(queue, id)| format!("/queues/{}/jobs/{}", path(queue), path(id))),
            "bullmq_queue" => Some(crate::vm::bullmq::bull_queue_path(target)),
            "bullmq_job" => target
                .split_once('/')
                .map(|(queue, id)| crate::vm::bullmq::bull_job_path(queue, id)),
            "alert" => Some(format!("/alerts#alert-{}", path(target))),
            "alert_rule" => Some("/alerts#rules".to_owned()),
            "user" => Some("/users".to_owned()),
            "ratelimit_key" => Some("/ratelimits".to_owned()),
            _ => None,
        }
    }

    /// The target as a person reads it: an alert by its rule (its detail
    /// names it) rather than its fingerprint alone.
    pub fn target_text(&self) -> String {
        if self.target_kind == "alert"
            && let Some(rule) = self
                .detail
                .as_deref()
                .and_then(|d| d.strip_prefix("rule "))
                .and_then(|d| d.split([',', ';', ' ']).next())
        {
            let short: String = self.target.chars().take(8).collect();
            return format!("{rule} ({short})");
        }
        self.target.clone()
    }
}

/// The filters as typed, so the form shows them again and the pager keeps
/// them; empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilterVm {
    /// Exact action.
    pub action: String,
    /// Exact actor.
    pub actor: String,
    /// Text the target contains.
    pub target: String,
    /// Exact outcome.
    pub outcome: String,
}

impl AuditFilterVm {
    /// Whether anything narrows the list: an empty log and an empty match
    /// call for different words, and "Clear" only makes sense when set.
    pub fn is_active(&self) -> bool {
        !(self.action.is_empty()
            && self.actor.is_empty()
            && self.target.is_empty()
            && self.outcome.is_empty())
    }

    /// The filters as query parameters (`action=…&outcome=…`), the unset
    /// ones left out, for links that must keep them.
    pub fn query(&self) -> String {
        [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("outcome", &self.outcome),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode_query(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// Everything the Audit page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditVm {
    /// One page of entries, newest first.
    pub rows: Vec<AuditRow>,
    /// The filters applied.
    pub filter: AuditFilterVm,
    /// Position of the first entry shown.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Entries matching the filters, in all.
    pub total: u64,
    /// Every action the server records, for the action filter's choices.
    pub actions: Vec<String>,
    /// Entries this server could not write since it started (its
    /// database refused them for long, or its queue stayed full).
    pub lost: u64,
}

impl AuditVm {
    /// The page's URL at another offset, filters and page size kept.
    pub fn url_at(&self, offset: u64) -> String {
        let filters = self.filter.query();
        let sep = if filters.is_empty() { "" } else { "&" };
        format!(
            "/audit?{filters}{sep}offset={offset}&limit={}",
            self.limit.max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, target: &str, detail: Option<&str>) -> AuditRow {
        AuditRow {
            target_kind: kind.into(),
            target: target.into(),
            detail: detail.map(Into::into),
            ..AuditRow::default()
        }
    }

    #[test]
    fn targets_link_to_what_they_name_and_alerts_read_by_their_rule() {
        let cases = [
            ("queue", "e mails", Some("/queues/e%20mails")),
            ("job", "emails/42", Some("/queues/emails/jobs/42")),
            ("job", "no-slash", None),
            ("bullmq_queue", "bq", Some("/bullmq/bq")),
            ("bullmq_job", "bq/7", Some("/bullmq/bq/jobs/7")),
            (
                "alert",
                "0123456789abcdef",
                Some("/alerts#alert-0123456789abcdef"),
            ),
            ("alert_rule", "emails-failing", Some("/alerts#rules")),
            ("user", "ada", Some("/users")),
            ("ratelimit_key", "api/client-1", Some("/ratelimits")),
            ("something", "x", None),
        ];
        for (kind, target, href) in cases {
            assert_eq!(
                row(kind, target, None).target_href().as_deref(),
                href,
                "{kind} {target}"
            );
        }
        let alert = row("alert", "0123456789abcdef", Some("rule emails-failing"));
        assert_eq!(alert.target_text(), "emails-failing (01234567)");
        assert_eq!(
            row("alert", "0123456789abcdef", None).target_text(),
            "0123456789abcdef"
        );
        assert_eq!(
            row("queue", "emails", Some("rule x")).target_text(),
            "emails"
        );
    }
}
