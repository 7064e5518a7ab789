// chatd's web view: one WebSocket (/ws) feeds the timeline, the users, the event log, the
// status line and the Network view (map.js). Everything from the network is written with
// textContent, never as HTML.
'use strict';

const MAX_PER_ROOM = 2000;   // lines kept per room
const MAX_SEEN = 50000;      // message ids remembered against repeats
const MAX_EVENTS = 500;      // event log lines kept
const SESSION = 'chatd.session';   // localStorage key (localStorage is per origin: per port)

const state = {
  ws: null,
  lastId: '',                // resume point: the newest message id this page saw
  seen: new Set(),
  seenOrder: [],
  rooms: new Map(),          // room -> {lines: [], unread: 0}
  byKey: new Map(),          // a shown message's key (its id; 'dm:' + id if private) -> it
  current: '',               // '' = every room
  canSend: false,
  me: { node: '', nick: '' },
  ref: 0,
  pending: new Map(),        // ref -> text
  retry: 500,
  ticket: '',                // a login link's ticket, traded for a session on connect
  stopped: false,            // refused for good (4401): no more reconnects
  uploading: false,          // an upload is under way (one at a time)
};

// A `chatctl web` link carries its ticket in the fragment, which no server sees: take it and
// clear it from the address bar.
if (location.hash.startsWith('#login=')) {
  state.ticket = decodeURIComponent(location.hash.slice('#login='.length));
  history.replaceState(null, '', location.pathname);
}

function storedSession() {
  try { return localStorage.getItem(SESSION) || ''; } catch (_) { return ''; }
}

function storeSession(s) {
  try { if (s) localStorage.setItem(SESSION, s); else localStorage.removeItem(SESSION); } catch (_) { /* private mode */ }
}

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function hhmmss(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function remember(id) {
  if (state.seen.has(id)) return false;
  state.seen.add(id);
  state.seenOrder.push(id);
  if (state.seenOrder.length > MAX_SEEN) state.seen.delete(state.seenOrder.shift());
  return true;
}

function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = { lines: [], unread: 0 };
    state.rooms.set(name, r);
  }
  return r;
}

// A window's label: `#room`, `@nick` (a private conversation) or `+group`.
function label(name) {
  return name.startsWith('@') || name.startsWith('+') ? name : '#' + name;
}

function line(m) {
  const li = el('li', (m.mine ? 'mine' : '') + (m.private ? ' private' : '') + (m.deleted ? ' deleted' : ''));
  li.dataset.key = m.key;
  li.append(el('span', 'time', hhmmss(m.at)));
  if (state.current === '') li.append(el('span', 'room', label(m.room)));
  li.append(el('span', 'nick', m.from || '?'));
  if (m.keyChanged) {
    const w = el('span', 'keychanged', '⚠');
    w.title = 'this name is bound to another key in your conversations (chatctl verify)';
    li.append(w);
  } else if (m.verified) {
    const v = el('span', 'verified', '✓');
    v.title = 'safety number confirmed';
    li.append(v);
  }
  if (m.deleted) {
    li.append(el('span', 'gone', '(deleted)'));
  } else {
    if (!m.private && /^[0-9a-f]{64}$/.test(m.id)) {
      const t = el('button', 'trace', '⤳');
      t.type = 'button';
      t.title = 'trace: how this message travelled through the ring';
      t.addEventListener('click', () => askTrace(m.id));
      li.append(t);
    }
    li.append(el('span', 'text', m.text));
    if (m.edited) {
      const mark = el('span', 'edited', '(edited)');
      mark.title = 'edited ' + hhmmss(m.edited);
      li.append(mark);
    }
    // A voice message: its player (voice.js); any other file: its image or download link.
    if (m.file && validFile(m.file)) li.append(m.voice ? voiceView(m.file) : fileView(m.file));
  }
  return li;
}

// A size as chatctl and the TUI write it: `512 B`, `2.4 MB`.
function humanSize(n) {
  if (n < 1000) return n + ' B';
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 1000 && u + 1 < units.length) { v /= 1000; u += 1; }
  return v.toFixed(1) + ' ' + units[u];
}

// A public file names its blob by hash; a private one (a `pmsg`'s) its decrypting route.
const PRIVATE_URL = /^\/private-files\/[0-9a-f]{32}$/;
function validFile(f) {
  return f.url ? PRIVATE_URL.test(f.url) : /^[0-9a-f]{64}$/.test(f.hash);
}

// A file's address on this node (which fetches it first if it does not hold it): the
// message's name goes along for the download's name, its size for the fetch. A private
// file's is its message's route (the node decrypts it for this page's account only; the
// name and size come from the message there).
function fileUrl(f) {
  if (f.url) return f.url;
  return '/files/' + f.hash + '?name=' + encodeURIComponent(f.name) + '&size=' + encodeURIComponent(f.size);
}

// A file's bytes fetched with the page's session (an <img> or <audio> src cannot carry it).
function fetchWithSession(url) {
  return fetch(url, { headers: { 'X-Chatd-Session': storedSession() } })
    .then((r) => (r.ok ? r.blob() : r.text().then((t) => Promise.reject(new Error(t.trim() || 'HTTP ' + r.status)))));
}

// Loads a file into `img`: by its address, or — when the page has a session, which a node
// off loopback asks for, and a private file always — fetched with it and shown from a blob:
// URL.
function loadImage(img, url, failed) {
  if (!storedSession()) { img.src = url; return; }
  fetchWithSession(url)
    .then((b) => { img.src = URL.createObjectURL(b); })
    .catch((e) => failed(String(e.message || e)));
}

// Downloads a file with the page's session (a plain link cannot carry it).
function download(f) {
  fetchWithSession(fileUrl(f))
    .then((b) => {
      const a = el('a');
      a.href = URL.createObjectURL(b);
      a.download = f.name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    })
    .catch((e) => hint('Download of ' + f.name + ' failed: ' + String(e.message || e), 'note'));
}

// A message's file: an image as its thumbnail (the checked JPEG the message carries), full
// size on click (served by this node, fetched on demand); any file as a download link with
// its name and size. Names are text, never HTML.
function fileView(f) {
  const box = el('div', 'file');
  const label = '📎 ' + f.name + ' (' + humanSize(f.size) + ')';
  if (f.image) {
    const thumb = el('img', 'thumb');
    thumb.alt = f.name;
    thumb.title = f.name + ': click for full size';
    if (f.thumb && /^[A-Za-z0-9+/=]+$/.test(f.thumb)) thumb.src = 'data:image/jpeg;base64,' + f.thumb;
    else if (f.url) {
      // A private image carries no thumbnail: the decrypted image, shown small.
      loadImage(thumb, fileUrl(f), (why) => { thumb.classList.add('none'); box.prepend(el('span', 'filenote', why)); });
    } else thumb.classList.add('none');
    const toggle = () => {
      const shown = box.querySelector('img.full');
      if (shown) {
        shown.remove();
        const n = box.querySelector('.filenote');
        if (n) n.remove();
        thumb.hidden = false;
        return;
      }
      const full = el('img', 'full');
      full.alt = f.name;
      full.title = 'click to close';
      const note = el('span', 'filenote', 'loading ' + humanSize(f.size) + '…');
      full.addEventListener('load', () => { note.remove(); thumb.hidden = true; });
      full.addEventListener('error', () => { note.textContent = 'the image could not be loaded (not fetched yet?); click the thumbnail to retry'; full.remove(); thumb.hidden = false; });
      full.addEventListener('click', toggle);
      loadImage(full, fileUrl(f), (why) => { note.textContent = why; full.remove(); });
      box.prepend(note);
      box.prepend(full);
    };
    thumb.addEventListener('click', toggle);
    box.append(thumb);
  }
  const a = el('a', 'download', label);
  a.href = fileUrl(f);
  a.download = '';
  a.addEventListener('click', (e) => {
    if (!storedSession()) return;
    e.preventDefault();
    download(f);
  });
  box.append(a);
  return box;
}

// A shown message now reads `text`, edited at `edited` (Unix ms; 0: never), or is gone
// (`text` null: deleted). One not shown here (never, or no longer kept) is left alone.
function change(key, text, edited) {
  const m = state.byKey.get(key);
  if (!m) return;
  const deleted = text === null;
  const now = { deleted, text: deleted ? '' : text, edited: deleted ? 0 : (edited || 0) };
  if (m.deleted === now.deleted && m.text === now.text && m.edited === now.edited) return;
  Object.assign(m, now);
  for (const li of $('timeline').children) {
    if (li.dataset.key === key) li.replaceWith(line(m));
  }
}

function onMessage(m) {
  // The feed comes in this node's order: resume after the newest frame, seen before or not.
  state.lastId = m.id;
  if (m.kind === 'edit' || m.kind === 'delete') {
    change(m.target, m.kind === 'edit' ? m.text : null, m.at || 1);
    return;
  }
  if (m.kind !== 'text' && m.kind !== 'event') return;   // newer than this page
  if (!remember(m.id)) return;
  m.key = m.id;
  if (m.kind === 'event') {
    const log = $('events');
    const li = el('li', '', hhmmss(m.at) + '  ' + m.text);
    log.append(li);
    while (log.children.length > MAX_EVENTS) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
    return;
  }
  m.mine = m.from_id === state.me.node && m.from === state.me.nick;
  show(m);
}

// A private message of this page's account (only pages logged in with `chatctl web` get them).
// The same message again is that message edited or deleted: its line is replaced.
function onPrivate(f) {
  const key = 'dm:' + f.id;
  if (!remember(key)) {
    change(key, f.deleted ? null : f.text, f.edited);
    return;
  }
  const m = {
    id: f.id, key, at: f.at, from: f.from, text: f.deleted ? '' : f.text, mine: !!f.outgoing,
    private: true, edited: f.deleted ? 0 : f.edited, deleted: !!f.deleted,
    verified: !!f.verified, keyChanged: !!f.key_changed,
    room: f.group ? '+' + f.group : '@' + (f.outgoing ? f.to : f.from),
    file: f.deleted ? null : f.file, voice: f.deleted ? null : f.voice,
  };
  show(m);
}

function show(m) {
  const r = room(m.room);
  r.lines.push(m);
  state.byKey.set(m.key, m);
  if (r.lines.length > MAX_PER_ROOM) state.byKey.delete(r.lines.shift().key);
  if (state.current === '' || state.current === m.room) {
    const tl = $('timeline');
    const atBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 40;
    tl.append(line(m));
    while (tl.children.length > MAX_PER_ROOM) tl.firstChild.remove();
    if (atBottom) tl.scrollTop = tl.scrollHeight;
  } else {
    r.unread += 1;
  }
  renderRooms();
}

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  const all = el('li', state.current === '' ? 'current' : '');
  all.append(el('span', '', 'all rooms'));
  all.addEventListener('click', () => switchRoom(''));
  ul.append(all);
  for (const name of [...state.rooms.keys()].sort()) {
    const r = state.rooms.get(name);
    const li = el('li', state.current === name ? 'current' : '');
    li.append(el('span', '', label(name)));
    if (r.unread > 0) li.append(el('span', 'unread', String(r.unread)));
    li.addEventListener('click', () => switchRoom(name));
    ul.append(li);
  }
}

function switchRoom(name) {
  state.current = name;
  const tl = $('timeline');
  tl.replaceChildren();
  const lines = name === ''
    ? [...state.rooms.values()].flatMap((r) => r.lines).sort((a, b) => a.at - b.at).slice(-MAX_PER_ROOM)
    : room(name).lines;
  if (name !== '') room(name).unread = 0;
  for (const m of lines) tl.append(line(m));
  tl.scrollTop = tl.scrollHeight;
  $('text').placeholder = 'Message ' + label(name || 'lobby');
  renderRooms();
}

function renderUsers(users) {
  const rank = { online: 0, away: 1, offline: 2 };
  users.sort((a, b) => (rank[a.presence] - rank[b.presence]) || a.nickname.localeCompare(b.nickname));
  const ul = $('users');
  ul.replaceChildren();
  for (const u of users) {
    const li = el('li', u.presence);
    li.title = u.presence + (u.away_message ? ': ' + u.away_message : '') + '\nuser ' + u.user_id + '\nnode ' + u.node_id;
    li.append(el('span', 'dot'));
    li.append(el('span', '', u.nickname + (u.self ? ' (you)' : '')));
    // Trust marks: the caller confirmed the safety number (✓), or the name is bound to
    // another key in the caller's conversations (⚠; `chatctl verify`).
    if (u.key_changed) {
      const w = el('span', 'keychanged', '⚠');
      w.title = u.nickname + "'s key changed: compare the safety number (chatctl verify " + u.nickname + ')';
      li.append(w);
    } else if (u.verified) {
      const v = el('span', 'verified', '✓');
      v.title = 'safety number confirmed';
      li.append(v);
    }
    if (u.away_message) li.append(el('span', 'note', u.away_message));
    ul.append(li);
  }
}

function renderStatus(s) {
  state.me.node = s.node_id;
  state.me.nick = s.nickname;
  // The exact size when the node knows it; an estimate says so.
  const ring = s.ring_exact ? 'ring ' + s.ring_size : 'ring ≈ ' + s.ring_size + ' (est.)';
  $('status').textContent = 'node ' + s.node_id.slice(0, 12) + '  ·  ' + ring +
    '  ·  peers ' + s.peers + '  ·  ' + (s.joined ? 'joined' : 'not joined') +
    (s.nickname ? '  ·  you are ' + s.nickname : '') + '  ·  chatd ' + s.version;
}

function setConnected(up) {
  const c = $('conn');
  c.textContent = up ? 'live' : 'offline';
  c.className = 'conn ' + (up ? 'up' : 'down');
  document.body.dataset.conn = up ? 'up' : 'down';
  const b = $('banner');
  b.hidden = up;
  b.textContent = up ? '' : 'Disconnected from chatd — reconnecting…';
  setCanSend(up && state.canSend);
}

// The hint under the box says what the page may do now: read only (and how to send), or
// send as whom. A note of another kind (an error, an expired session) stays until replaced.
const READ_ONLY = 'Read only: to send from this page, run `chatctl web` and open the link it prints.';

function hint(text, kind) {
  const h = $('hint');
  h.textContent = text;
  h.dataset.kind = kind || '';
}

function setCanSend(ok) {
  $('text').disabled = !ok;
  $('send').disabled = !ok;
  $('attach').disabled = !ok || state.uploading;
  voiceButton(ok);
  const kind = $('hint').dataset.kind || '';
  if (kind !== '' && kind !== 'mode') return;
  if (!state.canSend) hint(READ_ONLY, 'mode');
  else hint(state.me.nick ? 'Sending as ' + state.me.nick + '.' : '', 'mode');
}

// Asks the node how public message `id` travelled; the answer (`trace`) is drawn on the map.
function askTrace(id) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  state.ws.send(JSON.stringify({ t: 'trace', id }));
  clearTrace();
  $('trace-note').textContent = 'Tracing message ' + id.slice(0, 8) + '…';
  showView('network');
}

// The answer to askTrace: the tree on the map, its figures under it.
function onTrace(f) {
  if (f.error) {
    $('trace-note').textContent = 'Trace of ' + String(f.id || '').slice(0, 8) + ' failed: ' + f.error;
    return;
  }
  drawTrace(f.edges || []);
  const silent = (f.silent || []).map((id) => String(id).slice(0, 8));
  $('trace-note').textContent = 'Message ' + String(f.id).slice(0, 8) + ': ' + f.answered +
    ' nodes answered, ' + (f.edges || []).length + ' hops, depth ' + f.depth +
    (f.slowest_ms !== null && f.slowest_ms !== undefined ? ', last reached after ' + Number(f.slowest_ms).toFixed(2) + ' ms' : '') +
    (silent.length ? '; no answer from ' + silent.join(', ') : '') + '.';
}

function onFrame(ev) {
  let f;
  try { f = JSON.parse(ev.data); } catch (_) { return; }
  switch (f.t) {
    case 'hello':
      if (f.session) storeSession(f.session);
      if (f.expired) {
        storeSession('');
        hint('Your session has expired: run `chatctl web` for a new link.', 'note');
      }
      state.canSend = !!f.can_send;
      voiceHello(f.voice);
      state.me.nick = f.nickname || state.me.nick;
      state.retry = 500;
      setConnected(true);
      break;
    case 'msg': onMessage(f); break;
    case 'pmsg': onPrivate(f); break;
    case 'users': renderUsers(f.users || []); break;
    case 'status': renderStatus(f); break;
    case 'ring': renderRing(f); break;
    case 'trace': onTrace(f); break;
    case 'sent':
      if (state.pending.get(f.ref) === $('text').value) $('text').value = '';
      state.pending.delete(f.ref);
      hint('', '');
      setCanSend(!$('send').disabled);
      break;
    case 'error':
      state.pending.delete(f.ref);
      hint(f.message, 'note');
      break;
    case 'lagged':
      if (f.resume) state.lastId = f.resume;
      break;
    case 'reset':
      state.lastId = '';
      break;
  }
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const q = state.lastId ? '?after=' + encodeURIComponent(state.lastId) : '';
  const ws = new WebSocket(proto + '://' + location.host + '/ws' + q);
  state.ws = ws;
  ws.onopen = () => {
    const auth = { t: 'auth' };
    if (state.ticket) auth.ticket = state.ticket;
    else if (storedSession()) auth.session = storedSession();
    state.ticket = '';
    ws.send(JSON.stringify(auth));
  };
  ws.onmessage = onFrame;
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    setConnected(false);
    if (ev.code === 4401) {
      storeSession('');
      state.stopped = true;
      $('banner').textContent = 'This web view needs a login link: run `chatctl web` and open the link it prints.';
      return;
    }
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 5000);
  };
}

$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (!text.trim() || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  state.ref += 1;
  state.pending.set(state.ref, text);
  const to = state.current;
  const frame = to.startsWith('@') ? { t: 'psend', ref: state.ref, to: to.slice(1), text }
    : to.startsWith('+') ? { t: 'psend', ref: state.ref, group: to.slice(1), text }
    : { t: 'send', ref: state.ref, room: to || 'lobby', text };
  state.ws.send(JSON.stringify(frame));
});

// Uploads a file to the room shown (the lobby for all rooms), the text box as its caption,
// as this page's account: POST /files with the page's session, a progress bar from the
// upload's progress events. The node sends the message with the file once it is stored.
// `voice` (the record button's, voice.js: {voice, room, label, capped}): a recording, sent
// as a voice message (voice=1; no caption) to the room it was recorded for.
function upload(file, voice) {
  const s = storedSession();
  if (!state.canSend || !s) {
    hint('Sending files needs the page\'s login: run `chatctl web` and open the link it prints.', 'note');
    return;
  }
  if (state.uploading) {
    if (voice) hint('The recording was not sent: another upload is under way. Record again once it is done.', 'note');
    return;
  }
  const to = voice ? voice.room : state.current;
  if (to.startsWith('@') || to.startsWith('+')) {
    hint('From this page files go to rooms only: pick a room first.', 'note');
    return;
  }
  const caption = voice ? '' : $('text').value;
  const q = '?room=' + encodeURIComponent(to || 'lobby') + '&name=' + encodeURIComponent(file.name) +
    (voice ? '&voice=1' : '&caption=' + encodeURIComponent(caption));
  const what = voice ? voice.label : file.name;
  const bar = $('upload-progress');
  const done = (note) => {
    state.uploading = false;
    $('upload').hidden = true;
    setCanSend(!$('send').disabled);
    if (note) hint(note, 'note');
  };
  state.uploading = true;
  $('attach').disabled = true;
  $('record').disabled = true;
  $('upload').hidden = false;
  $('upload-name').textContent = what + ' (' + humanSize(file.size) + ')';
  bar.value = 0;
  $('upload-pct').textContent = '0 %';
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/files' + q);
  xhr.setRequestHeader('X-Chatd-Session', s);
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable || e.total === 0) return;
    const pct = Math.floor((e.loaded / e.total) * 100);
    bar.value = pct;
    $('upload-pct').textContent = pct + ' %' + (voice && pct === 100 ? ': converting and transcribing…' : '');
  };
  xhr.onload = () => {
    if (xhr.status === 200 && voice) {
      let answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch (_) { /* the message was sent all the same */ }
      done('');
      voiceSent(answer, voice.capped);
    } else if (xhr.status === 200) {
      if ($('text').value === caption) $('text').value = '';
      done('Sent ' + file.name + '.');
    } else {
      done((voice ? voice.capped + 'Voice message refused: ' : 'Upload of ' + file.name + ' refused: ') + (xhr.responseText.trim() || 'HTTP ' + xhr.status));
    }
  };
  xhr.onerror = () => done((voice ? 'Sending the voice message' : 'Upload of ' + file.name) + ' failed: the connection broke (a file over files.max_file_mb is refused).');
  xhr.send(file);
}

$('attach').addEventListener('click', () => $('file').click());
$('file').addEventListener('change', () => {
  const f = $('file').files[0];
  $('file').value = '';
  if (f) upload(f);
});
const carriesFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
document.addEventListener('dragover', (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  document.body.dataset.drop = 'on';
});
document.addEventListener('dragleave', (e) => {
  if (e.target === document.documentElement || e.relatedTarget === null) delete document.body.dataset.drop;
});
document.addEventListener('drop', (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  delete document.body.dataset.drop;
  const f = e.dataTransfer.files[0];
  if (f) upload(f);
});

for (const b of document.querySelectorAll('#views button')) {
  b.addEventListener('click', () => showView(b.dataset.view));
}
$('trace-clear').addEventListener('click', () => { clearTrace(); $('trace-note').textContent = ''; });

renderRooms();
voiceInit();
showView(location.hash === '#network' ? 'network' : 'chat');
setConnected(false);
connect();
