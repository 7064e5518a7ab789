//! The files service's errors.

use chat_blobs::{FetchError, Hash, StoreError};

/// What went wrong in the files service.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The blob store failed (opening it, a full quota, a disk error, a file too large).
    #[error("blob store: {0}")]
    Store(#[from] StoreError),
    /// A fetch failed in a way no other provider can help with (the store, a bad reference).
    #[error("fetching: {0}")]
    Fetch(#[from] FetchError),
    /// No provider is left to ask and the blob is still incomplete; what verified is kept
    /// for a later attempt.
    #[error(
        "no provider could deliver {hash} ({bad} sent bytes that did not verify, {gone} were unavailable)"
    )]
    NoProvider {
        /// The blob.
        hash: Hash,
        /// Providers found lying.
        bad: usize,
        /// Providers that failed otherwise (gone, cut short, not holding it).
        gone: usize,
    },
    /// The DHT could not be asked for providers.
    #[error("looking up providers: {0}")]
    Lookup(String),
    /// No node would keep a private file for an offline recipient (their reasons).
    #[error("{0}")]
    Hold(String),
    /// A private file did not decrypt, or its plaintext does not match its hash.
    #[error("the private file does not open: {0}")]
    Decrypt(String),
    /// A blocking task ended without an answer (the runtime is shutting down).
    #[error("the blob store's worker stopped")]
    Worker,
}
