// chatd's Network view: the ring as this node sees it, drawn as inline SVG from the `ring`
// frames of /ws. Nodes sit on a circle by id (angle = id / 2^256, clockwise from the top);
// this node, its predecessor, successors, fingers and the other nodes it has met are told
// apart by colour, failed nodes are crossed out, and this node's live connections are drawn
// as chords coloured by round-trip time. drawTrace(edges) draws a message's path over it.
// Everything from the network is written as text (textContent / attributes), never as markup.
'use strict';

const NS = 'http://www.w3.org/2000/svg';
let RING_R = 220;            // the ring's radius in SVG units (grows with the nodes drawn)
const FULL_LABELS = 40;      // up to this many nodes, every node is offered a label
const MAX_TRACE = 1000;      // trace edges drawn at most
const RTT_BANDS = [          // upper bound (ms), colour, legend
  [1, '#2e9d4a', '< 1 ms'],
  [10, '#7cb342', '1–10 ms'],
  [50, '#e0a100', '10–50 ms'],
  [200, '#ef6c00', '50–200 ms'],
  [Infinity, '#c62828', '≥ 200 ms'],
];
const ROLES = {              // fill, legend
  me: ['#2f6fdb', 'this node'],
  pred: ['#8e44ad', 'predecessor'],
  succ: ['#00897b', 'successor'],
  finger: ['#f39c12', 'finger'],
  met: ['#9aa0a6', 'met'],
};

const net = { frame: null, trace: null };

const byId = (id) => document.getElementById(id);

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// Where on the ring `id` (64 hex digits) sits, as a fraction of the turn: its first 52 bits.
function ringFrac(id) {
  const v = parseInt(String(id).slice(0, 13), 16);
  return Number.isFinite(v) ? v / 2 ** 52 : 0;
}

// The point at radius `r` for `id`, and its angle (0 at the top, clockwise).
function ringAt(id, r) {
  const a = ringFrac(id) * 2 * Math.PI - Math.PI / 2;
  return { x: r * Math.cos(a), y: r * Math.sin(a), a };
}

function rttColour(us) {
  const ms = us / 1000;
  return RTT_BANDS.find((b) => ms < b[0])[1];
}

function roleOf(n, me) {
  if (n.id === me) return 'me';
  if (n.pred) return 'pred';
  if (n.succ) return 'succ';
  if (n.finger) return 'finger';
  return 'met';
}

// A gentle curve from p to q, bent towards the centre the more the farther apart they are.
function bend(p, q) {
  const len = Math.hypot(q.x - p.x, q.y - p.y);
  const k = 1 - 0.45 * Math.min(1, len / (2 * RING_R));
  return { x: (p.x + q.x) / 2 * k, y: (p.y + q.y) / 2 * k };
}

function fmt(v) { return v.toFixed(1); }

function curvePath(p, c, q) {
  return 'M' + fmt(p.x) + ',' + fmt(p.y) + ' Q' + fmt(c.x) + ',' + fmt(c.y) + ' ' + fmt(q.x) + ',' + fmt(q.y);
}

function shortId(id) { return String(id).slice(0, 8); }

function labelText(n, me) {
  const nicks = (n.nicks || []).join(', ');
  const base = nicks ? nicks + ' · ' + shortId(n.id) : shortId(n.id);
  return n.id === me ? base + ' (this node)' : (n.failed ? base + ' (failed)' : base);
}

function titleText(n, me) {
  const roles = [];
  if (n.id === me) roles.push('this node');
  if (n.pred) roles.push('predecessor');
  if (n.succ) roles.push('successor');
  if (n.finger) roles.push('finger');
  if (n.failed) roles.push('failed to answer recently');
  const lines = ['node ' + n.id];
  if (n.nicks && n.nicks.length) lines.push('hosts ' + n.nicks.join(', '));
  if (n.addr) lines.push('address ' + n.addr);
  if (n.id !== me) lines.push(n.live ? 'connected, RTT ' + (n.rtt_us / 1000).toFixed(2) + ' ms' : 'not connected');
  lines.push(roles.length ? roles.join(', ') : 'met');
  return lines.join('\n');
}

// Which nodes are offered a label, most important first.
function labelOrder(nodes, me) {
  const rank = (n) => (n.id === me ? 0 : n.pred ? 1 : n.succ ? 2 : n.live ? 3 : n.failed ? 4 : n.finger ? 5 : 6);
  const sorted = [...nodes].sort((a, b) => rank(a) - rank(b) || ringFrac(a.id) - ringFrac(b.id));
  return nodes.length <= FULL_LABELS ? sorted : sorted.filter((n) => rank(n) < 6);
}

// The width a label's text takes in the page's font (a bold one for this node's), measured in
// a hidden SVG (styled as the map's labels, style.css): a guess per character let labels with
// wide digits overlap.
let measurer = null;
function textWidth(text, bold) {
  if (!measurer) {
    measurer = svgEl('svg', { id: 'map-measure', width: 0, height: 0, 'aria-hidden': 'true' });
    document.body.append(measurer);
  }
  const t = svgEl('text', { class: 'label' + (bold ? ' me' : '') }, text);
  measurer.append(t);
  const w = t.getComputedTextLength();
  t.remove();
  return w > 0 ? w : text.length * 8;
}

// A label's height with room to spare: the font's line box (ascent + descent, about 16 px for
// 13 px text), which a 15 px lane step let two stacked labels overlap by a pixel.
const LABEL_H = 19;

// Places labels outside the ring, each at the first spot where it overlaps no other label and
// no node: four lanes outwards, and on a map of at most FULL_LABELS nodes also further lanes,
// each tried level with the node and a line above and below it (two nodes a few degrees apart
// at the ring's side would otherwise share every lane). A label away from its node gets a
// leader line. A node left without a place (only on larger maps) keeps its hover title.
function placeLabels(layer, nodes, me, taken) {
  const overlaps = (b) => taken.some((t) => b.x0 < t.x1 && b.x1 > t.x0 && b.y0 < t.y1 && b.y1 > t.y0);
  const h = LABEL_H;
  const lanes = nodes.length <= FULL_LABELS ? 10 : 4;
  const shifts = nodes.length <= FULL_LABELS ? [0, h, -h, 2 * h, -2 * h] : [0];
  for (const n of labelOrder(nodes, me)) {
    const text = labelText(n, me);
    const w = textWidth(text, n.id === me) + 6;
    let spot = null;
    for (let lane = 0; lane < lanes && !spot; lane++) {
      for (const dy of shifts) {
        const p = ringAt(n.id, RING_R + 18 + lane * 20);
        const c = Math.cos(p.a);
        const anchor = Math.abs(c) < 0.3 ? 'middle' : c > 0 ? 'start' : 'end';
        const x0 = anchor === 'start' ? p.x : anchor === 'middle' ? p.x - w / 2 : p.x - w;
        const y = p.y + dy;
        const box = { x0, y0: y - h / 2, x1: x0 + w, y1: y + h / 2 };
        if (!overlaps(box)) { spot = { lane, p, y, anchor, box }; break; }
      }
    }
    if (!spot) continue;
    const { lane, p, y, anchor, box } = spot;
    taken.push(box);
    if (lane > 0 || y !== p.y) {
      const from = ringAt(n.id, RING_R + 8);
      const to = ringAt(n.id, RING_R + 10 + lane * 20);
      layer.append(svgEl('line', { x1: fmt(from.x), y1: fmt(from.y), x2: fmt(to.x), y2: fmt(y + (to.y - p.y)), class: 'leader' }));
    }
    const label = svgEl('text', {
      x: fmt(p.x), y: fmt(y), 'text-anchor': anchor, 'dominant-baseline': 'middle',
      class: 'label' + (n.id === me ? ' me' : '') + (n.failed ? ' failed' : ''), 'data-id': n.id,
    }, text);
    label.append(svgEl('title', {}, titleText(n, me)));
    layer.append(label);
  }
}

// The legend (HTML beside the map): node kinds and link colours.
function buildLegend() {
  const box = byId('netlegend');
  const swatch = (draw) => {
    const sv = svgEl('svg', { width: 16, height: 14, viewBox: '-8 -7 16 14', 'aria-hidden': 'true' });
    sv.append(draw);
    return sv;
  };
  const row = (icon, text) => {
    const li = document.createElement('li');
    li.append(icon, document.createTextNode(text));
    box.append(li);
  };
  for (const [role, [fill, name]] of Object.entries(ROLES)) {
    row(swatch(svgEl('circle', { cx: 0, cy: 0, r: role === 'me' ? 6 : 4.5, fill })), name);
  }
  row(swatch(svgEl('path', { d: 'M-5,-5 L5,5 M5,-5 L-5,5', class: 'cross' })), 'failed to answer');
  const head = document.createElement('li');
  head.className = 'head';
  head.textContent = 'link round-trip time';
  box.append(head);
  for (const [, colour, name] of RTT_BANDS) {
    row(swatch(svgEl('line', { x1: -7, y1: 0, x2: 7, y2: 0, stroke: colour, 'stroke-width': 3 })), name);
  }
  row(swatch(svgEl('line', { x1: -7, y1: 0, x2: 5, y2: 0, class: 'hop', 'stroke-width': 3 })), 'message path (trace)');
}

// Draws the map of the last `ring` frame (and the trace over it, if any).
function renderRing(frame) {
  net.frame = frame;
  const me = frame.node_id;
  const nodes = (frame.nodes || []).slice(0, 256);
  const all = [{ id: me, nicks: frame.nicks || [], live: false, rtt_us: 0 }, ...nodes];
  const sizeText = frame.exact > 0 ? 'Ring of ' + frame.exact + ' node' + (frame.exact === 1 ? '' : 's') + ' (exact)'
    : frame.estimate > 0 ? 'Ring of ≈ ' + frame.estimate + ' nodes (estimate: this node cannot see the whole ring)'
      : 'Not in a ring yet';
  const live = nodes.filter((n) => n.live).length;
  const failed = nodes.filter((n) => n.failed).length;
  byId('netinfo').textContent = sizeText + '  ·  ' + nodes.length + ' other node' + (nodes.length === 1 ? '' : 's') +
    ' met  ·  ' + live + ' connected  ·  ' + failed + ' failed' +
    (frame.omitted > 0 ? '  ·  ' + frame.omitted + ' more met, not shown' : '');

  // A bigger ring for more nodes: the gaps between them stay wide enough to see.
  RING_R = Math.round(Math.min(330, Math.max(200, 150 + all.length * 2)));
  const svg = svgEl('svg', { id: 'map', preserveAspectRatio: 'xMidYMid meet', role: 'img' });
  svg.append(svgEl('title', {}, 'The ring as node ' + shortId(me) + ' sees it'));
  const defs = svgEl('defs');
  const marker = svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svgEl('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
  defs.append(marker);
  svg.append(defs);
  svg.append(svgEl('circle', { cx: 0, cy: 0, r: RING_R, class: 'ring' }));

  const centre = ringAt(me, RING_R);
  const links = svgEl('g', { class: 'links' });
  for (const n of nodes.filter((n) => n.live)) {
    const q = ringAt(n.id, RING_R);
    const path = svgEl('path', { d: curvePath(centre, bend(centre, q), q), stroke: rttColour(n.rtt_us), class: 'link', 'data-id': n.id });
    path.append(svgEl('title', {}, shortId(me) + ' ↔ ' + shortId(n.id) + ': ' + (n.rtt_us / 1000).toFixed(2) + ' ms'));
    links.append(path);
  }
  svg.append(links);

  const dots = svgEl('g', { class: 'nodes' });
  const small = all.length > 40;
  const taken = [];
  for (const n of all) {
    const p = ringAt(n.id, RING_R);
    const role = roleOf(n, me);
    const r = role === 'me' ? 10 : small ? 4.5 : 7;
    const g = svgEl('g', { class: 'node ' + role + (n.failed ? ' failed' : ''), 'data-id': n.id });
    g.append(svgEl('circle', { cx: fmt(p.x), cy: fmt(p.y), r, fill: ROLES[role][0] }));
    if (n.failed) {
      const d = r + 3;
      g.append(svgEl('path', {
        d: 'M' + fmt(p.x - d) + ',' + fmt(p.y - d) + ' L' + fmt(p.x + d) + ',' + fmt(p.y + d) +
          ' M' + fmt(p.x + d) + ',' + fmt(p.y - d) + ' L' + fmt(p.x - d) + ',' + fmt(p.y + d),
        class: 'cross',
      }));
    }
    g.append(svgEl('title', {}, titleText(n, me)));
    dots.append(g);
    taken.push({ x0: p.x - r - 2, y0: p.y - r - 2, x1: p.x + r + 2, y1: p.y + r + 2 });
  }
  svg.append(dots);
  const labels = svgEl('g', { class: 'labels' });
  placeLabels(labels, all, me, taken);
  svg.append(labels);
  // Fit the view to what was drawn: the ring and every label.
  const ext = taken.reduce((e, b) => ({
    x0: Math.min(e.x0, b.x0), y0: Math.min(e.y0, b.y0), x1: Math.max(e.x1, b.x1), y1: Math.max(e.y1, b.y1),
  }), { x0: -RING_R - 20, y0: -RING_R - 20, x1: RING_R + 20, y1: RING_R + 20 });
  const pad = 12;
  svg.setAttribute('viewBox', [ext.x0 - pad, ext.y0 - pad, ext.x1 - ext.x0 + 2 * pad, ext.y1 - ext.y0 + 2 * pad].map(fmt).join(' '));
  svg.append(svgEl('g', { id: 'trace-layer' }));
  byId('netmap').replaceChildren(svg);
  renderTrace();
}

// Draws a message's path over the map: `edges` is an array of {from, to, ms} (node ids as 64
// hex digits, ms the hop's time); each hop is an arrow with its time. Nodes not on the map
// are placed by their id all the same. Replaces the trace drawn before.
function drawTrace(edges) {
  net.trace = Array.isArray(edges) ? edges.slice(0, MAX_TRACE) : [];
  renderTrace();
}

// Removes the trace from the map.
function clearTrace() {
  net.trace = null;
  renderTrace();
}

function renderTrace() {
  const layer = document.getElementById('trace-layer');
  byId('trace-clear').hidden = !net.trace;
  if (!layer) return;
  layer.replaceChildren();
  if (!net.trace) return;
  const known = new Set([net.frame.node_id, ...(net.frame.nodes || []).map((n) => n.id)]);
  const taken = [];
  const overlaps = (b) => taken.some((t) => b.x0 < t.x1 && b.x1 > t.x0 && b.y0 < t.y1 && b.y1 > t.y0);
  const isId = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  for (const e of net.trace) {
    if (!e || !isId(e.from) || !isId(e.to) || e.from === e.to) continue;
    const p = ringAt(e.from, RING_R);
    const q = ringAt(e.to, RING_R);
    const c = bend(p, q);
    // End the arrow at the node's edge, not its centre.
    const dx = q.x - c.x;
    const dy = q.y - c.y;
    const l = Math.hypot(dx, dy) || 1;
    const end = { x: q.x - dx / l * 11, y: q.y - dy / l * 11 };
    const hop = svgEl('path', { d: curvePath(p, c, end), class: 'hop', 'marker-end': 'url(#arrow)', 'data-from': e.from, 'data-to': e.to });
    const ms = Number(e.ms);
    const msText = Number.isFinite(ms) ? (ms < 10 ? ms.toFixed(1) : String(Math.round(ms))) + ' ms' : '? ms';
    hop.append(svgEl('title', {}, shortId(e.from) + ' → ' + shortId(e.to) + ': ' + msText));
    layer.append(hop);
    // The time on the curve, where it covers no other hop's time.
    const w = msText.length * 7 + 4;
    let spot = null;
    for (const t of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]) {
      const u = 1 - t;
      const m = { x: u * u * p.x + 2 * u * t * c.x + t * t * q.x, y: u * u * p.y + 2 * u * t * c.y + t * t * q.y };
      const box = { x0: m.x - w / 2, y0: m.y - 8, x1: m.x + w / 2, y1: m.y + 8 };
      if (!overlaps(box)) { spot = { m, box }; break; }
      if (spot === null && t === 0.8) spot = { m, box };
    }
    taken.push(spot.box);
    layer.append(svgEl('text', { x: fmt(spot.m.x), y: fmt(spot.m.y), 'text-anchor': 'middle', 'dominant-baseline': 'middle', class: 'hopms' }, msText));
    for (const id of [e.from, e.to]) {
      if (known.has(id)) continue;
      known.add(id);
      const s = ringAt(id, RING_R);
      const dot = svgEl('circle', { cx: fmt(s.x), cy: fmt(s.y), r: 6, class: 'unknown' });
      dot.append(svgEl('title', {}, 'node ' + id + ' (not met by this node)'));
      layer.append(dot);
    }
  }
}

buildLegend();

// Shows the chat or the network view.
function showView(name) {
  document.body.dataset.view = name;
  for (const b of document.querySelectorAll('#views button')) b.classList.toggle('on', b.dataset.view === name);
}
