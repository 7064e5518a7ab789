//! Access policy the front doors share: how many failed logins (a wrong TCP token or IRC
//! password) one address may make before it is refused for a while. The gRPC API's TCP gate
//! (`control::access`) and the IRC bridge (`irc::bridge`) count failures by this one limit, so
//! neither front door names the other; the web view keeps a slower limit of its own
//! (`web/auth.rs`).

use std::time::Duration;

use crate::chat::ratelimit::Rate;

/// Failed logins an address may make at once.
pub const FAILURE_BURST: f64 = 5.0;
/// Time for one more failed login to be allowed.
pub const FAILURE_REFILL: Duration = Duration::from_secs(2);

/// The failed-login limit as a token bucket's rate: [`FAILURE_BURST`] at once, then one per
/// [`FAILURE_REFILL`].
pub fn failed_logins() -> Rate {
    Rate {
        per_second: 1.0 / FAILURE_REFILL.as_secs_f64(),
        burst: FAILURE_BURST,
    }
}
