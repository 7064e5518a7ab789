//! Drawing the window: conversations | timeline | users, a status line and the input line.
//!
//! Only what is visible is laid out: the timeline wraps lines from the bottom up until the
//! pane is full, so 10,000 lines of scrollback cost no more per frame than 40.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};

use super::app::{App, Conn, Line, LineKind};
use super::text::{nick_colour, width, wrap};

/// Narrower than this, only the timeline is shown.
const SIDE_PANES_FROM: u16 = 70;

/// Colours on or off (`NO_COLOR`).
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    /// Use colours.
    pub colour: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.colour {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
}

/// Draws `app` into `frame`.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(frame.area());
    let wide = frame.area().width >= SIDE_PANES_FROM;
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints(if wide {
            vec![
                Constraint::Length(16),
                Constraint::Min(20),
                Constraint::Length(22),
            ]
        } else {
            vec![
                Constraint::Length(0),
                Constraint::Min(1),
                Constraint::Length(0),
            ]
        })
        .split(rows[0]);
    if wide {
        conversations(frame, app, cols[0], theme);
        users(frame, app, cols[2], theme);
    }
    timeline(frame, app, cols[1], theme);
    status_line(frame, app, rows[1], theme);
    input_line(frame, app, rows[2]);
}

fn conversations(frame: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let items: Vec<ListItem> = app
        .convs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut style = Style::default();
            if i == app.current {
                style = style.add_modifier(Modifier::REVERSED);
            } else if c.highlight {
                style = theme.fg(Color::Yellow).add_modifier(Modifier::BOLD);
            } else if c.unread > 0 {
                style = style.add_modifier(Modifier::BOLD);
            }
            let unread = if c.unread > 0 && i != app.current {
                format!(" ({})", c.unread)
            } else {
                String::new()
            };
            ListItem::new(format!("{}{unread}", c.title())).style(style)
        })
        .collect();
    let block = Block::default().borders(Borders::RIGHT).title("Rooms");
    frame.render_widget(List::new(items).block(block), area);
}

fn users(frame: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let shown = app.listed_users();
    let picked = app.picked.as_deref().filter(|_| app.picking);
    let mut at = None;
    let items: Vec<ListItem> = shown
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (mark, style) = match u.presence.as_str() {
                "online" => ("●", theme.fg(Color::Green)),
                _ => ("◐", theme.fg(Color::Yellow).add_modifier(Modifier::DIM)),
            };
            let mut spans = vec![
                Span::styled(format!("{mark} "), style),
                Span::styled(
                    super::text::sanitize(&u.nickname),
                    theme.fg(nick_colour(&u.nickname)),
                ),
            ];
            if u.me {
                spans.push(Span::raw(" (you)"));
            }
            if u.key_changed {
                spans.push(Span::styled(" ⚠", theme.fg(Color::Red)));
            } else if u.verified {
                spans.push(Span::styled(" ✓", theme.fg(Color::Green)));
            }
            if u.presence == "away" {
                spans.push(Span::styled(
                    " away",
                    Style::default().add_modifier(Modifier::DIM),
                ));
            }
            let item = ListItem::new(TextLine::from(spans));
            if picked == Some(u.nickname.as_str()) {
                at = Some(i);
                item.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                item
            }
        })
        .collect();
    let title = if app.picking {
        format!("Users ({}) ↑↓ ⏎", shown.len())
    } else {
        format!("Users ({})", shown.len())
    };
    let block = Block::default().borders(Borders::LEFT).title(title);
    // The list scrolls to keep the person chosen in view.
    let mut state = ListState::default().with_selected(at);
    frame.render_stateful_widget(List::new(items).block(block), area, &mut state);
}

/// The rows one line takes at `w` cells: a prefix (time, nickname) on the first.
fn rows_of(line: &Line, w: usize, theme: Theme) -> Vec<TextLine<'static>> {
    let time = hhmm(line.at_ms);
    let dim = Style::default().add_modifier(Modifier::DIM);
    let (prefix, prefix_style, text_style) = match line.kind {
        LineKind::Text => (
            format!("{} ", line.from),
            theme
                .fg(nick_colour(&line.from))
                .add_modifier(Modifier::BOLD),
            if line.mention {
                theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)
            } else if line.mine {
                theme.fg(Color::Gray)
            } else {
                Style::default()
            },
        ),
        LineKind::Action => (
            format!("* {} ", line.from),
            theme.fg(nick_colour(&line.from)),
            Style::default().add_modifier(Modifier::ITALIC),
        ),
        LineKind::Event => ("— ".to_owned(), dim, dim.add_modifier(Modifier::ITALIC)),
        LineKind::Notice => ("-!- ".to_owned(), theme.fg(Color::Blue), dim),
    };
    let lead = width(&time) + 1 + width(&prefix);
    let body_w = w.saturating_sub(lead).max(8);
    // A deleted message is a dim placeholder; an edited one ends with a dim mark (a word of
    // 8 cells: it always ends the last row whole, as rows are at least 8 wide).
    let (body, text_style) = if line.deleted {
        (DELETED.to_owned(), dim.add_modifier(Modifier::ITALIC))
    } else if line.edited {
        (format!("{} {EDITED}", line.text), text_style)
    } else {
        (line.text.clone(), text_style)
    };
    let rows = wrap(&body, body_w);
    let last = rows.len() - 1;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let mut spans = if i == 0 {
            vec![
                Span::styled(format!("{time} "), dim),
                Span::styled(prefix.clone(), prefix_style),
            ]
        } else {
            vec![Span::raw(" ".repeat(lead.min(w.saturating_sub(8))))]
        };
        match row.strip_suffix(EDITED) {
            Some(text) if i == last && line.edited && !line.deleted => {
                spans.push(Span::styled(text.to_owned(), text_style));
                spans.push(Span::styled(EDITED, dim));
            }
            _ => spans.push(Span::styled(row, text_style)),
        }
        out.push(TextLine::from(spans));
    }
    out
}

/// The mark of an edited message.
const EDITED: &str = "(edited)";
/// What a deleted message shows.
const DELETED: &str = "(deleted)";

fn timeline(frame: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let conv = app.shown();
    let mut top = area;
    if let Conn::Down(why) = &app.conn {
        let banner = Paragraph::new(format!(
            "chatd is not reachable ({why}) — reconnecting; what you type is kept"
        ))
        .style(
            theme
                .fg(Color::White)
                .bg(if theme.colour {
                    Color::Red
                } else {
                    Color::Reset
                })
                .add_modifier(Modifier::BOLD),
        );
        frame.render_widget(banner, Rect { height: 1, ..area });
        top = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        };
    }
    let h = top.height as usize;
    let w = top.width as usize;
    if h == 0 || w == 0 {
        return;
    }
    if conv.lines.is_empty() {
        let hint = match app.conn {
            Conn::Connecting => "connecting to chatd…".to_owned(),
            _ => format!(
                "{} — no messages yet. Type to write; /help lists the commands.",
                conv.title()
            ),
        };
        frame.render_widget(
            Paragraph::new(hint).style(Style::default().add_modifier(Modifier::DIM)),
            top,
        );
        return;
    }
    // From the bottom, skipping `scroll` rows, until the pane is full.
    let mut rows: Vec<TextLine> = Vec::with_capacity(h);
    let mut skip = app.scroll;
    for line in conv.lines.iter().rev() {
        let mut lr = rows_of(line, w, theme);
        while let Some(r) = lr.pop() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            rows.push(r);
            if rows.len() == h {
                break;
            }
        }
        if rows.len() == h {
            break;
        }
    }
    rows.reverse();
    // Bottom-aligned: the newest line sits just above the status line.
    let pad = h.saturating_sub(rows.len());
    let area = Rect {
        y: top.y + pad as u16,
        height: rows.len() as u16,
        ..top
    };
    frame.render_widget(Paragraph::new(rows), area);
}

fn status_line(frame: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let s = &app.status;
    let conn = match &app.conn {
        Conn::Up => Span::styled("connected", theme.fg(Color::Green)),
        Conn::Connecting => Span::styled("connecting…", theme.fg(Color::Yellow)),
        Conn::Down(_) => Span::styled(
            "reconnecting…",
            theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    let node = s.node_id.get(..8).unwrap_or(&s.node_id);
    // An estimate says so: a 2-node ring must not read "ring 8".
    let approx = if s.ring_exact { "" } else { "≈" };
    let mut spans = vec![
        Span::raw(format!(
            " {} · node {node} · ring {approx}{} · peers {} · ",
            if s.nickname.is_empty() {
                "?"
            } else {
                &s.nickname
            },
            s.ring_size,
            s.peers
        )),
        conn,
    ];
    if !app.progress.is_empty() {
        spans.push(Span::raw(format!(" · {}", app.progress)));
    }
    if app.scroll > 0 {
        spans.push(Span::raw(format!(" · scrolled up {} (PgDn)", app.scroll)));
    }
    if app.picking {
        // What the keys do now says more than the node's state (which comes back on Esc).
        let to = match &app.picked {
            Some(nick) => format!("Enter writes to @{nick}"),
            None => "nobody listed".to_owned(),
        };
        spans = vec![Span::styled(
            format!(" choosing a user: ↑/↓, {to}, Esc returns"),
            Style::default().add_modifier(Modifier::BOLD),
        )];
    }
    let style = Style::default().add_modifier(Modifier::REVERSED);
    frame.render_widget(Paragraph::new(TextLine::from(spans)).style(style), area);
}

fn input_line(frame: &mut Frame, app: &App, area: Rect) {
    let prompt = format!("[{}] ", app.shown().title());
    let text = app.input.text();
    let before: String = text.chars().take(app.input.cursor()).collect();
    let avail = (area.width as usize)
        .saturating_sub(width(&prompt) + 1)
        .max(1);
    // Keep the cursor in view on a line longer than the screen.
    let cursor_w = width(&before);
    let skip_w = cursor_w.saturating_sub(avail);
    let mut shown = String::new();
    let mut acc = 0;
    for c in text.chars() {
        let cw = width(&c.to_string());
        if acc >= skip_w {
            shown.push(c);
        }
        acc += cw;
    }
    frame.render_widget(
        Paragraph::new(TextLine::from(vec![
            Span::styled(
                prompt.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(shown),
        ])),
        area,
    );
    let x = area.x
        + (width(&prompt) + cursor_w - skip_w).min((area.width as usize).saturating_sub(1)) as u16;
    frame.set_cursor_position(Position { x, y: area.y });
}

fn hhmm(ms: i64) -> String {
    // Local time would need the time zone database; the terminal shows UTC, as `chatctl tail`.
    let secs = ms.div_euclid(1000);
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::super::app::{NetEvent, Status};
    use super::super::kit::{as_alice, key, msg, private, user};
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| draw(f, app, Theme { colour: true }))
            .expect("draw");
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn connected() -> App {
        as_alice()
    }

    #[test]
    fn empty_window_says_how_to_start() {
        let s = screen(&connected(), 100, 12);
        assert!(s.contains("#lobby — no messages yet"), "{s}");
        assert!(
            s.contains("alice · node abcdef01 · ring 4 · peers 3 · connected"),
            "{s}"
        );
        assert!(s.contains("[#lobby]"), "{s}");
        assert!(s.contains("Rooms") && s.contains("Users (0)"), "{s}");
        // An estimate is marked as one.
        let mut app = connected();
        app.on_net(NetEvent::Status(Status {
            ring_size: 8,
            ring_exact: false,
            ..app.status.clone()
        }));
        let s = screen(&app, 100, 12);
        assert!(s.contains("· ring ≈8 ·"), "{s}");
    }

    #[test]
    fn verified_and_changed_keys_are_marked_in_the_users_pane() {
        let mut app = connected();
        let mut bob = user("bob", "online", false);
        bob.verified = true;
        let mut carol = user("carol", "online", false);
        carol.key_changed = true;
        app.on_net(NetEvent::Users(vec![
            user("alice", "online", true),
            bob,
            carol,
            user("dave", "online", false),
        ]));
        let s = screen(&app, 100, 12);
        assert!(s.contains("bob ✓"), "{s}");
        assert!(s.contains("carol ⚠"), "{s}");
        assert!(!s.contains("dave ✓") && !s.contains("dave ⚠"), "{s}");
    }

    #[test]
    fn a_busy_room_shows_its_newest_lines_at_the_bottom() {
        let mut app = connected();
        for i in 0..10_000 {
            app.on_net(msg(&i.to_string(), "lobby", "bob", &format!("line {i}")));
        }
        let s = screen(&app, 100, 12);
        assert!(s.contains("12:34 bob line 9999"), "{s}");
        assert!(s.contains("line 9990") && !s.contains("line 9989"), "{s}");
        // Scrolling up shows older lines.
        app.scroll = 5;
        let s = screen(&app, 100, 12);
        assert!(s.contains("line 9994") && !s.contains("line 9999"), "{s}");
        assert!(s.contains("scrolled up 5"), "{s}");
    }

    #[test]
    fn a_private_message_opens_its_own_highlighted_tab() {
        let mut app = connected();
        app.on_net(msg("1", "lobby", "bob", "public hello"));
        app.on_net(private("p1", "carol", "carol", "", "psst, alice", false));
        let s = screen(&app, 100, 12);
        // Still in the lobby; carol's window is listed, lit, with one unread line.
        assert!(s.contains("@carol (1)"), "{s}");
        assert!(!s.contains("psst"), "{s}");
        app.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('n'),
            crossterm::event::KeyModifiers::CONTROL,
        ));
        let s = screen(&app, 100, 12);
        assert!(s.contains("12:34 carol psst, alice"), "{s}");
        assert!(s.contains("[@carol]"), "{s}");
    }

    #[test]
    fn the_user_list_shows_presence_and_hides_who_left() {
        let mut app = connected();
        app.on_net(NetEvent::Users(vec![
            user("alice", "online", true),
            user("bob", "away", false),
            user("carol", "offline", false),
            user("*guest", "online", false),
        ]));
        let s = screen(&app, 100, 12);
        assert!(s.contains("● alice (you)"), "{s}");
        assert!(s.contains("◐ bob away"), "{s}");
        assert!(s.contains("● *guest"), "{s}");
        assert!(!s.contains("carol"), "{s}");
        assert!(s.contains("Users (3)"), "{s}");
    }

    #[test]
    fn a_lost_chatd_shows_a_banner_and_keeps_the_typed_text() {
        let mut app = connected();
        app.input.set("half a thought");
        app.on_net(NetEvent::Down("connection refused".into()));
        let s = screen(&app, 100, 12);
        assert!(
            s.contains("chatd is not reachable (connection refused) — reconnecting"),
            "{s}"
        );
        assert!(s.contains("reconnecting…"), "{s}");
        assert!(s.contains("[#lobby] half a thought"), "{s}");
    }

    #[test]
    fn tiny_terminals_draw_without_panicking() {
        let mut app = connected();
        for i in 0..100 {
            app.on_net(msg(&i.to_string(), "lobby", "bob", "日本語 text"));
        }
        app.on_net(NetEvent::Down("gone".into()));
        for (w, h) in [(1, 1), (1, 3), (3, 1), (2, 4), (10, 3), (0, 0)] {
            let _ = screen(&app, w, h);
        }
    }

    #[test]
    fn long_lines_wrap_and_escapes_never_reach_the_terminal() {
        let mut app = connected();
        app.on_net(msg("1", "lobby", "bob", &"word ".repeat(60)));
        app.on_net(msg(
            "2",
            "lobby",
            "e\u{1b}[31mve",
            "\u{1b}[2J\u{1b}]0;title\u{7}",
        ));
        let s = screen(&app, 80, 20);
        assert!(!s.contains('\u{1b}'), "{s:?}");
        assert!(s.contains("␛[2J"), "{s}");
        assert!(
            s.lines().filter(|l| l.contains("word word")).count() >= 3,
            "{s}"
        );
        // Narrow terminals keep only the timeline.
        let s = screen(&app, 40, 10);
        assert!(!s.contains("Rooms"), "{s}");
    }

    #[test]
    fn edited_and_deleted_lines_are_marked() {
        let mut app = connected();
        app.on_net(msg("1", "lobby", "bob", "helo wrld"));
        app.on_net(msg("2", "lobby", "bob", "regrettable"));
        app.on_net(msg("3", "lobby", "carol", "still here"));
        app.on_net(NetEvent::Change {
            id: "e".into(),
            room: "lobby".into(),
            target: "1".into(),
            text: Some("hello world".into()),
        });
        app.on_net(NetEvent::Change {
            id: "d".into(),
            room: "lobby".into(),
            target: "2".into(),
            text: None,
        });
        let mut t = Terminal::new(TestBackend::new(100, 12)).expect("terminal");
        t.draw(|f| draw(f, &app, Theme { colour: true }))
            .expect("draw");
        let s = screen(&app, 100, 12);
        assert!(s.contains("12:34 bob hello world (edited)"), "{s}");
        assert!(s.contains("12:34 bob (deleted)"), "{s}");
        assert!(!s.contains("regrettable") && !s.contains("helo"), "{s}");
        assert!(s.contains("12:34 carol still here  "), "no mark: {s}");
        // The marks are dim, the edited text is not.
        let buf = t.backend().buffer().clone();
        let find = |what: &str| {
            (0..12u16)
                .find_map(|y| {
                    let row: String = (0..100u16)
                        .map(|x| buf[(x, y)].symbol().to_owned())
                        .collect();
                    row.find(what)
                        .map(|at| (row[..at].chars().count() as u16, y))
                })
                .expect(what)
        };
        let (x, y) = find("(edited)");
        assert!(buf[(x, y)].modifier.contains(Modifier::DIM));
        let (x, y) = find("hello world");
        assert!(!buf[(x, y)].modifier.contains(Modifier::DIM));
        let (x, y) = find("(deleted)");
        assert!(buf[(x, y)].modifier.contains(Modifier::DIM));
        // A long edited line wraps with its mark on the last row.
        app.on_net(NetEvent::Change {
            id: "e2".into(),
            room: "lobby".into(),
            target: "3".into(),
            text: Some("word ".repeat(40).trim_end().to_owned()),
        });
        let s = screen(&app, 60, 12);
        let rows: Vec<&str> = s.lines().filter(|l| l.contains("word")).collect();
        assert!(rows.len() >= 3, "{s}");
        assert!(
            rows.last().is_some_and(|r| r.contains("word (edited)")),
            "{s}"
        );
    }

    #[test]
    fn the_users_pane_shows_who_is_chosen_and_opens_their_window() {
        let mut app = connected();
        app.on_net(NetEvent::Users(vec![
            user("alice", "online", true),
            user("bob", "online", false),
            user("carol", "away", false),
        ]));
        app.on_key(key(crossterm::event::KeyCode::F(2)));
        app.on_key(key(crossterm::event::KeyCode::Down));
        let mut t = Terminal::new(TestBackend::new(100, 12)).expect("terminal");
        t.draw(|f| draw(f, &app, Theme { colour: true }))
            .expect("draw");
        let s = screen(&app, 100, 12);
        assert!(s.contains("Users (3) ↑↓ ⏎"), "{s}");
        assert!(
            s.contains("choosing a user: ↑/↓, Enter writes to @bob, Esc returns"),
            "{s}"
        );
        // bob's row, and only his, is drawn reversed.
        let buf = t.backend().buffer().clone();
        let reversed = |name: &str| {
            (0..12u16).any(|y| {
                let row: String = (0..100u16)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect();
                row.find(name).is_some_and(|at| {
                    let x = row[..at].chars().count() as u16;
                    buf[(x, y)].modifier.contains(Modifier::REVERSED)
                })
            })
        };
        assert!(reversed("● bob"));
        assert!(!reversed("● alice") && !reversed("◐ carol"));
        app.on_key(key(crossterm::event::KeyCode::Enter));
        let s = screen(&app, 100, 12);
        assert!(s.contains("[@bob]"), "{s}");
        assert!(s.contains("@bob — no messages yet"), "{s}");
        assert!(s.contains("Users (3) ") && !s.contains("↑↓ ⏎"), "{s}");
    }
}
