//! What one front door asks of another: `GetWebLink` asks the web view for a login link,
//! `GetIrcPassword` the IRC front door for a password. The traits live here, below every front
//! door, so that none of them names another's types; the app hands each implementation
//! (`web::WebLink`, `irc::IrcLink`) to the control API.

use crate::people::Who;

/// What `GetWebLink` needs of the web view (implemented by `web::WebLink`).
pub trait WebFront: std::fmt::Debug + Send + Sync {
    /// A login link for `who`, and when it expires (Unix milliseconds).
    fn login_link(&self, who: Who) -> (String, u64);
}

/// What `GetIrcPassword` needs of the IRC front door (implemented by `irc::IrcLink`).
pub trait IrcFront: std::fmt::Debug + Send + Sync {
    /// The IRC password of `who`'s account (`None` for the TCP guest: it uses the token).
    fn password(&self, who: Who) -> Option<String>;
    /// Where the IRC listener listens.
    fn addr(&self) -> std::net::SocketAddr;
}
