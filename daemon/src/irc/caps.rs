//! The IRCv3 capabilities chatd's IRC front door offers (`CAP LS 302`) and the set a client
//! enabled.

/// What `CAP LS` lists, with the values `CAP LS 302` shows.
pub const LS: &[(&str, Option<&str>)] = &[
    ("away-notify", None),
    ("batch", None),
    ("cap-notify", None),
    ("draft/chathistory", None),
    ("echo-message", None),
    ("message-tags", None),
    ("multi-prefix", None),
    ("sasl", Some("PLAIN")),
    ("server-time", None),
    ("userhost-in-names", None),
];

/// The capabilities a client enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub away_notify: bool,
    pub batch: bool,
    pub cap_notify: bool,
    pub chathistory: bool,
    pub echo_message: bool,
    pub message_tags: bool,
    pub multi_prefix: bool,
    pub sasl: bool,
    pub server_time: bool,
    pub userhost_in_names: bool,
}

impl Caps {
    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "away-notify" => &mut self.away_notify,
            "batch" => &mut self.batch,
            "cap-notify" => &mut self.cap_notify,
            "draft/chathistory" => &mut self.chathistory,
            "echo-message" => &mut self.echo_message,
            "message-tags" => &mut self.message_tags,
            "multi-prefix" => &mut self.multi_prefix,
            "userhost-in-names" => &mut self.userhost_in_names,
            "sasl" => &mut self.sasl,
            "server-time" => &mut self.server_time,
            _ => return None,
        })
    }

    /// Applies a `CAP REQ` list (`-name` disables) as a whole: `false` (NAK, nothing
    /// changed) if any name is unknown.
    pub fn request(&mut self, list: &str) -> bool {
        let mut next = self.clone();
        for item in list.split_whitespace() {
            let (on, name) = match item.strip_prefix('-') {
                Some(n) => (false, n),
                None => (true, item),
            };
            match next.flag(name) {
                Some(f) => *f = on,
                None => return false,
            }
        }
        *self = next;
        true
    }

    /// The names enabled.
    pub fn names(&self) -> Vec<&'static str> {
        let mut me = self.clone();
        LS.iter()
            .map(|(n, _)| *n)
            .filter(|n| me.flag(n).is_some_and(|f| *f))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let mut c = Caps::default();
        assert!(c.request("server-time echo-message"));
        assert!(c.server_time && c.echo_message);
        assert!(!c.request("away-notify nonsense"));
        assert!(!c.away_notify, "a NAK changes nothing");
        assert!(c.request("-echo-message"));
        assert!(!c.echo_message);
        assert_eq!(c.names(), vec!["server-time"]);
    }
}
