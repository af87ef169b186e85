//! Typed notification channels between service instances.
