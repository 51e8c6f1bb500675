// Makes docs/console.png: a populated console (a few streams with traffic, a
// consumer group with consumers, pending events and dead letters, the live
// tail running, the "Last hour" charts, reverse-DNS event types shortened in
// the middle). Not a test; run it after `npm ci` with
//   node docs-screenshot.mjs [out.png]
// RIVERLOG_BIN and RIVERLOG_CONSOLE_DIR work as in run.sh.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.RIVERLOG_BIN || '/tmp/riverlog-bin2/riverlog';
const OUT = resolve(process.argv[2] || join(HERE, '..', '..', 'docs', 'console.png'));
const dir = mkdtempSync(join(tmpdir(), 'riverlog-shot-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RIVERLOG_')));
const args = ['serve', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--database-url', `sqlite://${join(dir, 'r.db')}`];
if (process.env.RIVERLOG_CONSOLE_DIR) args.push('--console-dir', resolve(process.env.RIVERLOG_CONSOLE_DIR));
const server = spawn(BIN, args, { env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
const { http, grpc } = await new Promise((ok, fail) => {
  let log = '';
  server.stderr.setEncoding('utf8');
  server.stderr.on('data', (c) => {
    log += c;
    const m = log.match(/grpc=(\S+) http=(\S+)/);
    if (m) ok({ grpc: `http://${m[1]}`, http: `http://${m[2]}` });
  });
  server.on('exit', () => fail(new Error(log)));
});

async function call(method, path, body, contentType = 'application/json') {
  const res = await fetch(http + path, { method, headers: { 'content-type': contentType }, body: body && JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}
let n = 0;
const publish = (stream, type, data, subject) =>
  call('POST', `/api/v1/streams/${encodeURIComponent(stream)}/events`, { specversion: '1.0', id: `demo-${++n}`, source: '/shop/checkout', type, subject, data }, 'application/cloudevents+json');

const ORDER_TYPES = ['com.example.shop.order.v1.OrderCreated', 'com.example.shop.order.v1.OrderPaid', 'com.example.shop.order.v1.OrderShipped'];
const customers = ['ada', 'grace', 'linus', 'margaret', 'ken', 'barbara'];
const skus = ['KB-104', 'MS-220', 'USB-C-2M', 'MON-27Q', 'DOCK-9'];
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const order = () => ({
  order_id: `ord_${(100000 + n).toString(36)}`,
  customer: { id: pick(customers), tier: pick(['standard', 'gold']) },
  lines: [{ sku: pick(skus), qty: 1 + Math.floor(Math.random() * 3), price: 19.9 + Math.floor(Math.random() * 300) }],
  currency: 'EUR',
  express: Math.random() < 0.3,
});

await call('POST', '/api/v1/streams', { stream: 'orders', retention: { max_age: '7d' } });
await call('POST', '/api/v1/streams', { stream: 'payments', retention: { max_events: 1000000 } });
await call('POST', '/api/v1/streams', { stream: 'inventory', retention: { ttl: '30d' } });
await call('POST', '/api/v1/streams', { stream: 'audit.log' });
for (let i = 0; i < 40; i++) await publish('orders', pick(ORDER_TYPES), order(), undefined);
for (let i = 0; i < 25; i++) await publish('payments', pick(['payment.authorized', 'payment.captured']), { amount: 49.9 + i, currency: 'EUR', psp: 'acme' });
for (let i = 0; i < 12; i++) await publish('inventory', 'stock.adjusted', { sku: pick(skus), delta: -1, warehouse: 'ber-1' });
for (let i = 0; i < 6; i++) await publish('audit.log', 'user.login', { user: pick(customers), ip: '10.0.0.' + (10 + i) });

// Consumer groups are made over gRPC, by the CLI.
const cli = (a) =>
  new Promise((ok, fail) => {
    const c = spawn(BIN, [...a, '--server', grpc], { env, stdio: 'ignore' });
    c.on('exit', (code) => (code ? fail(new Error(`riverlog ${a.join(' ')}: ${code}`)) : ok()));
  });
await cli(['groups', 'create', 'orders', 'billing', '--max-deliveries', '2', '--ack-timeout', '2s']);
await cli(['groups', 'create', 'orders', 'shipping', '--start', 'latest']);
await cli(['groups', 'create', 'payments', 'ledger']);

// Consumers over SSE that never ack: billing's events go pending, then to
// orders:dlq after 2 deliveries.
const consumers = [];
function consume(group, stream, consumer, maxInFlight) {
  const ctrl = new AbortController();
  consumers.push(ctrl);
  fetch(`${http}/api/v1/groups/${group}/consume?stream=${stream}&consumer=${consumer}&max_in_flight=${maxInFlight}`, { signal: ctrl.signal })
    .then(async (res) => {
      for await (const chunk of res.body) void chunk;
    })
    .catch(() => {});
}
consume('billing', 'orders', 'billing-worker-1', 3);
consume('billing', 'orders', 'billing-worker-2', 3);
consume('shipping', 'orders', 'shipping-worker-1', 0);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'],
});
const page = await browser.newPage({ viewport: { width: Number(process.env.SHOT_WIDTH || 1440), height: Number(process.env.SHOT_HEIGHT || 900) }, colorScheme: 'dark' });
let errors = 0;
page.on('console', (m) => m.type() === 'error' && (errors++, console.error('console error:', m.text())));
page.on('pageerror', (e) => (errors++, console.error('page error:', e.message)));
await page.goto(http + '/#/stream/orders');
// The throughput and lag charts come from the server's history: the longer
// the traffic runs, the more of the hour they fill (10 s buckets).

// Traffic with a rhythm, so the rates and sparklines have something to show.
let running = true;
const traffic = (async () => {
  for (let t = 0; running; t++) {
    const burst = 1 + Math.round(2 + 2 * Math.sin(t / 4));
    for (let i = 0; i < burst; i++) await publish('orders', pick(ORDER_TYPES), order(), `customer/${pick(customers)}`);
    if (t % 2 === 0) await publish('payments', pick(['payment.authorized', 'payment.captured']), { amount: 20 + t, currency: 'EUR', psp: 'acme' });
    if (t % 5 === 0) await publish('inventory', 'stock.adjusted', { sku: pick(skus), delta: -1, warehouse: 'ber-1' });
    await sleep(450);
  }
})();
await sleep(Number(process.env.SHOT_WAIT_MS || 45000));
running = false;
await traffic;
await sleep(300);
// Show an order in the JSON viewer.
await page.locator('[data-testid="event-row"]').nth(1).click();
await page.locator('[data-testid="tail-event"]').nth(2).hover();
await page.mouse.move(700, 880);
// Clicking scrolled the middle column: show it from its top.
await page.evaluate(() => document.getElementById('main').scrollTo(0, 0));
await page.screenshot({ path: OUT });
console.log(`wrote ${OUT}${errors ? ` (${errors} console errors!)` : ''}`);
await browser.close();
for (const c of consumers) c.abort();
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dir, { recursive: true, force: true });
process.exit(errors ? 1 : 0);
