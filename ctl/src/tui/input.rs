//! The input line: editing, history (↑/↓), and Tab completion of commands and nicknames.

/// Lines remembered for ↑/↓.
pub const HISTORY: usize = 500;
/// Longest line accepted (chatd's own bound on a message is 4096 bytes).
pub const MAX_LINE: usize = 4096;

/// The line being typed.
#[derive(Debug, Default)]
pub struct Input {
    text: String,
    /// Cursor position, in characters.
    cursor: usize,
    history: Vec<String>,
    /// Position while walking the history (`None`: editing a new line).
    walking: Option<usize>,
    /// The line being typed when the walk started.
    draft: String,
    /// A Tab completion in progress: the prefix typed, the candidates' next index, and where
    /// the completed word starts (in characters).
    completing: Option<(String, usize, usize)>,
}

impl Input {
    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Replaces the text (e.g. a line that could not be sent comes back).
    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.chars().count();
        self.completing = None;
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Types `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        if self.text.len() + c.len_utf8() > MAX_LINE || c.is_control() {
            return;
        }
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
        self.completing = None;
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        let at = self.byte_at(self.cursor);
        self.text.remove(at);
        self.completing = None;
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.chars().count() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
        self.completing = None;
    }

    /// Deletes the word before the cursor (Ctrl-W).
    pub fn delete_word(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let mut start = self.cursor;
        while start > 0 && chars[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && chars[start - 1] != ' ' {
            start -= 1;
        }
        let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
        self.text.replace_range(a..b, "");
        self.cursor = start;
        self.completing = None;
    }

    /// Deletes everything before the cursor (Ctrl-U).
    pub fn delete_to_start(&mut self) {
        let at = self.byte_at(self.cursor);
        self.text.replace_range(..at, "");
        self.cursor = 0;
        self.completing = None;
    }

    /// Moves the cursor by `by` characters.
    pub fn move_by(&mut self, by: isize) {
        let n = self.text.chars().count() as isize;
        self.cursor = (self.cursor as isize + by).clamp(0, n) as usize;
        self.completing = None;
    }

    /// Moves the cursor to the start or the end.
    pub fn home(&mut self, end: bool) {
        self.cursor = if end { self.text.chars().count() } else { 0 };
        self.completing = None;
    }

    /// Keeps `line` for ↑ without putting it in the input (a line that could not be sent
    /// while something else was being typed).
    pub fn remember(&mut self, line: &str) {
        if !line.trim().is_empty() {
            self.history.push(line.to_owned());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
    }

    /// Whether Tab would complete a command (a `/word` at the start of the line).
    pub fn completing_command(&self) -> bool {
        if let Some((p, _, s)) = &self.completing {
            return *s == 0 && p.starts_with('/');
        }
        let before: String = self.text.chars().take(self.cursor).collect();
        before.starts_with('/') && !before.contains(' ')
    }

    /// Takes the line (Enter): it goes into the history and the input is empty again.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.walking = None;
        self.completing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        line
    }

    /// ↑ (`back`) or ↓ through the lines sent before.
    pub fn walk(&mut self, back: bool) {
        let n = self.history.len();
        let next = match (self.walking, back) {
            (None, true) if n > 0 => {
                self.draft = self.text.clone();
                Some(n - 1)
            }
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => {
                let draft = std::mem::take(&mut self.draft);
                self.walking = None;
                self.set(&draft);
                return;
            }
            _ => return,
        };
        self.walking = next;
        if let Some(i) = next {
            let line = self.history[i].clone();
            self.set(&line);
        }
    }

    /// Tab: completes the word before the cursor with the next of `candidates` that starts
    /// with it (any case); repeated Tabs cycle through them.
    pub fn complete(&mut self, candidates: &[String]) {
        let chars: Vec<char> = self.text.chars().collect();
        if self
            .completing
            .as_ref()
            .is_some_and(|(_, _, s)| *s > self.cursor || self.cursor > chars.len())
        {
            self.completing = None;
        }
        let (prefix, from, start) = match &self.completing {
            Some((p, i, s)) => (p.clone(), *i, *s),
            None => {
                let mut start = self.cursor;
                while start > 0 && chars[start - 1] != ' ' {
                    start -= 1;
                }
                (
                    chars[start..self.cursor].iter().collect::<String>(),
                    0,
                    start,
                )
            }
        };
        if prefix.is_empty() {
            return;
        }
        let lower = prefix.to_lowercase();
        let matching: Vec<&String> = candidates
            .iter()
            .filter(|c| c.to_lowercase().starts_with(&lower))
            .collect();
        if matching.is_empty() {
            return;
        }
        let pick = matching[from % matching.len()];
        // At the start of a line a nickname is addressed ("bob: "), elsewhere just written.
        let suffix = if start == 0 && !pick.starts_with('/') {
            ": "
        } else {
            " "
        };
        let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
        let replacement = format!("{pick}{suffix}");
        self.text.replace_range(a..b, &replacement);
        self.cursor = start + replacement.chars().count();
        self.completing = Some((prefix, from + 1, start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Input {
        let mut i = Input::default();
        for c in s.chars() {
            i.insert(c);
        }
        i
    }

    #[test]
    fn edits_at_the_cursor_with_multibyte_text() {
        let mut i = typed("héllo");
        i.move_by(-2);
        i.insert('X');
        assert_eq!(i.text(), "hélXlo");
        i.backspace();
        i.delete();
        assert_eq!(i.text(), "hélo");
        i.home(true);
        i.delete_word();
        assert_eq!(i.text(), "");
        let mut i = typed("one two");
        i.move_by(-3);
        i.delete_to_start();
        assert_eq!(i.text(), "two");
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut i = typed("first");
        i.take();
        for c in "second".chars() {
            i.insert(c);
        }
        i.take();
        for c in "draft".chars() {
            i.insert(c);
        }
        i.walk(true);
        assert_eq!(i.text(), "second");
        i.walk(true);
        assert_eq!(i.text(), "first");
        i.walk(true);
        assert_eq!(i.text(), "first");
        i.walk(false);
        i.walk(false);
        assert_eq!(i.text(), "draft");
    }

    #[test]
    fn tab_completes_and_cycles() {
        let names = vec!["alice".to_owned(), "Albert".to_owned(), "bob".to_owned()];
        let mut i = typed("al");
        i.complete(&names);
        assert_eq!(i.text(), "alice: ");
        i.complete(&names);
        assert_eq!(i.text(), "Albert: ");
        let mut i = typed("hi b");
        i.complete(&names);
        assert_eq!(i.text(), "hi bob ");
        let cmds = vec!["/join".to_owned(), "/nick".to_owned()];
        let mut i = typed("/j");
        i.complete(&cmds);
        assert_eq!(i.text(), "/join ");
    }

    #[test]
    fn moving_the_cursor_ends_a_completion_without_panicking() {
        let names = vec!["bob".to_owned()];
        let mut i = typed("hi b");
        i.complete(&names);
        i.home(false);
        i.complete(&names);
        let mut i = typed("hi b");
        i.complete(&names);
        i.delete_to_start();
        i.complete(&names);
        i.backspace();
        i.move_by(-100);
        i.complete(&names);
        assert!(i.cursor() <= i.text().chars().count());
        let mut i = typed("/j");
        assert!(i.completing_command());
        i.complete(&["/join".to_owned(), "/jump".to_owned()]);
        assert!(
            i.completing_command(),
            "cycling commands goes on after the space"
        );
    }

    #[test]
    fn control_characters_and_overlong_lines_are_not_typed() {
        let mut i = typed("a\u{1b}b");
        assert_eq!(i.text(), "ab");
        for _ in 0..MAX_LINE + 10 {
            i.insert('x');
        }
        assert!(i.text().len() <= MAX_LINE);
    }
}
