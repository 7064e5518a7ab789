//! `CHATHISTORY` (IRCv3 `draft/chathistory`): `LATEST`, `BEFORE`, `AFTER` and `BETWEEN` of a
//! channel's public messages from this node's history, and `LATEST` and `BEFORE` of a private
//! conversation, each answered in a `chathistory` batch (`FAIL CHATHISTORY …` otherwise).
//! References are `msgid=ID` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ` (`*` for LATEST: the
//! newest). Public timestamps are looked for among the room's newest [`SCAN`] messages.

use crate::chat::envelope::Kind;
use crate::chat::{Chat, Stored};
use crate::offload::{Offload, Work};

use super::bridge::Bridge;
use super::line::Message;
use super::reply::server;
use super::session::{End, Session};

/// Most messages one CHATHISTORY answer holds (ISUPPORT `CHATHISTORY=`).
pub const MAX_HISTORY: usize = 100;
/// Messages of a room a timestamp reference is looked for in.
const SCAN: usize = 1000;

/// A message reference.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ref {
    /// `*`: none (the newest).
    Newest,
    Id(String),
    Time(u64),
}

fn parse_ref(r: &str) -> Option<Ref> {
    if r == "*" {
        return Some(Ref::Newest);
    }
    if let Some(id) = r.strip_prefix("msgid=") {
        return Some(Ref::Id(id.to_owned()));
    }
    parse_time(r.strip_prefix("timestamp=")?).map(Ref::Time)
}

/// Unix milliseconds of `YYYY-MM-DDThh:mm:ss[.sss]Z`.
pub fn parse_time(t: &str) -> Option<u64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let ms: u64 = format!("{ms:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

impl Session {
    /// `CHATHISTORY subcommand target ref [ref] limit`.
    pub async fn chathistory(&self, m: &Message) -> Result<(), End> {
        let sub = m.param(0).to_ascii_uppercase();
        let target = m.param(1).to_owned();
        let fail = |code: &str, text: &str| {
            self.out.send(Message::new(
                Some(server()),
                "FAIL",
                &["CHATHISTORY", code, &sub, text],
            ))
        };
        if sub == "TARGETS" {
            return self.batch(&target, Vec::new());
        }
        let (refs, limit) = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" => (vec![m.param(2)], m.param(3)),
            "BETWEEN" => (vec![m.param(2), m.param(3)], m.param(4)),
            _ => return fail("INVALID_PARAMS", "unknown or unsupported subcommand"),
        };
        let Some(refs) = refs.into_iter().map(parse_ref).collect::<Option<Vec<_>>>() else {
            return fail(
                "INVALID_PARAMS",
                "a reference is msgid=ID, timestamp=TIME or *",
            );
        };
        let limit = match limit.parse::<usize>() {
            Ok(n) if n > 0 => n.min(MAX_HISTORY),
            _ => return fail("INVALID_PARAMS", "the limit is a positive number"),
        };
        if target.starts_with('#') {
            let Ok(room) = Bridge::room(&target) else {
                return fail("INVALID_TARGET", "no such channel");
            };
            // The store is read on the blocking pool.
            let (chat, s, refs) = (self.bridge.chat.clone(), sub.clone(), refs.clone());
            let read = Offload::shared()
                .run(Work::Read, move || {
                    public_history(&chat, &s, &room, &refs, limit)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            let rows = match read {
                Ok(r) => r,
                Err(e) => return fail("MESSAGE_ERROR", &e),
            };
            let id = format!("ch{}", rows.first().map_or(0, |s| s.pos));
            let lines = rows
                .iter()
                .flat_map(|s| self.public_lines(s, Some(&id)))
                .collect();
            return self.batch_with(&target, &id, lines);
        }
        match self.private_history(&sub, &target, &refs, limit).await {
            Ok(lines) => self.batch(&target, lines),
            Err(e) => fail("MESSAGE_ERROR", &e),
        }
    }

    fn batch(&self, target: &str, lines: Vec<Message>) -> Result<(), End> {
        let id = format!("ch{}", lines.len());
        let lines = lines
            .into_iter()
            .map(|l| l.tag("batch", Some(&id)))
            .collect();
        self.batch_with(target, &id, lines)
    }

    fn batch_with(&self, target: &str, id: &str, lines: Vec<Message>) -> Result<(), End> {
        self.out.send(Message::new(
            Some(server()),
            "BATCH",
            &[&format!("+{id}"), "chathistory", target],
        ))?;
        self.out.all(lines)?;
        self.out
            .send(Message::new(Some(server()), "BATCH", &[&format!("-{id}")]))
    }

    async fn private_history(
        &self,
        sub: &str,
        with: &str,
        refs: &[Ref],
        limit: usize,
    ) -> Result<Vec<Message>, String> {
        let dm = self
            .bridge
            .dm
            .clone()
            .ok_or("private messages are not available")?;
        let before: Option<[u8; 16]> = match (sub, &refs[0]) {
            ("LATEST", Ref::Newest) => None,
            ("BEFORE", Ref::Id(id)) => Some(
                hex::decode(id)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or("not a private message id")?,
            ),
            _ => return Err("private history supports LATEST * and BEFORE msgid= only".into()),
        };
        let limit = u32::try_from(limit).unwrap_or(100);
        let (who, with) = (self.who, with.to_owned());
        let rows = Offload::shared()
            .run(Work::Private, move || {
                dm.history(who, &with, before.as_ref(), limit)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for m in rows {
            let row = &m.row;
            if row.deleted || row.group.is_some() {
                continue;
            }
            let peer = row.peer.unwrap_or(row.from);
            let name = self.bridge.people.display_account(&peer);
            let (source, target) = if row.outgoing {
                (self.me(), name)
            } else {
                (
                    super::reply::mask(&name, &peer, &[0; 32]),
                    self.nick.clone(),
                )
            };
            let room = super::line::MAX_BODY.saturating_sub(source.len() + target.len() + 16);
            for part in super::events::split_text(&row.text, room) {
                let line = Message::new(Some(&source), "PRIVMSG", &[&target, &part]);
                out.push(self.tags(line, row.sent_ms, &hex::encode(row.id)));
            }
        }
        Ok(out)
    }
}

/// The public history a CHATHISTORY asks for (blocking: runs on the blocking pool).
fn public_history(
    chat: &Chat,
    sub: &str,
    room: &crate::chat::Room,
    refs: &[Ref],
    limit: usize,
) -> Result<Vec<Stored>, String> {
    let text_only = |rows: Vec<Stored>| -> Vec<Stored> {
        rows.into_iter()
            .filter(|s| s.message.kind == Kind::Text)
            .collect()
    };
    // A reference as a position in this node's history.
    let pos_of = |r: &Ref| -> Result<Option<(i64, u64)>, String> {
        match r {
            Ref::Newest => Ok(None),
            Ref::Id(id) => {
                let id: crate::chat::MessageId =
                    id.parse().map_err(|_| "not a message id".to_owned())?;
                match chat.find(&id).map_err(|e| e.to_string())? {
                    Some(s) => Ok(Some((s.pos, s.message.hlc.millis()))),
                    None => Err("no such message in this node's history".into()),
                }
            }
            Ref::Time(_) => Ok(None),
        }
    };
    let recent = || {
        chat.before(i64::MAX, Some(room), SCAN)
            .map_err(|e| e.to_string())
    };
    let by_time = |rows: Vec<Stored>, keep: &dyn Fn(u64) -> bool| -> Vec<Stored> {
        rows.into_iter()
            .filter(|s| keep(s.message.hlc.millis()))
            .collect()
    };
    let rows = match (sub, &refs[0]) {
        ("LATEST", Ref::Newest) => chat
            .before(i64::MAX, Some(room), limit)
            .map_err(|e| e.to_string())?,
        ("LATEST", Ref::Time(t)) => by_time(recent()?, &|ms| ms > *t),
        ("LATEST" | "AFTER", r @ Ref::Id(_)) => {
            let (pos, _) = pos_of(r)?.ok_or("no such message")?;
            chat.after(pos, Some(room), limit)
                .map_err(|e| e.to_string())?
        }
        ("BEFORE", r @ Ref::Id(_)) => {
            let (pos, _) = pos_of(r)?.ok_or("no such message")?;
            chat.before(pos, Some(room), limit)
                .map_err(|e| e.to_string())?
        }
        ("BEFORE", Ref::Time(t)) => by_time(recent()?, &|ms| ms < *t),
        ("AFTER", Ref::Time(t)) => by_time(recent()?, &|ms| ms > *t),
        ("BETWEEN", a) => {
            let bound = |r: &Ref| -> Result<u64, String> {
                match r {
                    Ref::Time(t) => Ok(*t),
                    r => Ok(pos_of(r)?.map_or(u64::MAX, |(_, ms)| ms)),
                }
            };
            let (x, y) = (bound(a)?, bound(&refs[1])?);
            let (lo, hi) = (x.min(y), x.max(y));
            by_time(recent()?, &|ms| ms > lo && ms < hi)
        }
        _ => return Err("unsupported reference for this subcommand".into()),
    };
    let mut rows = text_only(rows);
    // LATEST and BEFORE keep the newest `limit`, the others the oldest.
    if rows.len() > limit {
        if matches!(sub, "LATEST" | "BEFORE") {
            rows.drain(..rows.len() - limit);
        } else {
            rows.truncate(limit);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(parse_ref("*"), Some(Ref::Newest));
        assert_eq!(parse_ref("msgid=ab"), Some(Ref::Id("ab".into())));
        assert_eq!(
            parse_ref("timestamp=2023-11-14T22:13:20.000Z"),
            Some(Ref::Time(1_700_000_000_000))
        );
        assert_eq!(
            parse_time("2000-02-29T00:00:00.123Z"),
            Some(951_782_400_123)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "",
            "timestamp=x",
            "timestamp=2023-13-01T00:00:00Z",
            "nonsense",
        ] {
            assert_eq!(parse_ref(bad), None, "{bad:?}");
        }
        // Round trip with the writer of time tags.
        let t = 1_765_000_123_456;
        assert_eq!(parse_time(&super::super::reply::time_tag(t)), Some(t));
    }
}
