//! The one way this server takes a `std::sync::Mutex`.

use std::sync::{Mutex, MutexGuard};

/// A lock that survives a panicked holder. Every mutex here guards a cache,
/// counters or bookkeeping that stays meaningful after a partial update, so
/// one panic must not make every later request panic too.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
