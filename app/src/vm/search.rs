//! What the search page (`/search?q=`) shows.

/// One job a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchHitVm {
    /// Its queue.
    pub queue: String,
    /// Its id there.
    pub id: String,
    /// Its name (any text).
    pub name: String,
    /// Its state name.
    pub state: String,
    /// When it was enqueued (ms since the epoch).
    pub created_at: i64,
    /// The start of its last error.
    pub failed_reason: Option<String>,
}

/// The search page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPageVm {
    /// What was typed.
    pub query: String,
    /// The query read as a job id, when it can be one.
    pub id: Option<String>,
    /// The queues holding that id, with its state in each.
    pub found_in: Vec<(String, String)>,
    /// Jobs the text search found, newest first.
    pub hits: Vec<SearchHitVm>,
    /// Most hits shown.
    pub limit: usize,
    /// Whether the search looked at everything it could match.
    pub complete: bool,
    /// What it searched ("the text index … of every queue").
    pub searched: String,
    /// Jobs not in the text index yet.
    pub unindexed: u64,
    /// Why the query could not run, when it could not.
    pub error: Option<String>,
}
