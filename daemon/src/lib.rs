//! chatd (placeholder).
