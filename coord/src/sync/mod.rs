//! Synced state: a versioned key/value registry shared by instances.
