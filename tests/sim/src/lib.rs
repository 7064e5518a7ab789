//! chat-sim (placeholder).
