//! Empty on purpose: INCRBYFLOAT's arithmetic moved to
//! [`crate::long_double`], shared with HINCRBYFLOAT. This file only remains
//! because `command/string.rs` still declares `mod float;`; delete both
//! together.
