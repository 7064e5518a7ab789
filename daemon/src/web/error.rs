//! The one place where the services' client-operation errors ([`ApiError`]) become what a
//! page sees: the message of an `error` frame (the same words the gRPC API sends; an internal
//! error's details go to the log only), and whether a resume point is gone.

use crate::ops::ApiError;

/// The message a page is shown for `err`.
pub(super) fn shown(err: ApiError) -> String {
    match err {
        ApiError::Internal(detail) => {
            tracing::error!(%detail, "internal error in the web view");
            "internal error (see chatd's log)".to_owned()
        }
        e => e.to_string(),
    }
}

/// Whether `err` says the thing asked for does not exist (a message to resume after that is
/// no longer stored here).
pub(super) fn is_not_found(err: &ApiError) -> bool {
    matches!(err, ApiError::NotFound(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_see_the_apis_words_but_no_internal_detail() {
        assert_eq!(
            shown(ApiError::ResourceExhausted(
                "sending too fast (control.send_rate); retry in 5 ms".into()
            )),
            "sending too fast (control.send_rate); retry in 5 ms"
        );
        assert_eq!(
            shown(ApiError::field("text", "must not be empty")),
            "text: must not be empty"
        );
        let internal = shown(ApiError::Internal("db handle poisoned".into()));
        assert!(!internal.contains("poisoned"), "{internal}");
        assert!(is_not_found(&ApiError::NotFound("gone".into())));
        assert!(!is_not_found(&ApiError::Unavailable("later".into())));
    }
}
