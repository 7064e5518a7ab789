//! Fuzz target: the JSON text frames a page sends on the web view's `/ws`
//! (`chatd::web::frames`: the `auth` frame, `send`/`psend` requests, `trace` questions).

use chatd::web::MAX_FRAME;
use chatd::web::frames;

fn main() {
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            if data.len() > MAX_FRAME {
                return;
            }
            let Ok(text) = std::str::from_utf8(data) else {
                return;
            };
            if let Some(a) = frames::parse_auth(text) {
                assert_eq!(a.t, "auth");
            }
            let _ = frames::trace_request(text);
            if let Ok(s) = frames::parse_send(text) {
                assert!(s.t == "send" || s.t == "psend");
            }
        });
    }
}
