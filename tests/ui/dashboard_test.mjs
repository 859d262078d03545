// The dashboard in a real headless Chromium against a real cluster of two
// jarvisd processes (started by ui_browser_test.c, which passes their
// addresses and admin keys in the environment).
//
// Every check is a real assertion; a failed check is reported and the run
// goes on (so that one failure does not hide the others), and the exit
// status is 1 if any failed. The live checks wait for the change to show on
// the page without any reload: they need GET /v1/watch.
//
// Screenshots of every page at 1366x768 and 390x844 go to $JV_UI_SHOTS;
// axe-core runs on every page at both sizes and fails on serious or
// critical violations.
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const env = (k) => {
  if (!process.env[k]) throw new Error('missing ' + k);
  return process.env[k];
};
const A = env('JV_UI_URL_A'), B = env('JV_UI_URL_B');
const ADMIN_A = env('JV_UI_ADMIN_A'), ADMIN_B = env('JV_UI_ADMIN_B');
const SHOTS = env('JV_UI_SHOTS');
const CHROMIUM = process.env.JV_UI_CHROMIUM || '/usr/bin/chromium';
const LIVE_MS = 30000; // a change on another node shows within this
const SIZES = [[1366, 768], [390, 844]];
fs.mkdirSync(SHOTS, {recursive: true});

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function call(base, key, method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: {Authorization: 'Bearer ' + key, ...(body ? {'Content-Type': 'application/json'} : {})},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : null};
}

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
});
const page = await browser.newPage();
await page.setViewport({width: 1366, height: 768});
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
// The browser logs every answer >= 400 as a console error: those are
// checked by URL below, every other console error is a problem.
page.on('console', (m) => {
  if (m.type() === 'error' && !/^Failed to load resource/.test(m.text()))
    problems.push('console: ' + m.text());
});
// Answers >= 400 the scenario expects: the wrong key's sign-in, and (until
// the node has the change stream) GET /v1/watch.
page.on('response', (r) => {
  const u = new URL(r.url()), req = r.request();
  if (r.status() < 400) return;
  if (u.pathname === '/v1/sessions' && req.method() === 'POST' && r.status() === 401 && !signedInOnce) return;
  if (u.pathname === '/v1/watch' && r.status() === 404) return;
  problems.push(`${req.method()} ${u.pathname}: ${r.status()}`);
});
let signedInOnce = false;
// CSP violations are reported to the page: collect them.
await page.evaluateOnNewDocument(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
});
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const text = (sel) => page.$eval(sel, (e) => e.textContent);
const waitText = (sel, re, timeout = 10000) => page.waitForFunction(
  (s, src) => { const e = document.querySelector(s); return e && new RegExp(src).test(e.textContent); },
  {timeout, polling: 100}, sel, re.source);

async function go(name) {
  await page.evaluate((n) => { location.hash = '#/' + n; }, name);
  await page.waitForFunction((n) => location.hash === '#/' + n && document.querySelector('#page h1'), {timeout: 10000}, name);
  // Give the page's first requests time to land (polls the DOM, no sleep).
  await page.waitForNetworkIdle({idleTime: 300, timeout: 10000}).catch(() => {});
}

async function axeCheck(label) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, {resultTypes: ['violations']});
    return res.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
      target: v.nodes[0] && v.nodes[0].target.join(' ')}));
  });
  const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of r) console.log(`     axe ${label}: ${v.impact} ${v.id} (${v.nodes}x, ${v.target}): ${v.help}`);
  assert(bad.length === 0, `${label}: ${bad.length} serious/critical accessibility violations: ` +
    bad.map((v) => v.id).join(', '));
}

async function shootAndAxe(name) {
  for (const [w, hgt] of SIZES) {
    await page.setViewport({width: w, height: hgt});
    await page.waitForNetworkIdle({idleTime: 200, timeout: 5000}).catch(() => {});
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({path: path.join(SHOTS, `${name}-${w}x${hgt}.png`), fullPage: false});
    await check(`accessibility of ${name} at ${w}x${hgt}`, () => axeCheck(`${name} ${w}x${hgt}`));
  }
  await page.setViewport({width: 1366, height: 768});
}

async function signIn(key) {
  await page.waitForSelector('#api-key', {visible: true});
  await page.click('#api-key', {clickCount: 3});
  await page.type('#api-key', key);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nav', {visible: true, timeout: 10000});
  await page.waitForFunction(() => document.querySelector('#page h1'), {timeout: 10000});
}

const statusA = (await call(A, ADMIN_A, 'GET', '/v1/status')).body;
const statusB = (await call(B, ADMIN_B, 'GET', '/v1/status')).body;
// Keys the scenario uses: a reader, and a writer the admin will revoke.
const reader = (await call(A, ADMIN_A, 'POST', '/v1/keys', {name: 'ui-reader', role: 'reader'})).body;
const victim = (await call(A, ADMIN_A, 'POST', '/v1/keys', {name: 'ui-victim', role: 'writer'})).body;
assert(reader && reader.key && victim && victim.key, 'could not create the test keys');
// A counter both nodes know before the page opens.
await call(A, ADMIN_A, 'POST', '/v1/counters/ui.clicks/increment', {by: 2});
for (const t0 = Date.now(); ;) {
  const c = await call(B, ADMIN_B, 'GET', '/v1/counters/ui.clicks');
  if (c.status === 200 && c.body.total === 2) break;
  assert(Date.now() - t0 < LIVE_MS, 'the counter did not replicate to B');
  await new Promise((r) => setTimeout(r, 100));
}

await page.goto(A + '/', {waitUntil: 'networkidle0'});

await check('the page is served with a strict CSP', async () => {
  const r = await fetch(A + '/');
  const csp = r.headers.get('content-security-policy') || '';
  assert(/default-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp) && !/unsafe-inline/.test(csp), 'CSP: ' + csp);
  assert(r.headers.get('x-content-type-options') === 'nosniff', 'nosniff');
});
await shootAndAxe('signin');

await check('a wrong key is refused with a message', async () => {
  await page.type('#api-key', 'jvk_not_a_key');
  await page.keyboard.press('Enter');
  await waitText('#signin-error', /unknown or revoked/);
  for (const sel of ['#nav', '#who', '#signout', '#page'])
    assert(!(await page.$eval(sel, (e) => e.checkVisibility())), sel + ' visible without a session');
});

await check('sign in as admin with the keyboard', async () => {
  signedInOnce = true;
  await signIn(ADMIN_A);
  assert(!(await page.$eval('#signin', (e) => e.checkVisibility())), 'the sign-in form is still visible');
  assert((await text('#who-text')).includes('(admin)'), 'who: ' + (await text('#who-text')));
  assert(await page.$eval('#nav-admin', (e) => e.checkVisibility()), 'no Admin link for an admin');
});

await check('keyboard: skip link, then the navigation by Tab and Enter', async () => {
  // After sign-in the focus is on the page's heading; the skip link is the
  // first stop of the page, so Shift+Tab walks back to it through the
  // header (sign-out button, navigation).
  let active = '', seen = [];
  for (let i = 0; i < 20 && active !== 'Skip to content'; i++) {
    await page.keyboard.down('Shift');
    await page.keyboard.press('Tab');
    await page.keyboard.up('Shift');
    active = await page.evaluate(() => document.activeElement.textContent.trim());
    seen.push(active);
  }
  assert(active === 'Skip to content', 'Shift+Tab never reached the skip link: ' + seen.join(' | '));
  assert(seen.includes('Sign out') && seen.includes('Cluster'), 'the header was not on the way: ' + seen.join(' | '));
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert(outline !== 'none', 'no visible focus on the skip link');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'main', {timeout: 5000});
  // From the skip link forward through the navigation to "Metrics".
  await page.evaluate(() => document.querySelector('.skip').focus());
  for (let i = 0; i < 15 && active !== 'Metrics'; i++) {
    await page.keyboard.press('Tab');
    active = await page.evaluate(() => document.activeElement.textContent.trim());
  }
  assert(active === 'Metrics', 'Tab never reached the Metrics link');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/metrics', {timeout: 5000});
  await waitText('#page h1', /^Metrics$/);
  assert(await page.evaluate(() => document.activeElement.tagName === 'H1'), 'focus not moved to the page heading');
});

await go('overview');
await check('overview: health score, components, node id, version vector', async () => {
  await waitText('#health-score', /^\d+/);
  const score = parseInt(await text('#health-score'), 10);
  assert(score >= 0 && score <= 100, 'score ' + score);
  await page.waitForSelector('#node-id');
  assert((await text('#node-id')) === statusA.node_id, 'node id differs');
  const body = await text('#page');
  for (const c of ['storage', 'replication', 'clock']) assert(body.includes(c), 'component missing: ' + c);
  assert(body.includes(statusB.node_id), "the version vector lacks B's origin");
  await waitText('#rate-writes', /\/s$/, 15000);
});
await shootAndAxe('overview');

await go('metrics');
await check('metrics: the counter with its total and a chart', async () => {
  await waitText('tr[data-counter="ui.clicks"] .total', /^2$/);
  assert(await page.$('tr[data-counter="ui.clicks"] svg.spark'), 'no chart');
});
await check('live: a counter changes on the page when the other node increments it', async () => {
  const r = await call(B, ADMIN_B, 'POST', '/v1/counters/ui.clicks/increment', {by: 5});
  assert(r.status === 200, 'increment on B: ' + r.status);
  await waitText('tr[data-counter="ui.clicks"] .total', /^7$/, LIVE_MS);
});
await shootAndAxe('metrics');

const hostile = '<img src=x id=pwned>"\'&';
await go('config');
await check('config: set a value with the form; the answer is shown as text', async () => {
  await page.type('#c-key', 'ui/greeting');
  await page.type('#c-value', JSON.stringify(hostile));
  await page.click('form[aria-labelledby="c-edit"] button[type="submit"]');
  await waitText('tr[data-key="ui/greeting"] .value', /pwned/);
  assert((await text('tr[data-key="ui/greeting"] .value')) === JSON.stringify(hostile), 'value shown differs');
  assert(!(await page.$('#pwned')), 'user data was parsed as HTML');
  const g = await call(A, ADMIN_A, 'GET', '/v1/config/ui/greeting');
  assert(g.status === 200 && g.body.value === hostile, 'the API does not hold the value');
});
await shootAndAxe('config');

await go('audit');
await check('audit: the config.set entry of the form, by filter', async () => {
  await page.type('#a-action', 'config.set');
  await page.click('form[aria-label="Audit filters"] button[type="submit"]');
  // The unfiltered page already shows the ui/greeting entry, so wait for the
  // filtered answer itself: only config.set rows, that entry among them.
  const filtered = () => {
    const trs = [...document.querySelectorAll('#page tbody tr')];
    return trs.length > 0 && trs.every((t) => t.children[2].textContent === 'config.set') &&
      trs.some((t) => t.textContent.includes('ui/greeting'));
  };
  const shown = await page.waitForFunction(filtered, {timeout: 10000}).then(() => true, () => false);
  const rows = await page.$$eval('#page tbody tr', (trs) => trs.map((t) => t.children[2].textContent));
  assert(shown, 'filter let through or lost the entry: ' + rows.join(','));
});
await check('live: an audit entry appears when the other node sets a config value', async () => {
  const r = await call(B, ADMIN_B, 'PUT', '/v1/config/ui/live', {value: 42});
  assert(r.status === 200, 'config set on B: ' + r.status);
  await page.waitForFunction(() => [...document.querySelectorAll('#page tbody tr')].some((tr) => tr.textContent.includes('ui/live')),
    {timeout: LIVE_MS, polling: 100});
});
await page.evaluate(() => { document.querySelector('#a-action').value = ''; });
await page.click('form[aria-label="Audit filters"] button[type="submit"]');
await shootAndAxe('audit');

await go('archive');
await check('archive: add an entry, browse by prefix, view its values', async () => {
  await page.type('#r-key', 'reports/ui-1');
  await page.type('#r-value', '{"rows":12,"note":"<script>x</script>"}');
  await page.click('form[aria-labelledby="r-add"] button[type="submit"]');
  await page.waitForSelector('tr[data-key="reports/ui-1"] button', {timeout: 10000});
  await page.type('#r-prefix', 'reports/');
  await page.click('form[role="search"] button[type="submit"]');
  // The row is shown before the search too: wait for the searched list itself.
  await page.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#page tr[data-key]')];
    return trs.every((t) => t.dataset.key.startsWith('reports/')) &&
      document.querySelector('tr[data-key="reports/ui-1"] button');
  }, {timeout: 10000});
  // The list is drawn again as the live stream brings the add: a button
  // found before that is gone by the time it is clicked. Click the one in
  // the page now, until the entry's detail shows.
  await page.waitForFunction(() => {
    const detail = document.querySelector('#r-detail');
    if (detail && /reports\/ui-1/.test(detail.textContent)) return true;
    const b = document.querySelector('tr[data-key="reports/ui-1"] button');
    if (b) b.click();
    return false;
  }, {timeout: 10000, polling: 250});
  const d = await text('section[aria-labelledby="r-detail"]');
  assert(d.includes('"rows":12') && d.includes('<script>x</script>'), 'entry detail: ' + d.slice(0, 200));
});
await shootAndAxe('archive');

await go('cluster');
await check('cluster: both members, B reachable, fingerprints, trust list', async () => {
  await page.waitForFunction((id) => {
    const tr = document.querySelector(`tr[data-node="${id}"]`);
    return tr && /yes/.test(tr.children[3].textContent);
  }, {timeout: LIVE_MS}, statusB.node_id);
  assert(await page.$(`tr[data-node="${statusA.node_id}"]`), 'this node missing');
  const body = await text('#page');
  assert(statusA.cluster_keys && body.includes(statusA.cluster_keys.send), 'fingerprint missing');
  assert(body.includes('Trust list') && body.includes(statusB.node_id), 'trust list');
});
await shootAndAxe('cluster');

await go('admin');
await check('admin: revoke a key (two-step button); the API refuses it afterwards', async () => {
  const sel = 'tr[data-key-name="ui-victim"] button.danger';
  await page.waitForSelector(sel, {timeout: 10000});
  await page.click(sel);
  await waitText(sel, /Confirm/);
  await page.click(sel);
  await page.waitForFunction(() => {
    const td = document.querySelector('tr[data-key-name="ui-victim"] .revoked');
    return td && /^\d{4}-/.test(td.textContent);
  }, {timeout: 10000});
  const s = await fetch(A + '/v1/sessions', {method: 'POST', body: JSON.stringify({api_key: victim.key})});
  assert(s.status === 401, 'revoked key still opens a session: ' + s.status);
});
await check('admin: create a key; it is shown once and works', async () => {
  await page.type('#k-name', 'ui-made');
  await page.select('#k-role', 'reader');
  await page.click('form[aria-labelledby="k-title"] button[type="submit"]');
  await page.waitForSelector('#new-key', {timeout: 10000});
  const key = await text('#new-key');
  const s = await fetch(A + '/v1/sessions', {method: 'POST', body: JSON.stringify({api_key: key})});
  assert(s.status === 201, 'new key refused: ' + s.status);
});
await check('admin: open a session for a key, then revoke it', async () => {
  await page.type('#s-key', reader.key);
  await page.click('form[aria-labelledby="s-title"] button[type="submit"]');
  await page.waitForSelector('#new-token', {timeout: 10000});
  const token = await text('#new-token');
  assert((await call(A, token, 'GET', '/v1/status')).status === 200, 'the new session does not work');
  const list = (await call(A, ADMIN_A, 'GET', '/v1/sessions')).body.sessions.filter((x) => x.key_name === 'ui-reader');
  assert(list.length === 1, 'sessions of ui-reader: ' + list.length);
  const sel = `tr[data-session="${list[0].id}"] button.danger`;
  await page.waitForSelector(sel, {timeout: 10000});
  await page.click(sel);
  await waitText(sel, /Confirm/);
  await page.click(sel);
  await page.waitForFunction((id) => !document.querySelector(`tr[data-session="${id}"]`), {timeout: 10000}, list[0].id);
  assert((await call(A, token, 'GET', '/v1/status')).status === 401, 'the revoked session still works');
});
await check('admin: a live event that changes no list redraws none', async () => {
  /* Two events: an audit entry that names sessions but changes none, then
   * a new session. However their reloads interleave, the session table
   * must be drawn once: with the new row, never again for nothing, never
   * with an older answer after a newer one. */
  await page.evaluate(() => {
    window.redraws = 0;
    const sec = document.querySelector('section[aria-labelledby="ad-sessions"]');
    new MutationObserver(() => { window.redraws++; }).observe(sec, {childList: true});
  });
  const rows = await page.evaluate(() => document.querySelectorAll('tr[data-session]').length);
  const a = await call(A, ADMIN_A, 'POST', '/v1/audit', {action: 'session.note', target: 'ui-test'});
  assert(a.status === 201, 'audit entry: ' + a.status);
  const s = await fetch(A + '/v1/sessions', {method: 'POST', body: JSON.stringify({api_key: reader.key})});
  assert(s.status === 201, 'session: ' + s.status);
  const id = (await s.json()).id;
  await page.waitForSelector(`tr[data-session="${id}"]`, {timeout: 10000});
  const r = await page.evaluate(() => [window.redraws, document.querySelectorAll('tr[data-session]').length]);
  assert(r[1] === rows + 1, 'rows: ' + rows + ' then ' + r[1]);
  assert(r[0] === 1, 'the session table was drawn ' + r[0] + ' times');
});
await check('admin: verify and backup with their progress and results', async () => {
  await page.click('form[aria-labelledby="verify-title"] button[type="submit"]');
  await waitText('#verify-result', /all checks pass/, 60000);
  await page.click('form[aria-labelledby="backup-title"] button[type="submit"]');
  await page.waitForFunction(() => /Written/.test(document.querySelector('form[aria-labelledby="backup-title"]').textContent),
    {timeout: 60000});
});
await shootAndAxe('admin');
await check('admin: a progress event makes the bar determinate and says its unit', async () => {
  /* The events of the run above may come after its answer (then the bar is
   * gone): feed the page's handlers the events the node sends. */
  const r = await page.evaluate(() => {
    const prog = document.getElementById('backup-progress');
    const state = document.querySelector('form[aria-labelledby="backup-title"] p.muted[role="status"]');
    const send = (d) => { for (const fn of S.listeners) fn('node', Object.assign({kind: 'node', event: 'backup'}, d)); };
    prog.hidden = false;
    prog.removeAttribute('value');
    send({state: 'running', done: 0, total: 0});
    const before = [prog.hasAttribute('value'), state.textContent];
    send({state: 'running', done: 1234, total: 5000});
    const after = [prog.hasAttribute('value'), prog.value, prog.max, state.textContent];
    prog.hidden = true;
    return {before, after, verify: progressText('verify', {state: 'running', done: 7, total: 1013})};
  });
  assert(!r.before[0] && r.before[1] === 'running', 'before the total: ' + JSON.stringify(r.before));
  assert(r.after[0] && r.after[1] === 1234 && r.after[2] === 5000, 'bar: ' + JSON.stringify(r.after));
  assert(r.after[3] === 'running: 1,234 of 5,000 pages', 'text: ' + r.after[3]);
  assert(r.verify === 'running: 7 of 1,013 steps', 'verify text: ' + r.verify);
});

await check('sign out ends the session on the node', async () => {
  await page.click('#signout');
  await page.waitForSelector('#signin', {visible: true});
  for (const sel of ['#nav', '#who', '#page'])
    assert(!(await page.$eval(sel, (e) => e.checkVisibility())), sel + ' still visible after sign-out');
  const sessions = await call(A, ADMIN_A, 'GET', '/v1/sessions');
  const names = sessions.body.sessions.map((s) => s.key_name);
  assert(!names.includes('admin'), 'the admin session is still active: ' + names.join(','));
});

await check('reader: signs in and sees no write controls on any page', async () => {
  await signIn(reader.key);
  assert(!(await page.$eval('#nav-admin', (e) => e.checkVisibility())), 'Admin link shown to a reader');
  for (const name of ['overview', 'metrics', 'audit', 'config', 'archive', 'cluster']) {
    await go(name);
    const writes = await page.evaluate(() => {
      const ids = ['inc-name', 'c-key', 'c-value', 'r-key', 'r-value', 'k-name', 'b-path'];
      const found = ids.filter((id) => document.getElementById(id));
      const buttons = [...document.querySelectorAll('#page button')].map((b) => b.textContent.trim())
        .filter((t) => /^(Save|Add|Increment|Revoke|Remove|Edit|Create key|Back up|Verify|Confirm)/.test(t));
      return found.concat(buttons);
    });
    assert(writes.length === 0, `${name}: write controls shown to a reader: ${writes.join(', ')}`);
  }
  await page.evaluate(() => { location.hash = '#/admin'; });
  await waitText('#page h1', /^Overview$/);
});
await shootAndAxe('reader-overview');

await check('no script errors and no CSP violations on any page', async () => {
  const csp = await page.evaluate(() => window.__csp);
  assert(csp.length === 0, 'CSP violations: ' + csp.join('; '));
  assert(problems.length === 0, problems.join('; '));
});

await browser.close();
const failed = results.filter((r) => !r[1]).length;
console.log(`\nscreenshots: ${SHOTS}`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
