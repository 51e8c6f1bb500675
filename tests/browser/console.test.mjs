// The riverlog web console in a real headless browser: Debian's `chromium`
// driven by playwright-core. Each test starts its own riverlog server (the
// console assets embedded in the binary, unless RIVERLOG_CONSOLE_DIR points
// at a folder to serve them from while working on them) and checks that the
// console loads with no console errors, lists a stream the test created,
// shows a freshly published event in the live tail within 2 s, shows the
// stream's groups, and that its publish form appends an event that the test
// then reads back over gRPC with `riverlog tail`; and that a page opened
// after some publishes charts the past hour (throughput, group backlog)
// from the server's history, shortens long names and reverse-DNS types in
// the middle with the full text on hover, highlights the selected event
// row, and writes every time in one 24-hour format. Run it with ./run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.RIVERLOG_BIN || '/tmp/riverlog-bin2/riverlog';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CONSOLE_DIR = process.env.RIVERLOG_CONSOLE_DIR ? resolve(process.env.RIVERLOG_CONSOLE_DIR) : '';
const OUTPUT = resolve(process.env.OUTPUT_DIR || join(HERE, 'output'));
const LIVE_TAIL_BUDGET_MS = 2000;

let browser;
const servers = [];
const scratch = mkdtempSync(join(tmpdir(), 'riverlog-browser-'));

// ------------------------------------------------------------ riverlog

/** The environment for riverlog processes: none of the caller's RIVERLOG_* settings. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RIVERLOG_')) env[k] = v;
  return { ...env, ...extra };
}

/** Starts `riverlog serve` on free ports; resolves to {grpc, http, stop}. */
async function startServer(name, { config } = {}) {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  const args = ['serve', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--database-url', `sqlite://${join(dir, 'riverlog.db')}`];
  if (config) {
    const file = join(dir, 'riverlog.toml');
    writeFileSync(file, config);
    args.push('--config', file);
  }
  if (CONSOLE_DIR) args.push('--console-dir', CONSOLE_DIR);
  const child = spawn(BIN, args, { env: cleanEnv({ NO_COLOR: '1' }), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const ready = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`riverlog did not start in 20 s:\n${log}`)), 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      // eslint-disable-next-line no-control-regex
      const m = log.replace(/\x1b\[[0-9;]*m/g, '').match(/grpc=(\S+) http=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolveReady({ grpc: `http://${m[1]}`, http: `http://${m[2]}` });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`riverlog exited with ${code} before it was ready:\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  const server = {
    ...ready,
    log: () => log,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
  servers.push(server);
  return server;
}

/** Runs the riverlog CLI; resolves to its stdout. */
function cli(args, { token, input } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = execFile(BIN, args, { env: cleanEnv(token ? { RIVERLOG_TOKEN: token } : {}), timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`riverlog ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolveRun(stdout);
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

async function httpJson(server, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(server.http + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Every event of a stream, read over gRPC. */
async function readOverGrpc(server, stream, token) {
  const out = await cli(['tail', stream, '--from', 'earliest', '--no-follow', '--json', '--server', server.grpc], { token });
  return out.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

// ------------------------------------------------------------ browser

before(async () => {
  assert.ok(existsSync(BIN), `no riverlog binary at ${BIN} (set RIVERLOG_BIN)`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  mkdirSync(OUTPUT, { recursive: true });
  console.log(`# riverlog: ${BIN}; console assets: ${CONSOLE_DIR ? `from ${CONSOLE_DIR} (--console-dir)` : 'embedded in the binary'}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

/** A page at 1440x900 that records console errors and uncaught exceptions. */
async function openPage({ locale } = {}) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark', locale });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'assert') problems.push({ kind: 'console', text: m.text(), at: Date.now() });
  });
  page.on('pageerror', (e) => problems.push({ kind: 'pageerror', text: String(e && e.stack ? e.stack : e), at: Date.now() }));
  page.on('crash', () => problems.push({ kind: 'crash', text: 'the page crashed', at: Date.now() }));
  return { context, page, problems };
}

const shot = (page, name) => page.screenshot({ path: join(OUTPUT, `${name}.png`) });
const row = (stream) => `[data-testid="stream-row"][data-stream="${stream}"]`;

/**
 * The flow both tests share, on a page already showing the console (signed
 * in if the server wants a token).
 */
async function consoleFlow({ page, server, token, stream, group, label }) {
  // The stream the test created is listed, with its event count.
  await page.locator(row(stream)).waitFor({ timeout: 10000 });
  await page.locator(`${row(stream)} [data-testid="stream-count"][data-value="3"]`).waitFor({ timeout: 10000 });

  // Its detail: recent events (the JSON viewer shows the newest) and groups.
  await page.locator(row(stream)).click();
  await page.locator('[data-testid="detail-name"]', { hasText: stream }).waitFor();
  await page.locator('[data-testid="event-row"]').first().waitFor();
  assert.equal(await page.locator('[data-testid="event-row"]').count(), 3);
  await page.locator('[data-testid="event-row"][data-sequence="2"]').click();
  await page.locator('[data-testid="json-body"]', { hasText: '"seeded": 2' }).waitFor();
  const groupRow = page.locator(`[data-testid="group-row"][data-group="${group}"]`);
  await groupRow.waitFor();
  assert.equal(await groupRow.locator('[data-testid="group-lag"]').getAttribute('data-value'), '3');
  assert.equal(await groupRow.locator('[data-testid="group-pending"]').getAttribute('data-value'), '0');
  assert.equal(await groupRow.locator('[data-testid="group-dead-letters"]').getAttribute('data-value'), '0');

  // Seek: the group's cursor moves past the last event; its lag drops to 0.
  await groupRow.locator('[data-testid="group-seek-toggle"]').click();
  await page.locator('[data-testid="group-seek-to"]').fill('latest');
  await page.locator('[data-testid="group-seek-go"]').click();
  await page.locator('[data-testid="toast"]', { hasText: `${group} goes on after #3` }).waitFor({ timeout: 5000 });
  await page.locator(`[data-testid="group-row"][data-group="${group}"] [data-testid="group-lag"][data-value="0"]`).waitFor({ timeout: 5000 });

  // Redrive: the seeded group "retry" dead-lettered its three events (one
  // delivery allowed, never acked); the button gives them back.
  const retry = '[data-testid="group-row"][data-group="retry"]';
  await page.locator(`${retry} [data-testid="group-dead-letters"][data-value="3"]`).waitFor({ timeout: 15000 });
  await shot(page, `${label}-dead-letters`);
  await page.locator(`${retry} [data-testid="group-redrive"]`).click();
  await page.locator('[data-testid="toast"]', { hasText: 'Redrove 3 dead letters to retry' }).waitFor({ timeout: 5000 });
  await page.locator(`${retry} [data-testid="group-pending"][data-value="3"]`).waitFor({ timeout: 5000 });
  await page.locator(`${retry} [data-testid="group-dead-letters"][data-value="0"]`).waitFor({ timeout: 10000 });
  assert.equal(await page.locator(`${retry} [data-testid="group-redrive"]`).isDisabled(), true);

  // The live tail (all streams, from latest) shows an event published after
  // the page loaded within 2 s.
  await page.locator('[data-testid="tail-status"][data-state="live"]').waitFor({ timeout: 10000 });
  const liveId = `live-${randomUUID()}`;
  const started = Date.now();
  await cli(['publish', stream, '--data', JSON.stringify({ live: true, marker: liveId }), '--type', 'browser.live', '--id', liveId, '--server', server.grpc], { token });
  await page.locator(`[data-testid="tail-event"][data-id="${liveId}"]`).waitFor({ timeout: LIVE_TAIL_BUDGET_MS + 3000 });
  const elapsed = Date.now() - started;
  console.log(`# ${label}: live tail showed the event ${elapsed} ms after the publish started`);
  assert.ok(elapsed <= LIVE_TAIL_BUDGET_MS, `the live tail took ${elapsed} ms (budget ${LIVE_TAIL_BUDGET_MS} ms)`);
  const tailed = page.locator(`[data-testid="tail-event"][data-id="${liveId}"]`);
  assert.equal(await tailed.getAttribute('data-stream'), stream);
  assert.equal(await tailed.getAttribute('data-type'), 'browser.live');
  await shot(page, `${label}-live-tail`);

  // The publish form appends an event that gRPC then reads.
  const marker = `form-${randomUUID()}`;
  await page.locator('[data-testid="publish-stream"]').fill(stream);
  await page.locator('[data-testid="publish-type"]').fill('browser.form');
  await page.locator('[data-testid="publish-subject"]').fill('order/42');
  await page.locator('[data-testid="publish-data"]').fill(JSON.stringify({ marker, total: 42.5, lines: [{ sku: 'A-1', qty: 2 }] }, null, 2));
  await page.locator('[data-testid="publish-submit"]').click();
  const result = page.locator('[data-testid="publish-result"].ok');
  await result.waitFor({ timeout: 5000 });
  const sequence = Number(await result.getAttribute('data-sequence'));
  assert.equal(sequence, 5, `publish result: ${await result.textContent()}`);

  const events = await readOverGrpc(server, stream, token);
  const published = events.find((e) => e.data && e.data.marker === marker);
  assert.ok(published, `the form's event is not in ${stream} over gRPC: ${JSON.stringify(events)}`);
  assert.equal(published.type, 'browser.form');
  assert.equal(published.subject, 'order/42');
  assert.equal(published.source, '/riverlog/console');
  assert.equal(published.rlsequence, sequence);
  assert.deepEqual(published.data.lines, [{ sku: 'A-1', qty: 2 }]);

  // It shows up in the live tail and, after the next poll, in the stream's count.
  await page.locator(`[data-testid="tail-event"][data-id="${published.id}"]`).waitFor({ timeout: 5000 });
  await page.locator(`${row(stream)} [data-testid="stream-count"][data-value="5"]`).waitFor({ timeout: 6000 });
  await shot(page, `${label}-after-publish`);
}

/**
 * Creates a stream with a group and three events, as an operator's tools
 * would, and a group "retry" that dead-letters all three to a stream of its
 * own: one delivery allowed, taken by a consumer that goes away without
 * acking.
 */
async function seed(server, stream, group, token) {
  await httpJson(server, 'POST', '/api/v1/streams', { stream, retention: { max_events: 10000 } }, token);
  await cli(['groups', 'create', stream, group, '--server', server.grpc], { token });
  // Its own dead-letter stream: the first group's (`<stream>:dlq`, shown in
  // its row) must stay empty whenever the dead-letter pass runs.
  await cli(['groups', 'create', stream, 'retry', '--max-deliveries', '1', '--ack-timeout', '50ms', '--dead-letter-stream', `${stream}:retry-dlq`, '--server', server.grpc], { token });
  for (let i = 1; i <= 3; i++) {
    await cli(['publish', stream, '--data', JSON.stringify({ seeded: i }), '--type', 'browser.seed', '--server', server.grpc], { token });
  }
  const gone = new AbortController();
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(`${server.http}/api/v1/groups/retry/consume?stream=${encodeURIComponent(stream)}&consumer=gone`, { headers, signal: gone.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let text = '';
  while ((text.match(/^id: /gm) || []).length < 3) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the consume stream ended early: ${text}`);
    text += new TextDecoder().decode(value);
  }
  gone.abort();
}

function assertNoProblems(problems, allowed = () => false) {
  const bad = problems.filter((p) => !allowed(p));
  assert.deepEqual(bad, [], `console errors or page errors:\n${bad.map((p) => `${p.kind}: ${p.text}`).join('\n')}`);
}

// ------------------------------------------------------------ tests

test('console without tokens: streams, recent events, groups, live tail, publish', async () => {
  const server = await startServer('open');
  const stream = `browser-${randomUUID().slice(0, 8)}`;
  const group = 'workers';
  await seed(server, stream, group);

  const { context, page, problems } = await openPage();
  try {
    const response = await page.goto(server.http + '/');
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'] || '', /default-src 'self'/);
    await page.locator('[data-testid="console"]').waitFor();
    await shot(page, 'open-loaded');
    assert.equal(await page.locator('[data-testid="token-dialog"]').isVisible(), false, 'no token dialog without tokens');

    await consoleFlow({ page, server, stream, group, label: 'open' });
    assertNoProblems(problems);
  } catch (e) {
    await shot(page, 'open-failure').catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
});

test('console with tokens: asks for one, keeps it in session storage, same flow', async () => {
  const token = `rl-${randomUUID()}`;
  const sha = (await cli(['hash-token'], { input: token + '\n' })).trim().split(/\s+/)[0];
  assert.match(sha, /^[0-9a-f]{64}$/, `hash-token printed ${sha}`);
  const config = `[[auth.tokens]]\nname = "console"\nsha256 = "${sha}"\npublish = ["*"]\nsubscribe = ["*"]\nadmin = true\n`;
  const server = await startServer('tokens', { config });
  const stream = `secure-${randomUUID().slice(0, 8)}`;
  const group = 'auditors';
  await seed(server, stream, group, token);

  // The API really is closed without the token.
  const closed = await fetch(server.http + '/api/v1/streams');
  assert.equal(closed.status, 401);

  const { context, page, problems } = await openPage();
  try {
    await page.goto(server.http + '/');
    const dialog = page.locator('[data-testid="token-dialog"]');
    await dialog.waitFor({ state: 'visible', timeout: 10000 });
    await shot(page, 'tokens-asks-for-token');

    // A wrong token is refused in the dialog.
    await page.locator('[data-testid="token-input"]').fill('not-the-token');
    await page.locator('[data-testid="token-submit"]').click();
    await page.locator('[data-testid="token-error"]').waitFor({ state: 'visible' });
    assert.equal(await dialog.isVisible(), true);

    const signedIn = Date.now();
    await page.locator('[data-testid="token-input"]').fill(token);
    await page.locator('[data-testid="token-submit"]').click();
    await dialog.waitFor({ state: 'hidden', timeout: 5000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('riverlog.console.token')), token);
    await page.locator('[data-testid="connection"][data-state="ok"]', { hasText: 'connected' }).waitFor({ timeout: 5000 });

    await consoleFlow({ page, server, token, stream, group, label: 'tokens' });

    // The token survives a reload of the tab: no second prompt.
    await page.reload();
    await page.locator(row(stream)).waitFor({ timeout: 10000 });
    assert.equal(await dialog.isVisible(), false, 'the token dialog came back after a reload');
    await page.locator('[data-testid="tail-status"][data-state="live"]').waitFor({ timeout: 10000 });

    // Before sign-in the browser logs the refused (401) requests; nothing else may show up, and nothing at all after it.
    const expected = (p) => p.kind === 'console' && p.at < signedIn + 1000 && /status of 401/.test(p.text);
    console.log(`# tokens: ${problems.filter(expected).length} refused (401) request(s) logged by the browser before sign-in, as expected`);
    assertNoProblems(problems, expected);
  } catch (e) {
    await shot(page, 'tokens-failure').catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
});

test('console history: charts of the past hour, names shortened in the middle, the selected row, 24-hour times', async () => {
  const server = await startServer('history');
  const stream = `com.example.fulfilment.warehouse-eu-central-1.outbound-shipments:${randomUUID().slice(0, 8)}`;
  const type = 'com.example.fulfilment.v1.OutboundShipmentDispatchedToCarrier';
  await httpJson(server, 'POST', '/api/v1/streams', { stream }, undefined);
  await cli(['groups', 'create', stream, 'dispatchers', '--server', server.grpc]);
  const publishSome = async (from, count) => {
    const batch = [];
    for (let i = from; i < from + count; i++) batch.push({ specversion: '1.0', id: `h-${i}`, source: '/warehouse', type, data: { parcel: i } });
    const res = await fetch(`${server.http}/api/v1/streams/${encodeURIComponent(stream)}/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify(batch) });
    assert.equal(res.status, 201, await res.text());
  };
  // Published before the page exists: the charts must come from the server.
  await publishSome(0, 7);

  // en-US would show 12-hour times if the console asked the locale.
  const { context, page, problems } = await openPage({ locale: 'en-US' });
  try {
    await page.goto(`${server.http}/#/stream/${encodeURIComponent(stream)}`);
    const throughput = page.locator('[data-testid="throughput-chart"]');
    await page.locator('[data-testid="throughput-chart"][data-total="7"]').waitFor({ timeout: 10000 });
    assert.equal(await throughput.getAttribute('data-points'), '360', 'an hour of 10 s buckets');
    assert.equal(await throughput.locator('[data-testid="line-throughput"]').getAttribute('data-points'), '360');
    assert.equal(await throughput.locator('[data-testid="chart-point"]').count(), 360);
    // Hovering a bucket names its events: the non-empty ones add up to what was published.
    const hovered = await throughput.locator('[data-testid="chart-point"] title').allTextContents();
    const counted = hovered.map((t) => t.match(/ · (\d+) events? · /)).filter(Boolean).map((m) => Number(m[1]));
    assert.equal(counted.reduce((a, b) => a + b, 0), 7, hovered.filter((t) => !/ 0 events/.test(t)).join('\n'));
    const group = page.locator('[data-testid="group-chart"][data-group="dispatchers"]');
    await group.waitFor({ timeout: 10000 });
    assert.equal(await group.getAttribute('data-lag'), '7');
    assert.equal(await group.getAttribute('data-pending'), '0');
    assert.ok(Number(await group.getAttribute('data-points')) >= 1);
    assert.equal(await group.locator('[data-testid="line-lag"]').count(), 1);

    // Long names and reverse-DNS types: shortened in the middle, whole on hover.
    // Both ends shown, the cut in the middle, and nothing cut off by the box.
    const assertMiddle = async (el, full) => {
      const shown = await el.textContent();
      const [head, tail] = shown.split('…');
      assert.ok(tail !== undefined && head.length >= 3 && tail.length >= 3, `shown as ${shown}`);
      assert.ok(full.startsWith(head) && full.endsWith(tail) && tail.length >= head.length, `${shown} for ${full}`);
      assert.equal(await el.getAttribute('title'), full);
      assert.ok(await el.evaluate((e) => e.scrollWidth <= e.clientWidth), `${shown} overflows its box`);
    };
    await assertMiddle(page.locator(`${row(stream)} [data-testid="stream-name"]`), stream);
    assert.equal(await page.locator('[data-testid="detail-name"]').getAttribute('title'), stream);
    const firstType = page.locator('[data-testid="event-row"] [data-testid="event-type"]').first();
    await firstType.hover();
    await assertMiddle(firstType, type);

    // The selected row: one, marked, and drawn apart from the others.
    const third = page.locator('[data-testid="event-row"][data-sequence="3"]');
    await third.click();
    await page.locator('[data-testid="json-body"]', { hasText: '"parcel": 2' }).waitFor();
    assert.equal(await page.locator('[data-testid="event-row"].selected').count(), 1);
    assert.equal(await third.getAttribute('aria-selected'), 'true');
    const background = (sequence) => page.locator(`[data-testid="event-row"][data-sequence="${sequence}"] td`).first().evaluate((td) => getComputedStyle(td).backgroundColor);
    assert.notEqual(await background(3), await background(4), 'the selected row looks like the others');

    // One 24-hour format: clock times on the axes, dates ISO-ordered, no AM/PM.
    const recorded = await page.locator('[data-testid="viewer-recorded"]').textContent();
    assert.match(recorded, /^recorded \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const axis = await throughput.locator('text.axis').allTextContents();
    assert.ok(axis.filter((t) => /^\d{2}:\d{2}$/.test(t)).length >= 4, axis.join(' '));
    assert.doesNotMatch(await page.locator('body').innerText(), /\b(AM|PM)\b/);
    await shot(page, 'history-charts');

    // Publishes while the page is open reach the chart at the next refresh (at most 10 s).
    await publishSome(7, 3);
    await page.locator('[data-testid="throughput-chart"][data-total="10"]').waitFor({ timeout: 15000 });
    await page.locator('[data-testid="group-chart"][data-group="dispatchers"][data-lag="10"]').waitFor({ timeout: 15000 });
    assertNoProblems(problems);
  } catch (e) {
    await shot(page, 'history-failure').catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
});
