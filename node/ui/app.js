/*
 * Jarvis dashboard (docs/dashboard.md): one page, a view per "#/name".
 *
 * Everything goes through the session API with the session token in an
 * Authorization header, exactly as curl would. The token lives in this
 * script's memory only (never in storage or a cookie): no CSRF is
 * possible, and a reload signs out. Data from the node is put in the page
 * as text (textContent, attribute values), never parsed as HTML.
 *
 * Live updates come from GET /v1/watch (Server-Sent Events), read with
 * fetch() and a stream reader because EventSource cannot send the
 * Authorization header.
 */
'use strict';

const S = {
  token: null,
  role: null,
  keyName: null,
  route: 'overview',
  listeners: new Set(), // the current page's watch handlers
  timers: [], // the current page's intervals
  watch: null,
  rates: new Map(), // counter name -> [{t, d}] deltas seen on the stream
  configSeen: new Map(), // config key -> [{value, origin, time}] from the stream
};

const $ = (id) => document.getElementById(id);

/* -- DOM: text only --------------------------------------------------------- */

/* h('td', {class: 'num'}, 'text', node, ...): attributes by setAttribute,
 * children as text nodes or elements; null/false children are skipped. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

/* el.replaceChildren() without the null/false of conditional parts (which
 * it would turn into the text "null"). */
function put(el, ...kids) {
  el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function table(caption, heads, rows) {
  return h('div', {class: 'tablewrap', role: 'region', 'aria-label': caption + ' (table)', tabindex: 0},
    h('table', {},
      h('caption', {class: 'vh'}, caption),
      h('thead', {}, h('tr', {}, heads.map((x) => {
        const [text, cls] = Array.isArray(x) ? x : [x, null];
        return h('th', {scope: 'col', class: cls}, text || h('span', {class: 'vh'}, 'Actions'));
      }))),
      h('tbody', {}, rows)));
}

const json = (v) => JSON.stringify(v);
const short = (id) => (id ? String(id).slice(0, 12) + '…' : '—');
const status = (s) => h('span', {class: 'st-' + String(s).replace(/[^a-z]/g, '')}, String(s));
const boolText = (b) => (b === null || b === undefined ? '—' : b ? 'yes' : 'no');
const yesNo = (b) => h('span', {class: b ? 'st-true' : 'st-false'}, boolText(b));
const numOrDash = (v) => (v === null || v === undefined ? '—' : String(v));

function uptime(s) {
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return (d ? d + 'd ' : '') + (d || hr ? hr + 'h ' : '') + m + 'm ' + sec + 's';
}

/* A message line (role=status or alert) that a form reports into. */
function messageLine(kind) {
  return h('p', {class: kind === 'error' ? 'error' : 'notice', role: kind === 'error' ? 'alert' : 'status'});
}

/* A one-field search form: label above, field and button on one line. */
function searchForm(label, input, button, onsubmit) {
  return h('form', {class: 'card', role: 'search', 'aria-label': label,
    onsubmit: (e) => { e.preventDefault(); onsubmit(); }},
  h('label', {for: input.id}, label), h('div', {class: 'inline'}, input, h('button', {type: 'submit'}, button)));
}

/* -- the API ---------------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, cache: 'no-store', credentials: 'omit',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (r.status !== 204) data = await r.json().catch(() => null);
  if (r.status === 401 && S.token && path !== '/v1/sessions/current') {
    signedOut('Your session has ended (expired or revoked). Sign in again.');
    throw new ApiError(401, 'unauthorized', 'session ended');
  }
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(r.status, e.code, e.message);
  }
  return data;
}

const enc = (s) => encodeURIComponent(s);
/* Config and archive keys keep their '/' in a path (docs/api.md). */
const encKey = (s) => s.split('/').map(enc).join('/');

/* -- the change stream ------------------------------------------------------ */

/* Reads GET /v1/watch as Server-Sent Events, resumes from the last cursor,
 * reconnects with backoff; calls onEvent(kind, data) for each event and
 * onResync() when the cursor was too old (the pages re-read their state). */
class Watch {
  constructor(onEvent, onResync, onState) {
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onState = onState;
    this.cursor = null;
    this.retryMs = 2000;
    this.backoff = 0;
    this.stopped = false;
    this.ctl = null;
  }

  start() { this.loop(); }

  stop() {
    this.stopped = true;
    if (this.ctl) this.ctl.abort();
  }

  async loop() {
    while (!this.stopped) {
      let wait = this.retryMs;
      try {
        const ok = await this.once();
        wait = ok ? this.retryMs : Math.min(30000, 1000 * 2 ** this.backoff++);
      } catch (e) {
        if (this.stopped) return;
        this.onState('off', 'Not live: reconnecting');
        wait = Math.min(30000, 1000 * 2 ** this.backoff++);
      }
      if (this.stopped) return;
      await new Promise((res) => setTimeout(res, wait));
    }
  }

  /* One connection; true when it was a stream that ended (reconnect soon). */
  async once() {
    this.ctl = new AbortController();
    const headers = {Authorization: 'Bearer ' + S.token, Accept: 'text/event-stream'};
    if (this.cursor) headers['Last-Event-ID'] = this.cursor;
    this.onState('', 'Connecting');
    const r = await fetch('/v1/watch', {headers, signal: this.ctl.signal, cache: 'no-store', credentials: 'omit'});
    if (r.status === 410) {
      const body = await r.json().catch(() => ({}));
      this.cursor = body.cursor || (body.error && body.error.cursor) || null;
      this.onResync();
      return true;
    }
    if (r.status === 401) {
      signedOut('Your session has ended (expired or revoked). Sign in again.');
      this.stopped = true;
      return false;
    }
    if (r.status !== 200 || !r.body) {
      this.onState('off', 'Not live (HTTP ' + r.status + ')');
      return false;
    }
    this.backoff = 0;
    this.onState('on', 'Live');
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '', ev = {data: []};
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (ev.data.length) this.dispatch(ev);
          ev = {data: []};
          continue;
        }
        if (line[0] === ':') continue; // heartbeat
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) this.retryMs = Number(val);
      }
    }
    this.onState('', 'Reconnecting');
    return true;
  }

  dispatch(ev) {
    if (ev.id) this.cursor = ev.id;
    let data;
    try { data = JSON.parse(ev.data.join('\n')); } catch (e) { return; }
    const kind = ev.event || 'message';
    if (kind === 'hello') {
      if (!this.cursor && data.cursor) this.cursor = data.cursor;
      return;
    }
    if (kind === 'lagged') {
      if (data.cursor) this.cursor = data.cursor;
      return; // the node closes the stream; we resume from the cursor
    }
    this.onEvent(kind, data);
  }
}

function onWatchEvent(kind, data) {
  const now = Date.now();
  if (kind === 'counter' && typeof data.delta === 'number') {
    const list = S.rates.get(data.name) || [];
    list.push({t: now, d: data.delta});
    while (list.length && list[0].t < now - 300000) list.shift();
    S.rates.set(data.name, list);
  }
  if (kind === 'config') {
    const list = (S.configSeen.get(data.key) || []).filter((x) => x.t > now - 600000);
    list.push({t: now, value: data.value, origin: data.origin, time: data.time});
    S.configSeen.set(data.key, list.slice(-5));
  }
  for (const fn of S.listeners) {
    try { fn(kind, data); } catch (e) { console.error(e); }
  }
}

function setLive(state, text) {
  const el = $('live');
  el.className = 'live' + (state ? ' ' + state : '');
  el.textContent = text;
}

/* Runs fn at most once per ms (the last call wins), for refreshes that
 * many events in a row would each ask for. */
function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

/* -- session ---------------------------------------------------------------- */

async function signIn(ev) {
  ev.preventDefault();
  const input = $('api-key'), err = $('signin-error');
  err.textContent = '';
  try {
    const s = await api('POST', '/v1/sessions', {api_key: input.value.trim()});
    input.value = '';
    S.token = s.token;
    S.role = s.role;
    S.keyName = s.key_name;
    signedIn();
  } catch (e) {
    err.textContent = e.status === 401 ? 'That key is unknown or revoked.' : 'Sign-in failed: ' + e.message;
  }
}

function signedIn() {
  $('signin').hidden = true;
  $('page').hidden = false;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('nav-admin').hidden = S.role !== 'admin';
  $('who-text').textContent = S.keyName + ' (' + S.role + ')';
  S.watch = new Watch(onWatchEvent, () => render(), setLive);
  S.watch.start();
  if (!location.hash.startsWith('#/')) location.hash = '#/overview';
  else render();
}

function signedOut(message) {
  if (S.watch) S.watch.stop();
  S.watch = null;
  S.token = S.role = S.keyName = null;
  S.rates.clear();
  S.configSeen.clear();
  leavePage();
  put($('page'));
  $('page').hidden = true;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  document.title = 'Sign in · Jarvis';
  $('api-key').focus();
}

async function signOut() {
  /* The stream first, so that it never reconnects with the ended token. */
  if (S.watch) S.watch.stop();
  try { await api('DELETE', '/v1/sessions/current'); } catch (e) { /* ends anyway */ }
  signedOut('');
}

/* -- routing ---------------------------------------------------------------- */

const PAGES = {
  overview: {title: 'Overview', render: pageOverview},
  metrics: {title: 'Metrics', render: pageMetrics},
  audit: {title: 'Audit log', render: pageAudit},
  config: {title: 'Configuration', render: pageConfig},
  archive: {title: 'Archive', render: pageArchive},
  cluster: {title: 'Cluster', render: pageCluster},
  admin: {title: 'Admin', render: pageAdmin, admin: true},
};

function leavePage() {
  S.listeners.clear();
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
}

function every(ms, fn) { S.timers.push(setInterval(fn, ms)); }
function listen(fn) { S.listeners.add(fn); }

function render() {
  if (!S.token) return;
  const name = (location.hash.match(/^#\/([a-z]+)/) || [])[1] || 'overview';
  let page = PAGES[name] || PAGES.overview;
  if (page.admin && S.role !== 'admin') page = PAGES.overview;
  S.route = name;
  leavePage();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = page.title + ' · Jarvis';
  const root = $('page');
  const h1 = h('h1', {tabindex: -1}, page.title);
  const body = h('div', {});
  put(root, h1, body);
  page.render(body);
  h1.focus();
}

/* Loads data into a container, showing failures in place. */
async function load(el, fn) {
  try {
    await fn();
  } catch (e) {
    if (e.status === 401) return;
    const st = lists.get(el);
    if (st) st.json = null;
    put(el, h('p', {class: 'error', role: 'alert'}, 'Could not load: ' + e.message));
  }
}

/* A list reloaded on live events: GET path, pick the rows, render them
 * into el. Drawn only when the rows changed (a redraw pulls a row from
 * under the pointer and disarms a Revoke button waiting for its Confirm),
 * and never from an answer older than one already shown (loads overlap,
 * and answers may come back in any order). */
const lists = new WeakMap();

function loadList(el, path, pick, render) {
  if (!lists.has(el)) lists.set(el, {started: 0, applied: 0, json: null});
  const st = lists.get(el);
  const ticket = ++st.started;
  return load(el, async () => {
    const rows = pick(await api('GET', path));
    if (ticket < st.applied) return;
    st.applied = ticket;
    const json = JSON.stringify(rows);
    if (json === st.json) return;
    st.json = json;
    render(rows);
  });
}

const canWrite = () => S.role === 'writer' || S.role === 'admin';
const isAdmin = () => S.role === 'admin';

/* -- Overview --------------------------------------------------------------- */

function parseMetrics(text) {
  let reads = 0, writes = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('jarvis_requests_total{') && line.includes('method="GET"'))
      reads += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
    else if (line.startsWith('jarvis_writes_total{') && line.includes('outcome="ok"'))
      writes += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return {reads, writes, t: Date.now()};
}

function pageOverview(root) {
  const health = h('section', {class: 'card', 'aria-labelledby': 'ov-health'});
  const node = h('section', {class: 'card', 'aria-labelledby': 'ov-node'});
  const rates = h('section', {class: 'card', 'aria-labelledby': 'ov-rates'},
    h('h2', {id: 'ov-rates'}, 'Request rates'),
    h('dl', {class: 'kv'},
      h('dt', {}, 'Writes'), h('dd', {id: 'rate-writes'}, 'measuring…'),
      h('dt', {}, 'Reads'), h('dd', {id: 'rate-reads'}, 'measuring…')),
    h('p', {class: 'muted'}, 'Committed write requests and GET requests per second on this node, over the last 5 s (from /metrics).'));
  const vv = h('section', {class: 'card', 'aria-labelledby': 'ov-vv'});
  const comps = h('section', {class: 'card', 'aria-labelledby': 'ov-comps'});
  root.append(h('div', {class: 'grid'}, health, node, rates), comps, vv);

  const loadHealth = () => load(health, async () => {
    const r = await api('GET', '/v1/health');
    const rows = Object.entries(r.components || {}).map(([name, c]) =>
      h('tr', {}, h('th', {scope: 'row'}, name), h('td', {}, status(c.status)),
        h('td', {class: 'num'}, c.score), h('td', {}, c.reason)));
    put(health, 
      h('h2', {id: 'ov-health'}, 'Health'),
      h('p', {class: 'score', id: 'health-score'}, String(r.score), h('small', {}, ' / 100 ')),
      h('p', {}, 'Status: ', status(r.status)),
      h('label', {for: 'health-meter'}, 'Health score'),
      h('meter', {id: 'health-meter', min: 0, max: 100, low: 40, high: 80, optimum: 100, value: r.score}, String(r.score)));
    put(comps, h('h2', {id: 'ov-comps'}, 'Health components'),
      table('Health components', ['Component', 'Status', ['Score', 'num'], 'Reason'], rows));
  });
  const loadStatus = () => load(node, async () => {
    const s = await api('GET', '/v1/status');
    put(node, h('h2', {id: 'ov-node'}, 'This node'),
      h('dl', {class: 'kv'},
        h('dt', {}, 'Name'), h('dd', {id: 'node-name'}, s.name || '—'),
        h('dt', {}, 'Node id'), h('dd', {}, h('code', {id: 'node-id'}, s.node_id)),
        s.origin && s.origin !== s.node_id ? [h('dt', {}, 'Signs as'), h('dd', {}, h('code', {}, s.origin))] : null,
        h('dt', {}, 'Version'), h('dd', {}, s.version + ' (protocol ' + s.protocol_version + ')'),
        h('dt', {}, 'Uptime'), h('dd', {}, uptime(s.uptime_seconds)),
        h('dt', {}, 'Started'), h('dd', {}, s.started_at),
        h('dt', {}, 'Database'), h('dd', {}, (s.database_bytes / 1048576).toFixed(1) + ' MiB, ' +
          s.log.batches + ' batches, ' + s.log.operations + ' operations'),
        h('dt', {}, 'Held batches'), h('dd', {}, String(s.held_batches))));
    const rows = Object.entries(s.version_vector || {}).map(([id, seq]) =>
      h('tr', {}, h('td', {}, h('code', {}, id)), h('td', {}, id === s.node_id || id === s.origin ? 'this node' : 'peer'),
        h('td', {class: 'num'}, seq)));
    put(vv, h('h2', {id: 'ov-vv'}, 'Version vector'),
      h('p', {class: 'muted'}, 'The last operation applied here from each origin.'),
      table('Version vector', ['Origin', 'Node', ['Sequence', 'num']], rows));
  });
  let last = null;
  const sample = async () => {
    try {
      const r = await fetch('/metrics', {cache: 'no-store', credentials: 'omit'});
      const m = parseMetrics(await r.text());
      if (last && m.t > last.t) {
        const dt = (m.t - last.t) / 1000;
        $('rate-writes') && ($('rate-writes').textContent = ((m.writes - last.writes) / dt).toFixed(1) + ' /s');
        $('rate-reads') && ($('rate-reads').textContent = ((m.reads - last.reads) / dt).toFixed(1) + ' /s');
      }
      last = m;
    } catch (e) { /* next sample */ }
  };
  loadHealth();
  loadStatus();
  sample();
  every(5000, sample);
  every(15000, () => { loadHealth(); loadStatus(); });
  const refreshStatus = throttle(loadStatus, 1000);
  const refreshHealth = throttle(loadHealth, 1000);
  listen((kind) => {
    if (kind === 'node') refreshHealth();
    refreshStatus();
  });
}

/* -- Metrics ---------------------------------------------------------------- */

/* Rate per 10 s bucket over the last 5 minutes, from the stream's deltas. */
function sparkline(name) {
  const now = Date.now(), buckets = new Array(30).fill(0);
  for (const {t, d} of S.rates.get(name) || []) {
    const i = 29 - Math.floor((now - t) / 10000);
    if (i >= 0 && i < 30) buckets[i] += Math.abs(d) / 10;
  }
  const max = Math.max(...buckets, 0.1);
  const pts = buckets.map((v, i) => (i * 160 / 29).toFixed(1) + ',' + (30 - v / max * 28).toFixed(1)).join(' ');
  const last = buckets[29] + buckets[28];
  const el = svg('svg', {class: 'spark', viewBox: '0 0 160 32', role: 'img',
    'aria-label': 'Rate of ' + name + ' over the last 5 minutes: ' + (last / 2).toFixed(1) + ' per second now'});
  el.append(svg('line', {x1: 0, y1: 31, x2: 160, y2: 31}), svg('polyline', {points: pts}));
  return el;
}

function pageMetrics(root) {
  const prefixInput = h('input', {id: 'm-prefix', type: 'search', spellcheck: 'false'});
  const list = h('div', {});
  const more = h('button', {type: 'button', class: 'secondary', hidden: true}, 'Load more');
  root.append(searchForm('Counter name prefix', prefixInput, 'Show', () => reload()));
  root.append(h('section', {'aria-labelledby': 'm-list'}, h('h2', {id: 'm-list'}, 'Counters'),
    h('p', {class: 'muted'}, 'Totals across every node; the chart is the rate of changes seen live since this page was opened (10 s buckets, last 5 minutes).'),
    list, more));
  if (canWrite()) root.append(incrementForm(() => {}));
  const tbody = h('tbody', {});
  const rows = new Map();
  let cursor = null;

  const row = (c) => {
    const tr = h('tr', {'data-counter': c.name},
      h('th', {scope: 'row'}, h('code', {}, c.name)),
      h('td', {class: 'num total'}, String(c.total)),
      h('td', {class: 'chart'}, sparkline(c.name)));
    rows.set(c.name, tr);
    return tr;
  };
  const page = async (first) => {
    const q = new URLSearchParams({limit: '200'});
    if (prefixInput.value) q.set('prefix', prefixInput.value);
    if (!first && cursor) q.set('cursor', cursor);
    const r = await api('GET', '/v1/counters?' + q);
    if (first) {
      put(tbody);
      rows.clear();
    }
    for (const c of r.counters) tbody.append(row(c));
    cursor = r.next_cursor;
    more.hidden = !cursor;
    if (first) {
      put(list, h('div', {class: 'tablewrap', role: 'region', 'aria-label': 'Counters (table)', tabindex: 0},
        h('table', {}, h('caption', {class: 'vh'}, 'Counters'),
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col', class: 'num'}, 'Total'),
            h('th', {scope: 'col'}, 'Recent rate'))),
          tbody)));
      if (!r.counters.length) list.append(h('p', {class: 'muted'}, 'No counters yet.'));
    }
  };
  const reload = () => load(list, () => page(true));
  more.addEventListener('click', () => load(list, () => page(false)));
  const pending = new Set();
  const refreshTotals = throttle(async () => {
    const names = [...pending];
    pending.clear();
    for (const name of names) {
      try {
        const c = await api('GET', '/v1/counters/' + enc(name));
        const tr = rows.get(name);
        if (tr) tr.querySelector('.total').textContent = String(c.total);
        else if (name.startsWith(prefixInput.value)) tbody.append(row(c));
      } catch (e) { /* shown on the next reload */ }
    }
  }, 300);
  listen((kind, d) => {
    if (kind !== 'counter') return;
    pending.add(d.name);
    refreshTotals();
  });
  every(5000, () => {
    for (const [name, tr] of rows) put(tr.querySelector('.chart'), sparkline(name));
  });
  reload();
}

function incrementForm(done) {
  const msg = messageLine('notice'), err = messageLine('error');
  const name = h('input', {id: 'inc-name', required: true, spellcheck: 'false'});
  const by = h('input', {id: 'inc-by', type: 'number', value: '1', step: '1', required: true});
  return h('form', {class: 'card', 'aria-labelledby': 'inc-title', onsubmit: async (e) => {
    e.preventDefault();
    msg.textContent = err.textContent = '';
    try {
      const r = await api('POST', '/v1/counters/' + enc(name.value) + '/increment', {by: Number(by.value)});
      msg.textContent = r.name + ' is now ' + r.total + ' on this node.';
      done();
    } catch (x) { err.textContent = x.message; }
  }},
  h('h2', {id: 'inc-title'}, 'Increment a counter'),
  h('div', {class: 'row'}, h('div', {}, h('label', {for: 'inc-name'}, 'Name'), name),
    h('div', {}, h('label', {for: 'inc-by'}, 'By'), by)),
  h('button', {type: 'submit'}, 'Increment'), msg, err);
}

/* -- Audit ------------------------------------------------------------------ */

function pageAudit(root) {
  const f = {
    actor: h('input', {id: 'a-actor', spellcheck: 'false'}),
    action: h('input', {id: 'a-action', spellcheck: 'false'}),
    since: h('input', {id: 'a-since', type: 'datetime-local', step: '1'}),
    until: h('input', {id: 'a-until', type: 'datetime-local', step: '1'}),
  };
  const list = h('div', {});
  const pager = h('div', {class: 'row'});
  const info = h('p', {class: 'muted', role: 'status'});
  root.append(h('form', {class: 'card', role: 'search', 'aria-label': 'Audit filters',
    onsubmit: (e) => { e.preventDefault(); first(); }},
  h('div', {class: 'row'},
    h('div', {}, h('label', {for: 'a-actor'}, 'Actor (key name)'), f.actor),
    h('div', {}, h('label', {for: 'a-action'}, 'Action'), f.action),
    h('div', {}, h('label', {for: 'a-since'}, 'Since (local time)'), f.since),
    h('div', {}, h('label', {for: 'a-until'}, 'Until (local time)'), f.until)),
  h('button', {type: 'submit'}, 'Apply filters')),
  h('section', {'aria-labelledby': 'a-list'}, h('h2', {id: 'a-list'}, 'Entries, newest first'), info, list, pager));

  const tbody = h('tbody', {});
  const stack = []; // cursors of the pages before this one
  let cursor = null, next = null;
  const limit = 50;
  const entryRow = (e) => h('tr', {'data-id': e.id},
    h('td', {}, h('time', {datetime: e.time}, e.time)),
    h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)),
    h('td', {}, h('code', {}, e.target)), h('td', {}, e.detail),
    h('td', {}, h('code', {title: e.origin}, short(e.origin))));
  const query = () => {
    const q = new URLSearchParams({order: 'desc', limit: String(limit)});
    if (f.actor.value) q.set('actor', f.actor.value);
    if (f.action.value) q.set('action', f.action.value);
    if (f.since.value) q.set('since', new Date(f.since.value).toISOString());
    if (f.until.value) q.set('until', new Date(f.until.value).toISOString());
    if (cursor) q.set('cursor', cursor);
    return q;
  };
  const show = () => load(list, async () => {
    const r = await api('GET', '/v1/audit?' + query());
    next = r.next_cursor;
    put(tbody, ...r.entries.map(entryRow));
    put(list, h('div', {class: 'tablewrap', role: 'region', 'aria-label': 'Audit entries (table)', tabindex: 0},
      h('table', {}, h('caption', {class: 'vh'}, 'Audit entries'),
        h('thead', {}, h('tr', {}, ['Time', 'Actor', 'Action', 'Target', 'Detail', 'Origin'].map((x) => h('th', {scope: 'col'}, x)))),
        tbody)));
    info.textContent = (stack.length ? 'Page ' + (stack.length + 1) + '. ' : 'Live: new entries appear at the top. ') +
      r.entries.length + ' entries shown.';
    put(pager, 
      stack.length ? h('button', {type: 'button', class: 'secondary', onclick: first}, 'Newest') : null,
      stack.length ? h('button', {type: 'button', class: 'secondary', onclick: () => { cursor = stack.pop(); show(); }}, 'Newer') : null,
      next ? h('button', {type: 'button', class: 'secondary', onclick: () => { stack.push(cursor); cursor = next; show(); }}, 'Older') : null);
  });
  function first() { stack.length = 0; cursor = null; show(); }
  /* Live tail: on the first page, an entry that passes the filters goes on
   * top (the stream carries the same fields as GET /v1/audit). */
  listen((kind, d) => {
    if (kind !== 'audit' || stack.length) return;
    if ((f.actor.value && d.actor !== f.actor.value) || (f.action.value && d.action !== f.action.value)) return;
    const t = Date.parse(d.time);
    if (f.since.value && t < new Date(f.since.value).getTime()) return;
    if (f.until.value && t >= new Date(f.until.value).getTime()) return;
    tbody.prepend(entryRow({id: d.origin + ':' + d.seq, ...d}));
    while (tbody.children.length > limit) tbody.lastChild.remove();
  });
  first();
}

/* -- Configuration ---------------------------------------------------------- */

function pageConfig(root) {
  const prefix = h('input', {id: 'c-prefix', type: 'search', spellcheck: 'false'});
  const list = h('div', {});
  const more = h('button', {type: 'button', class: 'secondary', hidden: true}, 'Load more');
  root.append(searchForm('Key prefix', prefix, 'Show', () => reload()));
  root.append(h('section', {'aria-labelledby': 'c-list'}, h('h2', {id: 'c-list'}, 'Keys'),
    h('p', {class: 'muted'}, 'A key holds one value: the last write wins across nodes. Other writes of a key seen live in the last 10 minutes (overwritten, or concurrent and lost) are listed under the winner.'),
    list, more));
  let keyInput = null, valueInput = null;
  if (canWrite()) {
    const msg = messageLine('notice'), err = messageLine('error');
    keyInput = h('input', {id: 'c-key', required: true, spellcheck: 'false'});
    valueInput = h('textarea', {id: 'c-value', required: true, spellcheck: 'false', 'aria-describedby': 'c-value-help'});
    root.append(h('form', {class: 'card', 'aria-labelledby': 'c-edit', onsubmit: async (e) => {
      e.preventDefault();
      msg.textContent = err.textContent = '';
      let value;
      try { value = JSON.parse(valueInput.value); } catch (x) {
        err.textContent = 'The value is not JSON (write a text as "text", with quotes).';
        return;
      }
      try {
        const r = await api('PUT', '/v1/config/' + encKey(keyInput.value), {value});
        msg.textContent = 'Set ' + r.key + ' = ' + json(r.value) + '.';
        reload();
      } catch (x) { err.textContent = x.message; }
    }},
    h('h2', {id: 'c-edit'}, 'Set a value'),
    h('label', {for: 'c-key'}, 'Key'), keyInput,
    h('label', {for: 'c-value'}, 'Value (JSON)'), valueInput,
    h('p', {id: 'c-value-help', class: 'muted'}, 'Any JSON value: "text", 42, true, {"a": 1}.'),
    h('button', {type: 'submit'}, 'Save'), msg, err));
  }
  const tbody = h('tbody', {});
  let cursor = null;
  const row = (c) => {
    /* Writes seen on the stream that are not the winner: overwritten, or
     * concurrent with it and lost (the API keeps only the winner). */
    const lost = (S.configSeen.get(c.key) || []).filter((x) => !(x.origin === c.set_by && x.time === c.set_at));
    return h('tr', {'data-key': c.key},
      h('th', {scope: 'row'}, h('code', {}, c.key)),
      h('td', {}, h('code', {class: 'value'}, json(c.value)),
        lost.length ? h('p', {class: 'st-warn'}, 'Also written, did not win: ',
          lost.map((x) => json(x.value) + ' by ' + short(x.origin) + ' at ' + x.time).join('; ')) : null),
      h('td', {}, h('code', {title: c.set_by}, short(c.set_by))),
      h('td', {}, h('time', {datetime: c.set_at}, c.set_at)),
      keyInput ? h('td', {}, h('button', {type: 'button', class: 'secondary', 'aria-label': 'Edit ' + c.key,
        onclick: () => { keyInput.value = c.key; valueInput.value = json(c.value); valueInput.focus(); }}, 'Edit')) : null);
  };
  const page = async (firstPage) => {
    const q = new URLSearchParams({limit: '200'});
    if (prefix.value) q.set('prefix', prefix.value);
    if (!firstPage && cursor) q.set('cursor', cursor);
    const r = await api('GET', '/v1/config?' + q);
    if (firstPage) put(tbody);
    tbody.append(...r.config.map(row));
    cursor = r.next_cursor;
    more.hidden = !cursor;
    if (firstPage) {
      const heads = ['Key', 'Value', 'Set by', 'Set at'];
      if (keyInput) heads.push(h('span', {class: 'vh'}, 'Actions'));
      put(list, h('div', {class: 'tablewrap', role: 'region', 'aria-label': 'Configuration (table)', tabindex: 0},
        h('table', {}, h('caption', {class: 'vh'}, 'Configuration'),
          h('thead', {}, h('tr', {}, heads.map((x) => h('th', {scope: 'col'}, x)))), tbody)));
      if (!r.config.length) list.append(h('p', {class: 'muted'}, 'No keys.'));
    }
  };
  const reload = () => load(list, () => page(true));
  more.addEventListener('click', () => load(list, () => page(false)));
  const refresh = throttle(reload, 500);
  listen((kind, d) => { if (kind === 'config' && d.key.startsWith(prefix.value)) refresh(); });
  reload();
}

/* -- Archive ---------------------------------------------------------------- */

function pageArchive(root) {
  const prefix = h('input', {id: 'r-prefix', type: 'search', spellcheck: 'false'});
  const list = h('div', {});
  const detail = h('section', {class: 'card', 'aria-labelledby': 'r-detail', hidden: true});
  const more = h('button', {type: 'button', class: 'secondary', hidden: true}, 'Load more');
  root.append(searchForm('Key prefix', prefix, 'Browse', () => reload()));
  root.append(detail, h('section', {'aria-labelledby': 'r-list'}, h('h2', {id: 'r-list'}, 'Entries'), list, more));
  if (canWrite()) {
    const msg = messageLine('notice'), err = messageLine('error');
    const key = h('input', {id: 'r-key', required: true, spellcheck: 'false'});
    const value = h('textarea', {id: 'r-value', required: true, spellcheck: 'false'});
    root.append(h('form', {class: 'card', 'aria-labelledby': 'r-add', onsubmit: async (e) => {
      e.preventDefault();
      msg.textContent = err.textContent = '';
      let v;
      try { v = JSON.parse(value.value); } catch (x) { err.textContent = 'The value is not JSON.'; return; }
      try {
        const r = await api('PUT', '/v1/archive/' + encKey(key.value), {value: v});
        msg.textContent = 'Added ' + r.key + '.';
        reload();
      } catch (x) { err.textContent = x.message; }
    }}, h('h2', {id: 'r-add'}, 'Add an entry'),
    h('label', {for: 'r-key'}, 'Key'), key, h('label', {for: 'r-value'}, 'Value (JSON)'), value,
    h('button', {type: 'submit'}, 'Add'), msg, err));
  }
  const tbody = h('tbody', {});
  let cursor = null, shown = null;

  const view = (key) => load(detail, async () => {
    shown = key;
    const e = await api('GET', '/v1/archive/' + encKey(key));
    const err = messageLine('error');
    detail.hidden = false;
    put(detail, h('h2', {id: 'r-detail', tabindex: -1}, 'Entry ', h('code', {}, e.key)),
      h('dl', {class: 'kv'}, h('dt', {}, 'Latest value'), h('dd', {}, h('code', {}, json(e.value))),
        h('dt', {}, 'Added by'), h('dd', {}, h('code', {}, e.added_by)),
        h('dt', {}, 'Added at'), h('dd', {}, e.added_at),
        h('dt', {}, 'Values'), h('dd', {}, String(e.values) + (e.values > 1 ? ' (concurrent adds)' : ''))),
      table('Every value of ' + e.key, ['Value', 'Added by', 'Added at'], e.all.map((v) =>
        h('tr', {}, h('td', {}, h('code', {}, json(v.value))), h('td', {}, h('code', {title: v.added_by}, short(v.added_by))),
          h('td', {}, v.added_at)))),
      canWrite() ? h('button', {type: 'button', class: 'danger', onclick: async () => {
        try {
          await api('DELETE', '/v1/archive/' + encKey(e.key));
          detail.hidden = true;
          shown = null;
          reload();
        } catch (x) { err.textContent = x.message; }
      }}, 'Remove ' + e.key) : null, err);
    detail.querySelector('h2').focus();
  });
  const row = (e) => h('tr', {'data-key': e.key},
    h('th', {scope: 'row'}, h('button', {type: 'button', class: 'secondary', onclick: () => view(e.key)}, e.key)),
    h('td', {class: 'num'}, String(e.values)),
    h('td', {}, h('code', {}, json(e.value).slice(0, 120))),
    h('td', {}, e.added_at));
  const page = async (firstPage) => {
    const q = new URLSearchParams({limit: '100'});
    if (prefix.value) q.set('prefix', prefix.value);
    if (!firstPage && cursor) q.set('cursor', cursor);
    const r = await api('GET', '/v1/archive?' + q);
    if (firstPage) put(tbody);
    tbody.append(...r.entries.map(row));
    cursor = r.next_cursor;
    more.hidden = !cursor;
    if (firstPage) {
      put(list, h('div', {class: 'tablewrap', role: 'region', 'aria-label': 'Archive entries (table)', tabindex: 0},
        h('table', {}, h('caption', {class: 'vh'}, 'Archive entries (select a key to see all its values)'),
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Key'), h('th', {scope: 'col', class: 'num'}, 'Values'),
            h('th', {scope: 'col'}, 'Latest value'), h('th', {scope: 'col'}, 'Added at'))), tbody)));
      if (!r.entries.length) list.append(h('p', {class: 'muted'}, 'No entries.'));
    }
  };
  const reload = () => load(list, () => page(true));
  more.addEventListener('click', () => load(list, () => page(false)));
  const refresh = throttle(() => { reload(); if (shown) view(shown); }, 500);
  listen((kind, d) => { if (kind === 'archive' && d.key.startsWith(prefix.value)) refresh(); });
  reload();
}

/* -- Cluster ---------------------------------------------------------------- */

function pageCluster(root) {
  const members = h('section', {'aria-labelledby': 'cl-members'});
  const keys = h('section', {class: 'card', 'aria-labelledby': 'cl-keys'});
  const trust = h('section', {'aria-labelledby': 'cl-trust'});
  root.append(members, keys, trust);
  const loadAll = () => Promise.all([
    load(members, async () => {
      const c = await api('GET', '/v1/cluster');
      put(members, h('h2', {id: 'cl-members'}, 'Members'),
        h('p', {}, 'Converged: ', yesNo(c.converged), c.converged ? ' (every peer reachable, nothing missing either way)' : ''),
        table('Members and peers', ['Name', 'Node id', 'Address', 'Reachable', 'State', ['Lacks from us', 'num'],
          ['We lack', 'num'], 'Key', 'Sync'], c.members.map((m) =>
          h('tr', {'data-node': m.node_id || ''},
            h('th', {scope: 'row'}, (m.name || '—') + (m.self ? ' (this node)' : '')),
            h('td', {}, h('code', {title: m.node_id || ''}, m.node_id ? m.node_id.slice(0, 16) + '…' : '—')),
            h('td', {}, h('code', {}, m.address)),
            h('td', {}, yesNo(m.reachable)),
            h('td', {}, m.state, m.last_error ? h('span', {class: 'muted'}, ' (' + m.last_error + ')') : null),
            h('td', {class: 'num'}, numOrDash(m.lacks_from_us)),
            h('td', {class: 'num'}, numOrDash(m.we_lack)),
            h('td', {}, h('code', {}, m.key || '—')),
            h('td', {}, m.sync)))));
    }),
    load(keys, async () => {
      const s = await api('GET', '/v1/status');
      const ck = s.cluster_keys;
      put(keys, h('h2', {id: 'cl-keys'}, 'Cluster key fingerprints'),
        ck ? h('dl', {class: 'kv'}, h('dt', {}, 'Seals with'), h('dd', {}, h('code', {}, ck.send)),
          h('dt', {}, 'Opens'), h('dd', {}, h('code', {}, ck.accept.join(', '))))
          : h('p', {}, 'No cluster key: peer traffic is not sealed.'));
    }),
    load(trust, async () => {
      const t = await api('GET', '/v1/trust');
      put(trust, h('h2', {id: 'cl-trust'}, 'Trust list'),
        h('p', {class: 'muted'}, 'Batches of origins not trusted here are held aside.'),
        table('Trust list', ['Node id', 'Name', 'Trusted', 'Set at'], t.trust.map((e) =>
          h('tr', {}, h('td', {}, h('code', {}, e.node_id)), h('td', {}, e.name || '—'),
            h('td', {}, yesNo(e.trusted)), h('td', {}, e.stamp === 0 ? 'configured' : e.set_at)))));
    })]);
  loadAll();
  every(5000, loadAll);
  const refresh = throttle(loadAll, 1000);
  listen(() => refresh());
}

/* -- Admin ------------------------------------------------------------------ */

function pageAdmin(root) {
  const keys = h('section', {'aria-labelledby': 'ad-keys'});
  const sessions = h('section', {'aria-labelledby': 'ad-sessions'});
  const ops = h('div', {class: 'grid'});
  root.append(keyForm(() => loadKeys()), keys, sessionForm(() => loadSessions()), sessions, ops);

  const loadKeys = () => loadList(keys, '/v1/keys', (r) => r.keys, (rows) => {
    const err = messageLine('error');
    put(keys, h('h2', {id: 'ad-keys'}, 'API keys'),
      table('API keys', ['Name', 'Role', 'Scope', 'Id', 'Created', 'Revoked', ''], rows.map((k) =>
        h('tr', {'data-key-name': k.name},
          h('th', {scope: 'row'}, k.name), h('td', {}, k.role), h('td', {}, k.scope),
          h('td', {}, h('code', {}, k.id)), h('td', {}, k.created_at),
          h('td', {class: 'revoked'}, k.revoked_at || '—'),
          h('td', {}, k.revoked_at ? null : confirmButton('Revoke', 'Revoke key ' + k.name, async () => {
            try {
              await api('DELETE', '/v1/keys/' + enc(k.id) + (k.scope === 'cluster' ? '?scope=cluster' : ''));
              loadKeys();
              loadSessions();
            } catch (x) { err.textContent = x.message; }
          }))))), err);
  });
  const loadSessions = () => loadList(sessions, '/v1/sessions', (r) => r.sessions, (rows) => {
    const err = messageLine('error');
    put(sessions, h('h2', {id: 'ad-sessions'}, 'Sessions'),
      table('Active sessions', ['Key', 'Role', 'Id', 'Created', 'Expires', ''], rows.map((s) =>
        h('tr', {'data-session': s.id}, h('th', {scope: 'row'}, s.key_name), h('td', {}, s.role), h('td', {}, h('code', {}, s.id)),
          h('td', {}, s.created_at), h('td', {}, s.expires_at),
          h('td', {}, confirmButton('Revoke', 'Revoke session ' + s.id, async () => {
            try { await api('DELETE', '/v1/sessions/' + enc(s.id)); loadSessions(); } catch (x) { err.textContent = x.message; }
          }))))), err);
  });
  ops.append(backupForm(), verifyForm());
  loadKeys();
  loadSessions();
  listen((kind, d) => { if (kind === 'audit' && /^(key|session)\./.test(d.action)) { loadKeys(); loadSessions(); } });
}

/* A destructive button that asks once more, in place (no modal). */
function confirmButton(text, label, action) {
  const b = h('button', {type: 'button', class: 'danger', 'aria-label': label}, text);
  let armed = false;
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Confirm';
      b.setAttribute('aria-label', 'Confirm: ' + label);
      setTimeout(() => { armed = false; b.textContent = text; b.setAttribute('aria-label', label); }, 5000);
      return;
    }
    b.disabled = true;
    await action();
  });
  return b;
}

function keyForm(done) {
  const msg = messageLine('notice'), err = messageLine('error');
  const name = h('input', {id: 'k-name', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', spellcheck: 'false'});
  const role = h('select', {id: 'k-role'}, ['reader', 'writer', 'admin'].map((r) => h('option', {value: r}, r)));
  const scope = h('select', {id: 'k-scope'}, h('option', {value: 'node'}, 'this node'), h('option', {value: 'cluster'}, 'every node (cluster key)'));
  const secret = h('div', {});
  return h('form', {class: 'card', 'aria-labelledby': 'k-title', onsubmit: async (e) => {
    e.preventDefault();
    msg.textContent = err.textContent = '';
    put(secret);
    try {
      const k = await api('POST', '/v1/keys', {name: name.value, role: role.value, scope: scope.value});
      msg.textContent = 'Created key ' + k.name + ' (' + k.role + ').';
      put(secret, h('p', {class: 'secret'}, 'The key, shown only now: ', h('code', {id: 'new-key'}, k.key)));
      name.value = '';
      done();
    } catch (x) { err.textContent = x.message; }
  }},
  h('h2', {id: 'k-title'}, 'Create an API key'),
  h('div', {class: 'row'}, h('div', {}, h('label', {for: 'k-name'}, 'Name'), name),
    h('div', {}, h('label', {for: 'k-role'}, 'Role'), role),
    h('div', {}, h('label', {for: 'k-scope'}, 'Scope'), scope)),
  h('button', {type: 'submit'}, 'Create key'), msg, err, secret);
}

/* POST /v1/sessions for a key (a script's or a colleague's): the token is
 * shown once, as the API answers it. */
function sessionForm(done) {
  const msg = messageLine('notice'), err = messageLine('error');
  const key = h('input', {id: 's-key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false'});
  const ttl = h('input', {id: 's-ttl', type: 'number', min: 1, max: 604800, value: 3600, required: true});
  const secret = h('div', {});
  return h('form', {class: 'card', 'aria-labelledby': 's-title', onsubmit: async (e) => {
    e.preventDefault();
    msg.textContent = err.textContent = '';
    put(secret);
    try {
      const t = await api('POST', '/v1/sessions', {api_key: key.value.trim(), ttl_seconds: Number(ttl.value)});
      key.value = '';
      msg.textContent = 'Opened session ' + t.id + ' for ' + t.key_name + ' (' + t.role + '), until ' + t.expires_at + '.';
      put(secret, h('p', {class: 'secret'}, 'The token, shown only now: ', h('code', {id: 'new-token'}, t.token)));
      done();
    } catch (x) { err.textContent = x.status === 401 ? 'That key is unknown or revoked.' : x.message; }
  }},
  h('h2', {id: 's-title'}, 'Open a session'),
  h('div', {class: 'row'}, h('div', {}, h('label', {for: 's-key'}, 'API key'), key),
    h('div', {}, h('label', {for: 's-ttl'}, 'Lifetime (seconds)'), ttl)),
  h('button', {type: 'submit'}, 'Open session'), msg, err, secret);
}

/* What a backup/verify event's done and total count (docs/api.md). */
const PROGRESS_UNITS = {backup: 'pages', verify: 'steps'};

/* "running: 1,234 of 5,000 pages"; just the state while the total is not
 * known (0). */
function progressText(kind, d) {
  if (!d.total) return d.state;
  const n = (x) => Number(x || 0).toLocaleString('en-US');
  return d.state + ': ' + n(d.done) + ' of ' + n(d.total) + ' ' + (PROGRESS_UNITS[kind] || '');
}

/* A long request with its progress: the node's backup/verify events when
 * the stream has them (a determinate bar once the total is known), else an
 * indeterminate bar until the answer. */
function progressOp(kind, title, fields, run) {
  const prog = h('progress', {id: kind + '-progress', hidden: true, 'aria-label': title + ' progress'});
  const state = h('p', {role: 'status', class: 'muted'});
  const err = messageLine('error');
  const result = h('div', {});
  const button = h('button', {type: 'submit'}, title);
  listen((k, d) => {
    if (k !== 'node' || d.event !== kind || prog.hidden) return;
    if (d.total) { prog.max = d.total; prog.value = Math.min(d.done || 0, d.total); }
    else prog.removeAttribute('value');
    state.textContent = progressText(kind, d);
  });
  return h('form', {class: 'card', 'aria-labelledby': kind + '-title', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    put(result);
    prog.hidden = false;
    prog.removeAttribute('value');
    button.disabled = true;
    state.textContent = 'Running…';
    try {
      put(result, await run());
      state.textContent = 'Done.';
    } catch (x) {
      state.textContent = 'Failed.';
      err.textContent = x.message;
    }
    prog.hidden = true;
    button.disabled = false;
  }}, h('h2', {id: kind + '-title'}, title), fields, button, prog, state, err, result);
}

function backupForm() {
  const path = h('input', {id: 'b-path', required: true, spellcheck: 'false', value: 'jarvis-' + new Date().toISOString().slice(0, 10) + '.db'});
  const pass = h('input', {id: 'b-pass', type: 'password', autocomplete: 'new-password', minlength: 8});
  return progressOp('backup', 'Back up', [
    h('label', {for: 'b-path'}, 'File (in the node\'s backup dir)'), path,
    h('label', {for: 'b-pass'}, 'Passphrase (optional: encrypts the copy)'), pass], async () => {
    const body = {path: path.value};
    if (pass.value) body.passphrase = pass.value;
    const r = await api('POST', '/v1/backup', body);
    pass.value = '';
    return h('dl', {class: 'kv'}, h('dt', {}, 'Written'), h('dd', {}, h('code', {}, r.path)),
      h('dt', {}, 'Bytes'), h('dd', {}, String(r.bytes)), r.encrypted ? [h('dt', {}, 'Encrypted'), h('dd', {}, r.encrypted)] : null);
  });
}

function verifyForm() {
  return progressOp('verify', 'Verify', [h('p', {class: 'muted'},
    'Checks the database: integrity, every signature and link of the log, the version vector and the state against a replay.')], async () => {
    const r = await api('POST', '/v1/verify');
    return h('dl', {class: 'kv', id: 'verify-result'},
      h('dt', {}, 'Result'), h('dd', {}, status(r.ok ? 'ok' : 'bad'), r.ok ? ' all checks pass' : ' problems found'),
      h('dt', {}, 'Integrity'), h('dd', {}, r.integrity),
      h('dt', {}, 'Batches / operations'), h('dd', {}, r.batches + ' / ' + r.ops),
      h('dt', {}, 'Bad signatures / links / encodings'), h('dd', {}, r.bad_signatures + ' / ' + r.bad_links + ' / ' + r.bad_encodings),
      h('dt', {}, 'Vector / state match'), h('dd', {}, boolText(r.vv_matches) + ' / ' + boolText(r.state_matches)),
      r.detail ? [h('dt', {}, 'Detail'), h('dd', {}, r.detail)] : null);
  });
}

/* -- start ------------------------------------------------------------------ */

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  /* Only "#/page" links route; "#main" (the skip link) is left to the
   * browser, which moves focus there. */
  window.addEventListener('hashchange', () => { if (location.hash.startsWith('#/')) render(); });
  document.title = 'Sign in · Jarvis';
  $('api-key').focus();
});
