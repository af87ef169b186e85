//! Instance identity: which process of a fleet did something.
