//! View model of the configuration page (`/config`).

/// One setting on the configuration page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The flag that sets it (`--redis`).
    pub flag: String,
    /// Its effective value, passwords hidden.
    pub value: String,
    /// What it is for.
    pub help: String,
}

/// Everything the configuration page (`/config`) shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigVm {
    /// Switchyard's version.
    pub version: String,
    /// Which deployment is running.
    pub deployment: String,
    /// Every setting.
    pub entries: Vec<ConfigEntry>,
}
