//! The users pane as a chooser: Alt-U (or F2) gives it the keys, ↑/↓ (PgUp/PgDn, Home/End)
//! choose a person, Enter opens the private window with them (as `/msg NICK` does), Esc — or
//! any key of the input line, which then does what it does there — gives the keys back.
//! Nothing typed is lost meanwhile. The mouse is not used: the window leaves it to the
//! terminal (selecting and copying text).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, App, User};

impl App {
    /// The people the users pane lists, in its order: who is online, then who is away, each
    /// by name (who is offline is not listed).
    pub fn listed_users(&self) -> Vec<&User> {
        let mut shown: Vec<&User> = self
            .users
            .iter()
            .filter(|u| u.presence != "offline")
            .collect();
        shown.sort_by(|a, b| {
            (a.presence != "online", a.nickname.to_lowercase())
                .cmp(&(b.presence != "online", b.nickname.to_lowercase()))
        });
        shown
    }

    /// Alt-U / F2: keys go to the users pane, the first person (or the last one chosen)
    /// picked.
    pub(super) fn pick_users(&mut self) {
        let listed = self.listed_users();
        let keep = self
            .picked
            .as_ref()
            .is_some_and(|p| listed.iter().any(|u| &u.nickname == p));
        if !keep {
            self.picked = listed.first().map(|u| u.nickname.clone());
        }
        self.picking = true;
    }

    /// A key while the users pane has them; `None`: not one of its keys.
    pub(super) fn on_users_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let listed: Vec<String> = self
            .listed_users()
            .iter()
            .map(|u| u.nickname.clone())
            .collect();
        let at = self
            .picked
            .as_ref()
            .and_then(|p| listed.iter().position(|n| n == p));
        let last = listed.len().saturating_sub(1);
        let to = match key.code {
            KeyCode::Esc | KeyCode::F(2) => {
                self.picking = false;
                return Some(Vec::new());
            }
            KeyCode::Char('u') | KeyCode::Char('U') if alt => {
                self.picking = false;
                return Some(Vec::new());
            }
            KeyCode::Enter => return Some(self.open_picked()),
            KeyCode::Up => at.map_or(last, |i| i.saturating_sub(1)),
            KeyCode::Down => at.map_or(0, |i| (i + 1).min(last)),
            KeyCode::PageUp => at.map_or(0, |i| i.saturating_sub(10)),
            KeyCode::PageDown => at.map_or(0, |i| (i + 10).min(last)),
            KeyCode::Home => 0,
            KeyCode::End => last,
            _ => return None,
        };
        self.picked = listed.get(to).cloned();
        Some(Vec::new())
    }

    /// Enter in the users pane: the private window with the person chosen.
    fn open_picked(&mut self) -> Vec<Action> {
        let Some(nick) = self.picked.clone() else {
            self.picking = false;
            self.notice("nobody to choose: the users pane is empty");
            return Vec::new();
        };
        if self.users.iter().any(|u| u.me && u.nickname == nick) {
            self.notice("that is you: choose somebody else (Esc goes back to typing)");
            return Vec::new();
        }
        self.picking = false;
        self.query(&nick, "")
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::NetEvent;
    use super::super::kit::*;
    use super::*;

    #[test]
    fn the_users_pane_picks_a_person_and_opens_their_window() {
        let mut app = as_alice();
        app.on_net(NetEvent::Users(vec![
            user("alice", "online", true),
            user("dave", "away", false),
            user("carol", "online", false),
            user("erin", "offline", false),
        ]));
        app.input.set("half typed");
        app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::ALT));
        assert!(app.picking);
        assert_eq!(app.picked.as_deref(), Some("alice"), "the pane's order");
        // Enter on oneself says so and stays.
        assert!(app.on_key(key(KeyCode::Enter)).is_empty());
        assert!(app.picking);
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.picked.as_deref(), Some("carol"));
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Down));
        assert_eq!(
            app.picked.as_deref(),
            Some("dave"),
            "offline erin is not listed"
        );
        app.on_key(key(KeyCode::Up));
        assert!(app.on_key(key(KeyCode::Enter)).is_empty());
        assert!(!app.picking);
        assert_eq!(app.shown().title(), "@carol");
        assert_eq!(app.input.text(), "half typed", "nothing typed is lost");
        // Esc goes back to typing; a letter does too, and is typed.
        app.on_key(key(KeyCode::F(2)));
        assert!(app.picking);
        app.on_key(key(KeyCode::Esc));
        assert!(!app.picking);
        app.on_key(key(KeyCode::F(2)));
        app.on_key(key(KeyCode::Char('!')));
        assert!(!app.picking);
        assert_eq!(app.input.text(), "half typed!");
        // An empty pane: Enter says so.
        app.users.clear();
        app.picked = None;
        app.on_key(key(KeyCode::F(2)));
        app.on_key(key(KeyCode::Enter));
        assert!(!app.picking);
        assert!(
            app.shown()
                .lines
                .back()
                .is_some_and(|l| l.text.contains("nobody"))
        );
    }
}
