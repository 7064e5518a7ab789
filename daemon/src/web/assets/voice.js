// chatd's web view: voice messages. A player on each one (an <audio> playing /files/{hash},
// fetched by the node on demand), and the record button (🎙) of a logged-in page: the
// microphone is asked for only when the button is clicked; the recording (WebM/Opus, or
// Ogg/Opus where the browser offers it) goes through the page's upload (POST /files with
// voice=1, app.js), and the node converts, transcribes and sends it. Loaded before app.js:
// only definitions here; app.js calls voiceInit().
'use strict';

// A recording stops this long before the node's voice.max_seconds, so that what the browser
// encodes (a little more than the wall time) stays within the limit.
const CAP_MARGIN_MS = 500;

const VOICE = {
  settings: null,    // hello's `voice`: {max_seconds, transcribe}; null: off on this node
  recorder: null,    // the MediaRecorder while recording
  stream: null,
  chunks: [],
  started: 0,        // performance.now() at the start
  timer: 0,
  capped: false,     // stopped at the node's limit
  cancelled: false,
};

// `m:ss`, as chatctl writes a voice message's length.
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

// A voice message's player: `<audio controls preload="none">` of its Ogg/Opus file at
// /files/{hash} (a private one's at its message's route). Nothing is loaded until play; a node that does not hold the file fetches it
// then (the request waits for it). Where the node wants the page's session for files (off
// loopback) the plain request is refused: the page then fetches the bytes with its session
// (app.js's fetchWithSession) and plays them from a blob: URL. A private voice message's
// player plays /private-files/{id}, which always wants the session: the same way.
function voiceView(f) {
  const box = el('div', 'voice');
  const audio = el('audio');
  audio.controls = true;
  audio.preload = 'none';
  const url = fileUrl(f);
  audio.src = url;
  const note = el('span', 'filenote');
  const retry = el('button', 'retry', '↻');
  retry.type = 'button';
  retry.title = 'load the recording again';
  retry.hidden = true;
  const failed = (why) => {
    note.textContent = 'The recording could not be loaded' + (why ? ': ' + why : ' (not fetched yet?)') + '.';
    retry.hidden = false;
  };
  let withSession = false;
  const viaSession = () => {
    withSession = true;
    note.textContent = 'loading…';
    fetchWithSession(url)
      .then((b) => {
        audio.src = URL.createObjectURL(b);
        note.textContent = '';
        return audio.play();
      })
      .catch((e) => failed(String(e.message || e)));
  };
  audio.addEventListener('error', () => {
    if (!withSession && storedSession()) viaSession();
    else failed('');
  });
  retry.addEventListener('click', () => {
    retry.hidden = true;
    note.textContent = '';
    if (withSession) viaSession();
    else audio.load();
  });
  box.append(audio, retry, note);
  return box;
}

// The record button follows the send box (enabled when the page may send), and stays usable
// while recording so that the recording can be stopped.
function voiceButton(canSend) {
  const b = $('record');
  if (VOICE.recorder) { b.disabled = false; return; }
  b.disabled = !canSend || state.uploading || !VOICE.settings;
  b.title = !VOICE.settings ? 'Voice messages are off on this node'
    : 'Record a voice message (click again to stop and send; at most ' + clock(VOICE.settings.max_seconds * 1000) + ')' +
      (VOICE.settings.transcribe ? '' : '. This node does not transcribe (no voice.model_dir): the transcript will be pending');
}

// hello's `voice`.
function voiceHello(v) {
  VOICE.settings = v && Number(v.max_seconds) > 0 ? { max_seconds: Number(v.max_seconds), transcribe: !!v.transcribe } : null;
}

function microphoneError(e) {
  const name = e && e.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'Microphone access was refused: allow the microphone for this page in the browser to record.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone found: connect one to record.';
  if (name === 'NotReadableError') return 'The microphone is busy or failed (another program may hold it).';
  return 'The microphone could not be opened: ' + String((e && (e.message || e.name)) || e);
}

async function startRecording() {
  if (!state.canSend || !storedSession()) {
    hint('Recording needs the page\'s login: run `chatctl web` and open the link it prints.', 'note');
    return;
  }
  if (!VOICE.settings) { hint('Voice messages are off on this node.', 'note'); return; }
  if (state.current.startsWith('@') || state.current.startsWith('+')) {
    hint('From this page voice messages go to rooms only: pick a room first.', 'note');
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    hint('No microphone for this page: browsers allow recording only on https:// or localhost pages.', 'note');
    return;
  }
  if (typeof MediaRecorder === 'undefined') { hint('This browser cannot record audio (no MediaRecorder).', 'note'); return; }
  const b = $('record');
  b.disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    hint(microphoneError(e), 'note');
    voiceButton(!$('send').disabled);
    return;
  }
  const type = ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus', 'audio/webm']
    .find((t) => MediaRecorder.isTypeSupported(t)) || '';
  let rec;
  try {
    rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
  } catch (e) {
    for (const t of stream.getTracks()) t.stop();
    hint('This browser cannot record Opus audio: ' + String(e.message || e), 'note');
    voiceButton(!$('send').disabled);
    return;
  }
  VOICE.chunks = [];
  VOICE.capped = false;
  VOICE.cancelled = false;
  rec.ondataavailable = (e) => { if (e.data && e.data.size) VOICE.chunks.push(e.data); };
  rec.onstop = () => finishRecording(rec, stream);
  rec.onerror = (e) => { hint('The recording failed: ' + String((e.error && e.error.message) || 'error'), 'note'); stopRecording(true); };
  VOICE.recorder = rec;
  VOICE.stream = stream;
  VOICE.room = state.current || 'lobby';
  rec.start(500);
  VOICE.started = performance.now();
  VOICE.timer = setInterval(tick, 100);
  document.body.dataset.recording = 'on';
  b.textContent = '⏹';
  b.title = 'Stop and send the voice message';
  b.disabled = false;
  $('recording').hidden = false;
  hint('Recording to ' + label(VOICE.room) + ': click ⏹ to send.', 'note');
  tick();
}

// The elapsed time; the hard cap at the node's voice.max_seconds.
function tick() {
  const ms = performance.now() - VOICE.started;
  const cap = VOICE.settings ? VOICE.settings.max_seconds * 1000 : 0;
  $('rec-time').textContent = clock(ms) + ' / ' + clock(cap);
  $('record').dataset.elapsed = String(Math.floor(ms));
  if (VOICE.recorder && ms >= cap - CAP_MARGIN_MS) {
    VOICE.capped = true;
    stopRecording(false);
  }
}

function stopRecording(cancel) {
  const rec = VOICE.recorder;
  if (!rec) return;
  VOICE.recorder = null;
  VOICE.cancelled = !!cancel;
  clearInterval(VOICE.timer);
  if (rec.state !== 'inactive') rec.stop();
  else finishRecording(rec, VOICE.stream);
}

function finishRecording(rec, stream) {
  const ms = performance.now() - VOICE.started;
  if (stream) for (const t of stream.getTracks()) t.stop();
  VOICE.stream = null;
  delete document.body.dataset.recording;
  $('recording').hidden = true;
  const b = $('record');
  b.textContent = '🎙';
  voiceButton(!$('send').disabled);
  const type = (rec.mimeType || 'audio/webm').split(';')[0];
  const blob = new Blob(VOICE.chunks, { type });
  VOICE.chunks = [];
  if (VOICE.cancelled) return;
  if (blob.size === 0) { hint('Nothing was recorded.', 'note'); return; }
  const ext = type === 'audio/ogg' ? 'ogg' : 'webm';
  const file = new File([blob], 'voice.' + ext, { type });
  hint('Sending the voice message…', 'note');
  const capped = VOICE.capped
    ? 'The recording reached this node\'s limit of ' + clock(VOICE.settings.max_seconds * 1000) + ' (voice.max_seconds) and was stopped there. '
    : '';
  upload(file, { voice: true, room: VOICE.room, label: '🎤 voice message (' + clock(ms) + ')', capped });
}

// What the page says once the node sent the recording (the upload's answer, app.js).
function voiceSent(answer, capped) {
  const v = (answer && answer.voice) || {};
  // Rounded up, as the message's own `🎤 m:ss` is.
  let text = capped + 'Sent the voice message (' + clock(Math.ceil((v.duration_ms || 0) / 1000) * 1000) + ')';
  if (v.pending) {
    text += VOICE.settings && !VOICE.settings.transcribe
      ? '; transcription is not available on this node (no voice.model_dir): its transcript is pending.'
      : '; its transcript is pending.';
  } else {
    text += '.';
  }
  hint(text, 'note');
}

function voiceInit() {
  $('record').addEventListener('click', () => {
    if (VOICE.recorder) stopRecording(false);
    else startRecording();
  });
}
