//! Debounced handlers: a burst of notifications becomes one reload.
