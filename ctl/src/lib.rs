//! chatctl (placeholder).
