// riverlog console: plain ES module, no dependencies. It talks to the same
// /api/v1 endpoints as any other client: polls the stream list every 2 s
// (publish rates come from sequence deltas), reads a stream's recent events
// and groups, follows /api/v1/subscribe (Server-Sent Events read with fetch,
// so the token goes in a header), and publishes CloudEvents over HTTP.
// The "Last hour" charts come from the server's history endpoints, so a page
// opened now shows the past hour. Times are local, 24-hour, everywhere.

const API = '/api/v1';
const TOKEN_KEY = 'riverlog.console.token';
const POLL_MS = 2000;
const SPARK_POINTS = 30;
const TAIL_MAX = 500;
const RECENT_LIMIT = 50;
const HISTORY_MS = 10000; // the server's buckets are 10 s: refetching sooner shows nothing new
const CHART_GROUPS = 6; // groups charted per stream (the table lists them all)

// ---------------------------------------------------------------- helpers

const $ = (id) => document.getElementById(id);

/** Creates an element: h('td', {class: 'num', dataset: {x: 1}, onclick}, child…). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const enc = encodeURIComponent;
const splitList = (s) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

const numberFormat = new Intl.NumberFormat();
function fmtCount(n) {
  if (n === null || n === undefined) return '–';
  if (n < 10000) return numberFormat.format(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e5 ? 1 : 0) + 'k';
  if (n < 1e9) return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + 'M';
  return (n / 1e9).toFixed(2) + 'G';
}
function fmtRate(r) {
  if (r === null || r === undefined) return '–';
  if (r === 0) return '0/s';
  if (r < 10) return r.toFixed(1) + '/s';
  return fmtCount(Math.round(r)) + '/s';
}
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + (s % 60) + 's' : '');
  if (s < 86400) return Math.floor(s / 3600) + 'h' + (s % 3600 >= 60 ? ' ' + Math.floor((s % 3600) / 60) + 'm' : '');
  return Math.floor(s / 86400) + 'd' + (s % 86400 >= 3600 ? ' ' + Math.floor((s % 86400) / 3600) + 'h' : '');
}
function fmtAgo(iso) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = (Date.now() - t) / 1000;
  if (s < 2) return 'just now';
  return fmtDuration(s) + ' ago';
}
// One time format in the whole console: local time, 24-hour, ISO-ordered.
const pad = (n, w = 2) => String(n).padStart(w, '0');
function toDate(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}
/** `HH:MM` (chart axes). */
function fmtClock(t) {
  const d = toDate(t);
  return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : '';
}
/** `HH:MM:SS.mmm` (the live tail). */
function fmtTime(iso) {
  if (!iso) return '';
  const d = toDate(iso);
  if (!d) return iso;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
/** `YYYY-MM-DD HH:MM:SS`. */
function fmtDateTime(iso) {
  if (!iso) return '–';
  const d = toDate(iso);
  if (!d) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(d).slice(0, 8)}`;
}

/**
 * Shortens `text` to `max` characters by cutting out its middle: both ends
 * of a reverse-DNS type (`com.example…OrderShipped`) or of a long stream
 * name say the most. The tail keeps the larger share.
 */
function middle(text, max) {
  const s = String(text ?? '');
  if (s.length <= max) return s;
  const head = Math.ceil((max - 1) * 0.4);
  return s.slice(0, head) + '…' + s.slice(s.length - (max - 1 - head));
}
/**
 * An element showing `text` shortened in the middle to at most `max`
 * characters, the full text on hover; `fitMiddle` shortens it further to
 * its box once it is in the page.
 */
function shortened(tag, attrs, text, max) {
  return h(tag, { ...attrs, title: String(text ?? ''), dataset: { ...(attrs && attrs.dataset), fit: max } }, middle(text, max));
}
/**
 * Shortens, in the middle, each `shortened` element under `root` that
 * overflows its box, to the longest text that fits (CSS can only cut the
 * end). Elements that fit cost one measurement.
 */
/** Gives an existing element `text`, as `shortened` would. */
function setShortened(el, text, max) {
  el.title = text;
  el.dataset.fit = max;
  el.textContent = middle(text, max);
  fitMiddle(el);
}

function fitMiddle(root) {
  const els = root.matches && root.matches('[data-fit]') ? [root] : [...root.querySelectorAll('[data-fit]')];
  for (const el of els) {
    if (!el.clientWidth || el.scrollWidth <= el.clientWidth) continue;
    const full = el.title;
    let lo = 5;
    let hi = Math.min(full.length, Number(el.dataset.fit) || full.length) - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      el.textContent = middle(full, mid);
      if (el.scrollWidth <= el.clientWidth) lo = mid;
      else hi = mid - 1;
    }
    el.textContent = middle(full, lo);
  }
}

/** A stable colour class for an event type. */
function hueClass(s) {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) >>> 0;
  return 'hue-' + (x % 8);
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function toast(message, kind = 'error') {
  const el = h('div', { class: 'toast ' + kind, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: 'toast' } }, message);
  $('toasts').append(el);
  setTimeout(() => el.classList.add('leaving'), 4500);
  setTimeout(() => el.remove(), 5000);
}

// ---------------------------------------------------------------- state

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  streams: new Map(), // name -> stream info
  rates: new Map(), // name -> {seq, t, rate, spark: []}
  selected: null,
  selectedInfo: null,
  events: [],
  eventsKey: '',
  viewing: null, // {event, origin}
  filter: '',
  online: null,
};

// ---------------------------------------------------------------- API and auth

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.reason = problem.reason || '';
    this.problem = problem;
  }
}

function authHeaders(extra = {}) {
  const headers = { ...extra };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  return headers;
}

async function problemOf(res) {
  try {
    const body = await res.json();
    if (body && typeof body === 'object') return body;
  } catch {
    /* not JSON */
  }
  return { detail: `${res.status} ${res.statusText}`.trim() };
}

/** Calls the JSON API; on 401 asks for a token and tries again. */
async function api(path, { method = 'GET', body, contentType = 'application/json' } = {}) {
  for (;;) {
    const headers = authHeaders({ Accept: 'application/json' });
    if (body !== undefined) headers['Content-Type'] = contentType;
    let res;
    try {
      res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch {
      setOnline(false);
      throw new ApiError(0, { reason: 'UNAVAILABLE', detail: 'The server cannot be reached.' });
    }
    setOnline(true);
    if (res.status === 401) {
      const problem = await problemOf(res);
      await askToken(state.token ? 'The token was not accepted: ' + (problem.detail || 'unauthenticated') : '');
      continue;
    }
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    if (res.status === 204) return null;
    return res.json();
  }
}

let tokenPrompt = null;

/** Shows the token dialog (once, however many calls wait) until a token works. */
function askToken(message) {
  if (tokenPrompt) return tokenPrompt;
  state.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  $('signout').hidden = true;
  setConn('locked', 'token needed');
  const dialog = $('token-dialog');
  const input = $('token-input');
  const error = $('token-error');
  error.hidden = !message;
  error.textContent = message || '';
  input.value = '';
  tokenPrompt = new Promise((resolve) => {
    const form = $('token-form');
    const onSubmit = async (ev) => {
      ev.preventDefault();
      const candidate = input.value.trim();
      if (!candidate) return;
      $('token-submit').disabled = true;
      try {
        const res = await fetch(API + '/streams?page_size=1', { headers: { Accept: 'application/json', Authorization: 'Bearer ' + candidate }, cache: 'no-store' });
        if (res.status === 401) {
          const p = await problemOf(res);
          error.textContent = 'That token was not accepted' + (p.detail ? ': ' + p.detail : '.');
          error.hidden = false;
          input.select();
          return;
        }
        state.token = candidate;
        sessionStorage.setItem(TOKEN_KEY, candidate);
        $('signout').hidden = false;
        // The server answered and took the token: connected (setOnline alone
        // would not say so, as the refused calls already counted as online).
        state.online = true;
        setConn('ok', 'connected');
        form.removeEventListener('submit', onSubmit);
        dialog.removeEventListener('cancel', onCancel);
        dialog.close();
        tokenPrompt = null;
        resolve();
      } catch {
        error.textContent = 'The server cannot be reached.';
        error.hidden = false;
      } finally {
        $('token-submit').disabled = false;
      }
    };
    const onCancel = (ev) => ev.preventDefault(); // Escape must not leave the page unusable
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return tokenPrompt;
}

function setOnline(online) {
  if (state.online === online) return;
  state.online = online;
  if (online) setConn('ok', 'connected');
  else setConn('down', 'server unreachable');
}

function setConn(kind, text) {
  $('conn').dataset.state = kind;
  $('conn-text').textContent = text;
}

// ---------------------------------------------------------------- streams and rates

async function fetchAllStreams() {
  const all = [];
  let page = '';
  for (let i = 0; i < 100; i++) {
    const r = await api(`/streams?page_size=1000${page ? '&page_token=' + enc(page) : ''}`);
    all.push(...(r.streams || []));
    page = r.next_page_token;
    if (!page) break;
  }
  return all;
}

function updateRates(list) {
  const now = performance.now();
  const seen = new Set();
  for (const s of list) {
    seen.add(s.stream);
    const prev = state.rates.get(s.stream);
    if (!prev) {
      state.rates.set(s.stream, { seq: s.last_sequence, t: now, rate: null, spark: [] });
      continue;
    }
    const dt = (now - prev.t) / 1000;
    if (dt < 0.5) continue;
    const delta = Math.max(0, s.last_sequence - prev.seq);
    prev.rate = delta / dt;
    prev.seq = s.last_sequence;
    prev.t = now;
    prev.spark.push(prev.rate);
    if (prev.spark.length > SPARK_POINTS) prev.spark.shift();
  }
  for (const name of [...state.rates.keys()]) if (!seen.has(name)) state.rates.delete(name);
}

function sparkline(values) {
  const w = 64;
  const hgt = 18;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  if (values.length < 2) return svg;
  const max = Math.max(...values, 0.0001);
  const step = w / (SPARK_POINTS - 1);
  const x0 = w - (values.length - 1) * step;
  const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(hgt - 1.5 - (v / max) * (hgt - 3)).toFixed(1)}`);
  const area = document.createElementNS(SVG_NS, 'polygon');
  area.setAttribute('points', `${x0.toFixed(1)},${hgt} ${pts.join(' ')} ${w},${hgt}`);
  area.setAttribute('class', 'spark-area');
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('points', pts.join(' '));
  line.setAttribute('class', 'spark-line');
  svg.append(area, line);
  return svg;
}

/** Dead-letter streams are named `<stream>:dlq` by default. */
const isDlq = (name) => /:dlq$/.test(name);

function renderStreams() {
  const list = $('stream-list');
  const filter = state.filter.toLowerCase();
  const names = [...state.streams.keys()].sort((a, b) => a.localeCompare(b));
  const shown = names.filter((n) => !filter || n.toLowerCase().includes(filter));
  const rows = shown.map((name) => {
    const s = state.streams.get(name);
    const r = state.rates.get(name);
    const rate = r ? r.rate : null;
    return h(
      'li',
      {
        class: 'stream-row' + (name === state.selected ? ' selected' : '') + (rate ? ' active' : ''),
        dataset: { testid: 'stream-row', stream: name },
        tabindex: 0,
        title: name,
        onclick: () => selectStream(name),
        onkeydown: (e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            selectStream(name);
          }
        },
      },
      h(
        'div',
        { class: 'stream-main' },
        shortened('span', { class: 'stream-name', dataset: { testid: 'stream-name' } }, name, 64),
        isDlq(name) ? h('span', { class: 'badge dlq tiny' }, 'dlq') : null,
        s.group_count ? h('span', { class: 'badge tiny', title: `${s.group_count} consumer group(s)` }, `${s.group_count} grp`) : null,
      ),
      h(
        'div',
        { class: 'stream-sub' },
        h('span', { class: 'stream-count', dataset: { testid: 'stream-count', value: s.event_count }, title: `${numberFormat.format(s.event_count)} events` }, fmtCount(s.event_count), h('span', { class: 'unit' }, ' ev')),
        sparkline(r ? r.spark : []),
        h('span', { class: 'stream-rate' + (rate ? ' hot' : ''), dataset: { testid: 'stream-rate' } }, fmtRate(rate)),
      ),
    );
  });
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('.stream-row') : null;
  list.replaceChildren(...rows);
  fitMiddle(list);
  if (focused) {
    const again = rows.find((r) => r.dataset.stream === focused.dataset.stream);
    if (again) again.focus({ preventScroll: true });
  }
  $('streams-empty').hidden = names.length > 0;
  if (names.length && !shown.length) list.append(h('li', { class: 'empty small' }, 'No stream matches the filter.'));

  let total = 0;
  let totalRate = 0;
  let anyRate = false;
  for (const s of state.streams.values()) total += s.event_count;
  for (const r of state.rates.values()) if (r.rate !== null) ((totalRate += r.rate), (anyRate = true));
  $('total-streams').textContent = numberFormat.format(state.streams.size);
  $('total-events').textContent = fmtCount(total);
  $('total-rate').textContent = anyRate ? fmtRate(totalRate) : '–';

  const dl = $('stream-names');
  dl.replaceChildren(...names.map((n) => h('option', { value: n })));
}

let pollTimer = null;
async function poll() {
  clearTimeout(pollTimer);
  try {
    const list = await fetchAllStreams();
    state.streams = new Map(list.map((s) => [s.stream, s]));
    updateRates(list);
    renderStreams();
    if (!state.selected && !location.hash && list.length) {
      const first = list.map((s) => s.stream).filter((n) => !isDlq(n)).sort()[0] || list[0].stream;
      selectStream(first, { replace: true });
    } else if (state.selected) {
      await refreshDetail();
    }
  } catch (e) {
    if (e.status) toast('Listing streams failed: ' + e.message);
  }
  clearTimeout(pollTimer); // a poll started by hand (after a publish) must not fork a second loop
  pollTimer = setTimeout(poll, document.hidden ? POLL_MS * 3 : POLL_MS);
}

// ---------------------------------------------------------------- the selected stream

function selectStream(name, { replace = false } = {}) {
  const changed = name !== state.selected;
  state.selected = name;
  const hash = '#/stream/' + enc(name);
  if (location.hash !== hash) {
    if (replace) history.replaceState(null, '', hash);
    else history.pushState(null, '', hash);
  }
  if (changed) {
    state.events = [];
    state.eventsKey = '';
    state.viewing = null;
    $('events-body').replaceChildren();
    $('groups-body').replaceChildren();
    $('charts').replaceChildren();
    $('history-card').hidden = true;
    charted.stream = null;
    renderViewer();
  }
  if (!$('pub-stream').value || changed) $('pub-stream').value = name;
  renderStreams();
  refreshDetail();
}

function streamFromHash() {
  const m = location.hash.match(/^#\/stream\/(.+)$/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

let detailBusy = false;
let detailAgain = null;
async function refreshDetail({ forceEvents = false } = {}) {
  const name = state.selected;
  if (!name) return;
  if (detailBusy) {
    // One more refresh once this one is done (a new selection, say).
    detailAgain = { forceEvents: forceEvents || (detailAgain && detailAgain.forceEvents) };
    return;
  }
  detailBusy = true;
  try {
    let info = state.streams.get(name);
    if (!info) {
      try {
        info = await api('/streams/' + enc(name));
      } catch (e) {
        if (e.status === 404) {
          showMissing(name);
          return;
        }
        throw e;
      }
    }
    if (name !== state.selected) return;
    state.selectedInfo = info;
    renderDetail(info);
    const typeFilter = $('events-type').value.trim();
    const key = `${info.last_sequence}|${info.first_sequence}|${typeFilter}`;
    const [events, groups] = await Promise.all([
      forceEvents || key !== state.eventsKey ? api(`/streams/${enc(name)}/events?direction=backward&limit=${RECENT_LIMIT}${typeFilter ? '&type=' + enc(typeFilter) : ''}`) : null,
      api(`/streams/${enc(name)}/groups`),
    ]);
    if (name !== state.selected) return;
    if (events) {
      state.eventsKey = key;
      state.events = events.events || [];
      renderEvents();
    }
    renderGroups(groups.groups || []);
    await refreshHistory(name, groups.groups || []);
  } catch (e) {
    if (e.status === 404) showMissing(name);
    else if (e.status) toast(`Loading ${name} failed: ${e.message}`);
  } finally {
    detailBusy = false;
    if (detailAgain) {
      const again = detailAgain;
      detailAgain = null;
      refreshDetail(again);
    }
  }
}

function showMissing(name) {
  $('detail').hidden = false;
  setShortened($('detail-name'), name, 96);
  $('history-card').hidden = true;
  $('detail-stats').replaceChildren(h('div', { class: 'stat wide' }, h('dt', {}, 'status'), h('dd', {}, 'This stream does not exist (any more).')));
  $('groups-card').hidden = true;
  $('events-card').hidden = true;
  $('welcome').hidden = true;
}

function stat(label, value, opts = {}) {
  return h('div', { class: 'stat' + (opts.class ? ' ' + opts.class : ''), title: opts.title }, h('dt', {}, label), h('dd', { dataset: opts.testid ? { testid: opts.testid } : undefined }, value));
}

function renderDetail(info) {
  $('welcome').hidden = true;
  $('detail').hidden = false;
  $('groups-card').hidden = false;
  $('events-card').hidden = false;
  setShortened($('detail-name'), info.stream, 96);
  $('detail-dlq').hidden = !isDlq(info.stream);
  const r = state.rates.get(info.stream);
  const ret = info.retention || {};
  const retention = [
    ret.max_events ? `${numberFormat.format(ret.max_events)} ev` : null,
    ret.max_age_seconds ? `${fmtDuration(ret.max_age_seconds)} age` : null,
    ret.ttl_seconds ? `ttl ${fmtDuration(ret.ttl_seconds)}` : null,
  ].filter(Boolean);
  $('detail-stats').replaceChildren(
    stat('events', fmtCount(info.event_count), { testid: 'detail-event-count', title: numberFormat.format(info.event_count) }),
    stat('rate', fmtRate(r ? r.rate : null), { testid: 'detail-rate', title: 'events appended per second, over the last poll' }),
    stat('sequences', info.event_count ? `${info.first_sequence} – ${info.last_sequence}` : `– (last ${info.last_sequence})`),
    stat('groups', String(info.group_count ?? 0)),
    stat('updated', fmtAgo(info.last_appended_at), { title: fmtDateTime(info.last_appended_at) }),
    stat('retention', retention.length ? retention.join(' · ') : 'default', { title: retention.length ? retention.join(', ') : 'the server-wide retention applies' }),
  );
}

function renderEvents() {
  const body = $('events-body');
  const rows = state.events.map((ev) =>
    h(
      'tr',
      {
        class: isViewing(ev, 'recent') ? 'selected' : '',
        'aria-selected': isViewing(ev, 'recent') ? 'true' : 'false',
        dataset: { testid: 'event-row', sequence: ev.rlsequence },
        tabindex: 0,
        onclick: () => viewEvent(ev, 'recent'),
        onkeydown: (e) => {
          if (e.key === 'Enter') viewEvent(ev, 'recent');
        },
      },
      h('td', { class: 'num mono' }, ev.rlsequence),
      h('td', {}, shortened('span', { class: 'type ' + hueClass(ev.type || ''), dataset: { testid: 'event-type' } }, ev.type, 64)),
      h('td', { class: 'mono muted nowrap', title: fmtDateTime(ev.rlrecordedtime) }, fmtTime(ev.rlrecordedtime).slice(0, 8)),
    ),
  );
  body.replaceChildren(...rows);
  fitMiddle(body);
  $('events-empty').hidden = rows.length > 0;
  const info = state.selectedInfo;
  $('events-note').textContent = info && info.event_count > state.events.length ? `latest ${state.events.length} of ${fmtCount(info.event_count)}` : '';
  if (!state.viewing && state.events.length) viewEvent(state.events[0], 'recent');
}

function deadLetterCount(dlq) {
  if (!dlq) return null;
  const s = state.streams.get(dlq);
  return s ? s.event_count : 0; // the stream list is complete, so missing means none yet
}

function renderGroups(groups) {
  state.groups = groups;
  // A poll must not replace the seek field under the user's cursor.
  if (document.activeElement && document.activeElement.dataset.testid === 'group-seek-to') return;
  $('groups-note').textContent = groups.length ? `${groups.length} group${groups.length > 1 ? 's' : ''}` : '';
  $('groups-empty').hidden = groups.length > 0;
  $('groups-table').hidden = groups.length === 0;
  const rows = [];
  for (const g of groups) {
    const dead = deadLetterCount(g.dead_letter_stream);
    const connected = (g.consumers || []).filter((c) => c.connected).length;
    rows.push(
      h(
        'tr',
        { class: 'group-row', dataset: { testid: 'group-row', group: g.group } },
        h(
          'td',
          {},
          shortened('div', { class: 'group-name' }, g.group, 32),
          h('div', { class: 'muted small nowrap' }, g.max_deliveries ? `max ${g.max_deliveries} deliveries` : 'unlimited deliveries', g.ack_timeout_seconds ? ` · ack ${fmtDuration(g.ack_timeout_seconds)}` : ''),
          h(
            'div',
            { class: 'group-actions' },
            h('button', { type: 'button', class: 'btn tiny', title: 'move the group\'s cursor: earliest, latest, a sequence or a time', dataset: { testid: 'group-seek-toggle' }, onclick: () => toggleSeek(g.group) }, 'Seek…'),
            h('button', { type: 'button', class: 'btn tiny', disabled: !dead, title: dead ? `give ${g.group}'s dead letters back to it with a fresh delivery count` : 'no dead letters', dataset: { testid: 'group-redrive' }, onclick: () => redriveGroup(g.group) }, 'Redrive'),
          ),
        ),
        h('td', { class: 'nowrap', dataset: { testid: 'group-consumers', value: (g.consumers || []).length } }, `${(g.consumers || []).length}`, h('span', { class: 'muted small' }, ` · ${connected} live`)),
        h('td', { class: 'num mono' + (g.pending ? ' warn' : ''), dataset: { testid: 'group-pending', value: g.pending } }, fmtCount(g.pending)),
        h('td', { class: 'num mono' + (g.lag ? ' warn' : ''), dataset: { testid: 'group-lag', value: g.lag } }, fmtCount(g.lag)),
        h('td', { class: 'num mono nowrap col-pos', title: `acknowledged up to #${g.ack_floor}, delivered up to #${g.last_delivered_sequence}` }, `${g.ack_floor} / ${g.last_delivered_sequence}`),
        h(
          'td',
          { class: 'num mono' + (dead ? ' bad' : ' quiet'), dataset: { testid: 'group-dead-letters', value: dead ?? 0 } },
          g.dead_letter_stream
            ? h('a', { href: '#/stream/' + enc(g.dead_letter_stream), title: `dead-letter stream ${g.dead_letter_stream}`, onclick: (e) => (e.preventDefault(), selectStream(g.dead_letter_stream)) }, fmtCount(dead))
            : '–',
        ),
      ),
    );
    if (state.seek && state.seek.group === g.group) rows.push(seekRow(g.group));
    for (const c of g.consumers || []) {
      rows.push(
        h(
          'tr',
          { class: 'consumer-row', dataset: { testid: 'consumer-row', consumer: c.consumer } },
          h('td', { colspan: 2 }, h('span', { class: 'conn-dot ' + (c.connected ? 'on' : 'off'), title: c.connected ? 'connected' : 'disconnected' }), h('span', { class: 'mono' }, c.consumer), h('span', { class: 'muted small' }, ` idle ${fmtDuration(c.idle_seconds)}`)),
          h('td', { class: 'num mono' }, fmtCount(c.pending)),
          h('td', { colspan: 2 }),
          h('td', { class: 'col-pos' }),
        ),
      );
    }
  }
  $('groups-body').replaceChildren(...rows);
  fitMiddle($('groups-body'));
}

function toggleSeek(group) {
  state.seek = state.seek && state.seek.group === group ? null : { group, to: '' };
  renderGroups(state.groups || []);
  const field = document.querySelector('[data-testid="group-seek-to"]');
  if (field) field.focus();
}

// ---------------------------------------------------------------- the last hour

/** What the charts show, to refetch only when the server can have news. */
const charted = { stream: null, groups: '', at: 0 };

/** Fetches the selected stream's and its first groups' history, at most every HISTORY_MS. */
async function refreshHistory(name, groups) {
  const shown = groups.slice(0, CHART_GROUPS).map((g) => g.group);
  const key = shown.join('\n');
  const now = Date.now();
  if (charted.stream === name && charted.groups === key && now - charted.at < HISTORY_MS) return;
  Object.assign(charted, { stream: name, groups: key, at: now });
  let throughput;
  let backlogs;
  try {
    // A group deleted meanwhile is simply not charted.
    const backlog = (g) => api(`/streams/${enc(name)}/groups/${enc(g)}/history`).catch((e) => (e.status === 404 ? null : Promise.reject(e)));
    [throughput, ...backlogs] = await Promise.all([api(`/streams/${enc(name)}/history`), ...shown.map(backlog)]);
  } catch (e) {
    if (name !== state.selected) return;
    $('history-card').hidden = false;
    $('history-note').textContent = e.status ? `history unavailable: ${e.message}` : 'history unavailable';
    return;
  }
  if (name !== state.selected) return;
  renderHistory(throughput, backlogs.filter(Boolean), groups.length);
}

function renderHistory(throughput, backlogs, groupCount) {
  const points = throughput.points || [];
  const step = (throughput.interval_seconds || 10) * 1000;
  // The last bucket is the current one: the charts end where it ends.
  const to = points.length ? Date.parse(points[points.length - 1].time) + step : Date.now();
  const from = points.length ? Date.parse(points[0].time) : to - 3600000;
  const total = points.reduce((n, p) => n + p.events, 0);
  $('history-card').hidden = false;
  $('charts').replaceChildren(throughputChart(throughput, from, to, step), ...backlogs.map((b) => backlogChart(b, from, to)));
  const notes = [`${fmtCount(total)} event${total === 1 ? '' : 's'} appended`];
  if (!throughput.tracked) notes.push('throughput not kept: the server tracks a limited number of active streams');
  if (groupCount > backlogs.length) notes.push(`first ${backlogs.length} of ${groupCount} groups`);
  $('history-note').textContent = notes.join(' · ');
}

function throughputChart(history, from, to, step) {
  const points = history.points || [];
  const series = {
    key: 'throughput',
    cls: 's-throughput',
    points: points.map((p) => ({ t: Date.parse(p.time) + step / 2, v: p.events_per_second })),
  };
  const hovers = points.map((p) => {
    const t0 = Date.parse(p.time);
    return { t0, t1: t0 + step, text: `${fmtTime(p.time).slice(0, 8)}–${fmtTime(new Date(t0 + step)).slice(0, 8)} · ${numberFormat.format(p.events)} event${p.events === 1 ? '' : 's'} · ${fmtRate(p.events_per_second)}` };
  });
  const last = points[points.length - 1];
  return chartFigure({
    testid: 'throughput-chart',
    dataset: { points: points.length, total: points.reduce((n, p) => n + p.events, 0) },
    title: 'appended per second',
    now: last ? fmtRate(last.events_per_second) : '–',
    svg: lineChart({ from, to, series: [series], hovers, fmtValue: fmtRate, area: true }),
  });
}

function backlogChart(history, from, to) {
  const points = (history.points || []).map((p) => ({ t: Date.parse(p.time), lag: p.lag, pending: p.pending }));
  const hovers = points.map((p, i) => ({
    t0: i ? (points[i - 1].t + p.t) / 2 : p.t - 5000,
    t1: i + 1 < points.length ? (p.t + points[i + 1].t) / 2 : p.t + 5000,
    text: `${fmtTime(new Date(p.t)).slice(0, 8)} · lag ${numberFormat.format(p.lag)} · pending ${numberFormat.format(p.pending)}`,
  }));
  const last = points[points.length - 1] || { lag: 0, pending: 0 };
  return chartFigure({
    testid: 'group-chart',
    dataset: { group: history.group, points: points.length, lag: last.lag, pending: last.pending },
    title: `group ${history.group}`,
    legend: h('span', { class: 'chart-legend' }, h('span', { class: 'key s-lag' }, 'lag'), h('span', { class: 'key s-pending' }, 'pending')),
    now: `${fmtCount(last.lag)} / ${fmtCount(last.pending)}`,
    svg: lineChart({
      from: Math.min(from, points.length ? points[0].t : from),
      to: Math.max(to, last.t || to),
      series: [
        { key: 'lag', cls: 's-lag', points: points.map((p) => ({ t: p.t, v: p.lag })), dots: true },
        { key: 'pending', cls: 's-pending', points: points.map((p) => ({ t: p.t, v: p.pending })), dots: true },
      ],
      hovers,
      fmtValue: fmtCount,
    }),
  });
}

function chartFigure({ testid, dataset, title, legend, now, svg }) {
  return h(
    'figure',
    { class: 'chart', dataset: { testid, ...dataset } },
    h('figcaption', { class: 'chart-head' }, shortened('span', { class: 'chart-title' }, title, 44), legend, h('span', { class: 'chart-now', dataset: { testid: 'chart-now' } }, now)),
    svg,
  );
}

function svgEl(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** A rounded-up axis maximum: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => v <= m);
}

const CHART = { w: 360, h: 120, left: 40, right: 6, top: 8, bottom: 18 };

/**
 * A dependency-free SVG line chart over [from, to] (ms since the epoch):
 * `series` are {key, cls, points: [{t, v}], dots}; `hovers` are bands
 * {t0, t1, text} whose text shows on hover (an SVG <title>).
 */
function lineChart({ from, to, series, hovers, fmtValue, area = false }) {
  const { w, h: ht, left, right, top, bottom } = CHART;
  const pw = w - left - right;
  const ph = ht - top - bottom;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const span = Math.max(1, to - from);
  const x = (t) => left + ((t - from) / span) * pw;
  const y = (v) => top + ph - (v / max) * ph;
  const f = (n) => n.toFixed(1);
  const svg = svgEl('svg', { viewBox: `0 0 ${w} ${ht}`, role: 'img', 'aria-label': series.map((s) => s.key).join(', ') });
  for (const share of [0, 0.5, 1]) {
    const yy = y(max * share);
    svg.append(
      svgEl('line', { class: 'grid', x1: left, x2: w - right, y1: f(yy), y2: f(yy) }),
      svgEl('text', { class: 'axis', x: left - 6, y: f(yy + 3.5), 'text-anchor': 'end' }, fmtValue(max * share)),
    );
  }
  // Clock times every 15 minutes, back from the end.
  for (let t = to, i = 0; t >= from && i < 5; t -= 15 * 60000, i++) {
    const anchor = i === 0 ? 'end' : x(t) - left < 20 ? 'start' : 'middle';
    svg.append(svgEl('text', { class: 'axis', x: f(x(t)), y: ht - 5, 'text-anchor': anchor }, fmtClock(t)));
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const pts = s.points.map((p) => `${f(x(p.t))},${f(y(p.v))}`);
    if (area) {
      svg.append(svgEl('polygon', { class: 'area', points: `${f(x(s.points[0].t))},${f(y(0))} ${pts.join(' ')} ${f(x(s.points[s.points.length - 1].t))},${f(y(0))}` }));
    }
    svg.append(svgEl('polyline', { class: `line ${s.cls}`, points: pts.join(' '), 'data-testid': `line-${s.key}`, 'data-points': s.points.length }));
    if (s.dots && s.points.length <= 60) {
      for (const p of s.points) svg.append(svgEl('circle', { class: `dot ${s.cls}`, cx: f(x(p.t)), cy: f(y(p.v)), r: 2.2 }));
    }
  }
  for (const band of hovers) {
    const x0 = Math.max(left, x(band.t0));
    const x1 = Math.min(w - right, x(band.t1));
    svg.append(svgEl('rect', { class: 'hover', x: f(x0), y: top, width: f(Math.max(0.5, x1 - x0)), height: ph, 'data-testid': 'chart-point' }, svgEl('title', {}, band.text)));
  }
  return svg;
}

function seekRow(group) {
  return h(
    'tr',
    { class: 'seek-row', dataset: { testid: 'seek-row', group } },
    h(
      'td',
      { colspan: 6 },
      h(
        'form',
        { class: 'inline-form', onsubmit: (e) => (e.preventDefault(), seekGroup(group, state.seek.to.trim())) },
        h('input', { type: 'text', class: 'compact', value: state.seek.to, placeholder: 'earliest, latest, a sequence or an RFC 3339 time', autocomplete: 'off', dataset: { testid: 'group-seek-to' }, oninput: (e) => (state.seek.to = e.target.value) }),
        ' ',
        h('button', { type: 'submit', class: 'btn small primary', dataset: { testid: 'group-seek-go' } }, 'Move cursor'),
        h('span', { class: 'muted small' }, ' Its pending entries are removed; the events after the cursor are delivered again.'),
      ),
    ),
  );
}

/** Moves a group of the selected stream to `to` (POST .../seek). */
async function seekGroup(group, to) {
  const stream = state.selected;
  if (!stream || !to) return;
  try {
    const r = await api(`/streams/${enc(stream)}/groups/${enc(group)}/seek`, { method: 'POST', body: { to } });
    state.seek = null;
    toast(`${group} goes on after #${r.group.last_delivered_sequence} (${r.pending_removed} pending entries removed, lag ${fmtCount(r.group.lag)})`, 'ok');
    if (document.activeElement) document.activeElement.blur();
    await refreshDetail();
  } catch (e) {
    toast(`Seeking ${group} failed: ${e.message}`);
  }
}

/** Gives every dead letter of a group of the selected stream back to it. */
async function redriveGroup(group) {
  const stream = state.selected;
  if (!stream) return;
  try {
    const r = await api(`/streams/${enc(stream)}/groups/${enc(group)}/redrive`, { method: 'POST', body: { all: true } });
    const kept = r.origin_gone.length ? `; kept ${r.origin_gone.length} whose event is gone` : '';
    const more = r.more ? '; more remain: redrive again' : '';
    toast(`Redrove ${fmtCount(r.redriven)} dead letters to ${group}${kept}${more}`, 'ok');
    await poll();
    await refreshDetail();
  } catch (e) {
    toast(`Redriving ${group} failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------- JSON viewer

function jsonNode(value, key, last) {
  const comma = last ? '' : ',';
  const keyEl = key === undefined ? null : [h('span', { class: 'j-key' }, JSON.stringify(key)), h('span', { class: 'j-punct' }, ': ')];
  if (value !== null && typeof value === 'object') {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [undefined, v, i]) : Object.entries(value).map(([k, v], i) => [k, v, i]);
    const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
    if (!entries.length) return h('div', { class: 'j-row' }, keyEl, h('span', { class: 'j-punct' }, open + close + comma));
    const count = isArray ? `${entries.length} item${entries.length > 1 ? 's' : ''}` : `${entries.length} key${entries.length > 1 ? 's' : ''}`;
    return h(
      'details',
      { class: 'j-node', open: true },
      h('summary', { class: 'j-row' }, keyEl, h('span', { class: 'j-punct' }, open), h('span', { class: 'j-fold' }, ` … ${close}${comma} `, h('span', { class: 'j-count' }, count))),
      h('div', { class: 'j-children' }, entries.map(([k, v, i]) => jsonNode(v, k, i === entries.length - 1))),
      h('div', { class: 'j-row j-close' }, h('span', { class: 'j-punct' }, close + comma)),
    );
  }
  let cls = 'j-null';
  if (typeof value === 'string') cls = 'j-str';
  else if (typeof value === 'number') cls = 'j-num';
  else if (typeof value === 'boolean') cls = 'j-bool';
  return h('div', { class: 'j-row' }, keyEl, h('span', { class: cls }, JSON.stringify(value)), h('span', { class: 'j-punct' }, comma));
}

/** Whether `ev`, seen in `origin` ('recent' or 'tail'), is the one in the viewer. */
function isViewing(ev, origin) {
  const v = state.viewing;
  return !!v && v.origin === origin && v.event.rlsequence === ev.rlsequence && v.event.rlstream === ev.rlstream;
}

function viewEvent(ev, origin) {
  state.viewing = { event: ev, origin };
  renderViewer();
  for (const tr of $('events-body').children) {
    const on = origin === 'recent' && String(ev.rlsequence) === tr.dataset.sequence && ev.rlstream === state.selected;
    tr.classList.toggle('selected', on);
    tr.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  // One selected row in the whole console: the one shown in the viewer.
  for (const li of $('tail-list').children) {
    const on = origin === 'tail' && String(ev.rlsequence) === li.dataset.sequence && (ev.rlstream ?? '') === li.dataset.stream;
    li.classList.toggle('selected', on);
  }
}

function renderViewer() {
  const v = state.viewing;
  const body = $('viewer-body');
  if (!v) {
    $('viewer-title').textContent = 'Select an event';
    $('viewer-meta').replaceChildren();
    body.replaceChildren(h('p', { class: 'empty small' }, 'Click an event in the list or in the live tail to inspect it.'));
    return;
  }
  const ev = v.event;
  $('viewer-title').replaceChildren(
    ...[
    shortened('span', { class: 'mono' }, `${ev.rlstream ?? ''}#${ev.rlsequence ?? '?'}`, 96),
    ' ',
    shortened('span', { class: 'type ' + hueClass(ev.type || '') }, ev.type, 48),
    v.origin === 'tail' ? h('span', { class: 'badge tiny' }, 'from live tail') : null,
    ].filter(Boolean),
  );
  $('viewer-meta').replaceChildren(
    ...[
    h('span', {}, h('b', {}, 'id '), h('span', { class: 'mono' }, ev.id)),
    h('span', {}, h('b', {}, 'source '), h('span', { class: 'mono' }, ev.source)),
    ev.subject ? h('span', {}, h('b', {}, 'subject '), h('span', { class: 'mono' }, ev.subject)) : null,
    h('span', {}, h('b', {}, 'position '), h('span', { class: 'mono' }, ev.rlposition)),
    h('span', { title: ev.rlrecordedtime, dataset: { testid: 'viewer-recorded' } }, h('b', {}, 'recorded '), fmtDateTime(ev.rlrecordedtime)),
    ].filter(Boolean),
  );
  fitMiddle($('viewer-title'));
  body.replaceChildren(jsonNode(ev, undefined, true));
  $('viewer-fold').textContent = 'Collapse';
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h('textarea', { class: 'offscreen' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
}

// ---------------------------------------------------------------- live tail (SSE over fetch)

const tail = { gen: 0, ctrl: null, running: false, paused: false, held: [], lastId: null, count: 0, times: [] };

function setTail(kind, text) {
  $('tail-status').dataset.state = kind;
  $('tail-status-text').textContent = text;
}

function tailParams() {
  const p = new URLSearchParams();
  const selectors = splitList($('tail-pattern').value);
  for (const s of selectors.length ? selectors : ['*']) p.append(s.includes('*') ? 'pattern' : 'stream', s);
  for (const t of splitList($('tail-types').value)) p.append('type', t);
  p.set('from', $('tail-from').value);
  return p;
}

function startTail() {
  stopTail();
  tail.running = true;
  tail.lastId = null;
  const gen = ++tail.gen;
  tailLoop(gen);
}

function stopTail() {
  tail.running = false;
  tail.gen++;
  if (tail.ctrl) tail.ctrl.abort();
  tail.ctrl = null;
}

async function tailLoop(gen) {
  let delay = 2000;
  while (tail.running && gen === tail.gen) {
    const ctrl = new AbortController();
    tail.ctrl = ctrl;
    setTail('connecting', tail.lastId === null ? 'connecting' : 'reconnecting');
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (tail.lastId !== null) headers['Last-Event-ID'] = tail.lastId;
      const res = await fetch(`${API}/subscribe?${tailParams()}`, { headers, signal: ctrl.signal, cache: 'no-store' });
      if (gen !== tail.gen) return;
      if (res.status === 401) {
        setTail('locked', 'token needed');
        await askToken(state.token ? 'The token was not accepted.' : '');
        continue;
      }
      if (!res.ok) {
        const p = await problemOf(res);
        setTail('error', p.detail || `error ${res.status}`);
        tail.running = false;
        if (res.status < 500 && res.status !== 429) return;
        tail.running = true;
      } else {
        setTail('live', 'live');
        await readSse(res.body, gen, (ms) => (delay = ms));
      }
    } catch (e) {
      if (e.name === 'AbortError' || gen !== tail.gen) return;
    }
    if (!tail.running || gen !== tail.gen) return;
    setTail('connecting', `reconnecting in ${Math.round(delay / 1000)}s`);
    await sleep(delay);
  }
}

async function readSse(body, gen, setRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done || gen !== tail.gen) return;
    buf += value.replace(/\r\n?/g, '\n');
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      sseBlock(block, setRetry);
    }
  }
}

function sseBlock(block, setRetry) {
  const data = [];
  let type = null;
  for (const line of block.split('\n')) {
    if (!line) continue;
    if (line.startsWith(':')) {
      const comment = line.slice(1).trim();
      if (comment === 'caught-up') {
        setTail('live', 'live');
        $('tail-status').title = 'caught up: every past event matching the filters was delivered';
      }
      continue;
    }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let v = i < 0 ? '' : line.slice(i + 1);
    if (v.startsWith(' ')) v = v.slice(1);
    if (field === 'id') tail.lastId = v;
    else if (field === 'event') type = v;
    else if (field === 'data') data.push(v);
    else if (field === 'retry' && /^\d+$/.test(v)) setRetry(Number(v));
  }
  if (!data.length) return;
  let ev;
  try {
    ev = JSON.parse(data.join('\n'));
  } catch {
    ev = { type: type || 'message', data: data.join('\n') };
  }
  addTailEvent(ev);
}

function tailRow(ev) {
  let preview = '';
  if (ev.data !== undefined) preview = typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data);
  else if (ev.data_base64 !== undefined) preview = `<${Math.floor((ev.data_base64.length * 3) / 4)} bytes>`;
  if (preview.length > 160) preview = preview.slice(0, 160) + '…';
  return h(
    'li',
    {
      class: 'tail-row fresh',
      dataset: { testid: 'tail-event', stream: ev.rlstream ?? '', sequence: ev.rlsequence ?? '', type: ev.type ?? '', id: ev.id ?? '' },
      tabindex: 0,
      onclick: () => viewEvent(ev, 'tail'),
    },
    h(
      'div',
      { class: 'tail-line' },
      h('span', { class: 'mono muted' }, fmtTime(ev.rlrecordedtime || ev.time)),
      shortened(
        'a',
        { class: 'tail-stream mono', href: '#/stream/' + enc(ev.rlstream ?? ''), onclick: (e) => (e.preventDefault(), e.stopPropagation(), selectStream(ev.rlstream)) },
        `${ev.rlstream}#${ev.rlsequence}`,
        64,
      ),
      shortened('span', { class: 'type ' + hueClass(ev.type || ''), dataset: { testid: 'tail-type' } }, ev.type, 64),
    ),
    preview ? h('div', { class: 'tail-data mono' }, preview) : null,
  );
}

function addTailEvent(ev) {
  tail.count++;
  const now = performance.now();
  tail.times.push(now);
  while (tail.times.length && now - tail.times[0] > 10000) tail.times.shift();
  if (tail.paused) {
    tail.held.push(ev);
    if (tail.held.length > TAIL_MAX) tail.held.shift();
    $('tail-pause').textContent = `Resume (${tail.held.length})`;
  } else {
    insertTail([ev]);
  }
  updateTailCount();
}

function insertTail(events) {
  const list = $('tail-list');
  const frag = document.createDocumentFragment();
  const rows = events.map(tailRow);
  for (let i = rows.length - 1; i >= 0; i--) frag.append(rows[i]);
  list.prepend(frag);
  rows.forEach(fitMiddle);
  while (list.children.length > TAIL_MAX) list.lastElementChild.remove();
  $('tail-empty').hidden = list.children.length > 0;
  setTimeout(() => {
    for (const li of list.querySelectorAll('.fresh')) li.classList.remove('fresh');
  }, 1200);
}

function updateTailCount() {
  const rate = tail.times.length > 1 ? (tail.times.length - 1) / Math.max(1, (tail.times[tail.times.length - 1] - tail.times[0]) / 1000) : 0;
  $('tail-count').textContent = tail.count ? `${numberFormat.format(tail.count)} ev${rate ? ' · ' + fmtRate(rate) : ''}` : '';
}

// ---------------------------------------------------------------- publish

async function publish(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const out = $('publish-result');
  const stream = $('pub-stream').value.trim();
  const text = $('pub-data').value;
  const ce = { specversion: '1.0', id: newId(), source: $('pub-source').value.trim(), type: $('pub-type').value.trim(), time: new Date().toISOString() };
  const subject = $('pub-subject').value.trim();
  if (subject) ce.subject = subject;
  const trimmed = text.trim();
  if (trimmed) {
    try {
      ce.data = JSON.parse(trimmed);
      ce.datacontenttype = 'application/json';
    } catch (e) {
      if (/^[[{"]/.test(trimmed)) {
        out.className = 'publish-result error';
        out.textContent = 'Data looks like JSON but does not parse: ' + e.message;
        return;
      }
      ce.data = text;
      ce.datacontenttype = 'text/plain';
    }
  }
  const button = $('pub-submit');
  button.disabled = true;
  out.className = 'publish-result';
  out.textContent = 'Publishing…';
  try {
    const r = await api(`/streams/${enc(stream)}/events`, { method: 'POST', body: ce, contentType: 'application/cloudevents+json' });
    const p = (r.positions || [])[0] || {};
    out.className = 'publish-result ok';
    out.dataset.sequence = p.sequence ?? '';
    out.dataset.id = p.id ?? ce.id;
    out.replaceChildren(p.duplicate ? 'Duplicate of ' : 'Appended ', h('a', { href: '#/stream/' + enc(stream), onclick: (e) => (e.preventDefault(), selectStream(stream)) }, `${stream}#${p.sequence}`), ` at position ${p.position}`);
    form.dataset.published = String(Number(form.dataset.published || 0) + 1);
    poll();
  } catch (e) {
    out.className = 'publish-result error';
    out.textContent = `${e.reason ? e.reason + ': ' : ''}${e.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- streams: create and delete

async function createStream(ev) {
  ev.preventDefault();
  const f = ev.currentTarget.elements;
  const body = { stream: f.stream.value.trim() };
  const retention = {};
  if (f.max_events.value.trim()) retention.max_events = Number(f.max_events.value.trim());
  if (f.max_age.value.trim()) retention.max_age = f.max_age.value.trim();
  if (f.ttl.value.trim()) retention.ttl = f.ttl.value.trim();
  if (Object.keys(retention).length) body.retention = retention;
  try {
    await api('/streams', { method: 'POST', body });
    toast(`Created stream ${body.stream}`, 'ok');
    ev.currentTarget.reset();
    $('new-stream-form').hidden = true;
    await poll();
    selectStream(body.stream);
  } catch (e) {
    toast(`Creating ${body.stream} failed: ${e.message}`);
  }
}

let deleteArmed = null;
async function deleteSelected() {
  const name = state.selected;
  const btn = $('detail-delete');
  if (!name) return;
  if (deleteArmed !== name) {
    deleteArmed = name;
    btn.textContent = 'Click again to delete';
    btn.classList.add('armed');
    setTimeout(() => {
      if (deleteArmed === name) {
        deleteArmed = null;
        btn.textContent = 'Delete';
        btn.classList.remove('armed');
      }
    }, 3500);
    return;
  }
  deleteArmed = null;
  btn.textContent = 'Delete';
  btn.classList.remove('armed');
  try {
    await api('/streams/' + enc(name), { method: 'DELETE' });
    toast(`Deleted stream ${name}`, 'ok');
    state.selected = null;
    history.replaceState(null, '', location.pathname);
    for (const id of ['detail', 'groups-card', 'events-card']) $(id).hidden = true;
    $('welcome').hidden = false;
    poll();
  } catch (e) {
    toast(`Deleting ${name} failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('stream-filter').addEventListener('input', (e) => {
    state.filter = e.target.value;
    renderStreams();
  });
  $('new-stream-toggle').addEventListener('click', () => {
    const f = $('new-stream-form');
    f.hidden = !f.hidden;
    if (!f.hidden) f.elements.stream.focus();
  });
  $('new-stream-cancel').addEventListener('click', () => ($('new-stream-form').hidden = true));
  $('new-stream-form').addEventListener('submit', createStream);

  $('detail-delete').addEventListener('click', deleteSelected);
  $('detail-tail').addEventListener('click', () => {
    if (!state.selected) return;
    $('tail-pattern').value = state.selected;
    startTail();
  });
  $('detail-publish').addEventListener('click', () => {
    if (!state.selected) return;
    $('pub-stream').value = state.selected;
    $('pub-data').focus();
  });
  let typeTimer = null;
  $('events-type').addEventListener('input', () => {
    clearTimeout(typeTimer);
    typeTimer = setTimeout(() => {
      state.viewing = null;
      refreshDetail({ forceEvents: true });
    }, 300);
  });

  $('viewer-fold').addEventListener('click', () => {
    const nodes = [...$('viewer-body').querySelectorAll('details')];
    const folding = nodes.slice(1).some((d) => d.open);
    nodes.forEach((d, i) => (d.open = !folding || i === 0));
    $('viewer-fold').textContent = folding ? 'Expand' : 'Collapse';
  });
  $('viewer-copy').addEventListener('click', async () => {
    if (!state.viewing) return;
    await copyText(JSON.stringify(state.viewing.event, null, 2));
    toast('Event JSON copied', 'ok');
  });

  $('tail-form').addEventListener('submit', (e) => {
    e.preventDefault();
    startTail();
  });
  $('tail-from').addEventListener('change', startTail);
  $('tail-pause').addEventListener('click', () => {
    tail.paused = !tail.paused;
    $('tail-pause').textContent = tail.paused ? 'Resume' : 'Pause';
    $('tail-pause').classList.toggle('armed', tail.paused);
    if (!tail.paused && tail.held.length) {
      insertTail(tail.held);
      tail.held = [];
    }
  });
  $('tail-clear').addEventListener('click', () => {
    $('tail-list').replaceChildren();
    tail.held = [];
    tail.count = 0;
    tail.times = [];
    $('tail-empty').hidden = false;
    $('tail-count').textContent = '';
    if (tail.paused) $('tail-pause').textContent = 'Resume';
  });

  $('publish-form').addEventListener('submit', publish);
  $('pub-data').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $('publish-form').requestSubmit();
    }
  });

  $('signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    stopTail();
    location.reload();
  });

  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || '')) {
      e.preventDefault();
      $('stream-filter').focus();
    }
  });
  window.addEventListener('popstate', () => {
    const name = streamFromHash();
    if (name && name !== state.selected) selectStream(name, { replace: true });
  });
  // Relative times ("3s ago") stay fresh between polls.
  setInterval(() => {
    if (state.selectedInfo && !$('detail').hidden && state.streams.has(state.selected)) renderDetail(state.streams.get(state.selected));
    updateTailCount();
  }, 1000);
}

async function main() {
  wire();
  renderViewer();
  if (state.token) $('signout').hidden = false;
  // One call first, so a token prompt (if any) comes before the rest starts.
  try {
    await api('/streams?page_size=1');
  } catch {
    /* poll() reports */
  }
  const fromHash = streamFromHash();
  if (fromHash) selectStream(fromHash, { replace: true });
  startTail();
  poll();
}

main();
