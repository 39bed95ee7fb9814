//! Placeholder crate; see its issue.
