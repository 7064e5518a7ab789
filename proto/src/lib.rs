//! chat-proto (placeholder).
