// Conformance script: the official JS SDK (centrifuge, npm) against confab-server.
// Env: SERVER_URL (ws://.../connection/websocket), TOKEN_URL (GET -> a fresh IdP access token),
// ROOM (room id), BIG_ROOM (optional: a room of the largest messages, read page by page, and the
// room list read page by page). Prints one JSON line with what it observed; the Rust driver
// asserts on it.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

const SERVER_URL = process.env.SERVER_URL;
const TOKEN_URL = process.env.TOKEN_URL;
const ROOM = process.env.ROOM || 'general';
const BIG_ROOM = process.env.BIG_ROOM || '';
const DEADLINE_MS = 50_000;
const channel = `room:${ROOM}`;

const fail = (msg) => {
  console.log(JSON.stringify({ ok: false, error: msg, result }));
  process.exit(1);
};
setTimeout(() => fail('script deadline exceeded'), DEADLINE_MS).unref();

const result = {
  ok: false,
  connected: false,
  token_calls: 0,
  received_own: false,
  history_has_own: false,
  publish_after_refresh: false,
  disconnect_codes: [],
  connecting_codes: [],
  recovered: false,
  was_recovering: false,
  missed_ids_in_order: false,
};

async function waitFor(what, cond, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function getToken() {
  result.token_calls += 1;
  const res = await fetch(TOKEN_URL);
  if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status}`);
  return (await res.text()).trim();
}

// A TCP proxy between the SDK and the server, so the test can drop the connection the way a
// network does (no close frame) and keep it down while publications are missed.
function startProxy(target) {
  const { hostname, port } = new URL(target.replace(/^ws/, 'http'));
  const sockets = new Set();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `ws://127.0.0.1:${server.address().port}${new URL(target.replace(/^ws/, 'http')).pathname}`;
      resolve({
        url,
        down() {
          up = false;
          for (const s of sockets) s.destroy();
          sockets.clear();
        },
        up() {
          up = true;
        },
        close() {
          server.close();
        },
      });
    });
  });
}

const proxy = await startProxy(SERVER_URL);
const client = new Centrifuge(proxy.url, {
  websocket: WebSocket,
  getToken,
  minReconnectDelay: 100,
  maxReconnectDelay: 300,
  timeout: 5000,
});
let state = 'disconnected';
client.on('connected', () => {
  state = 'connected';
  result.connected = true;
});
client.on('connecting', (ctx) => {
  state = 'connecting';
  result.connecting_codes.push(ctx.code);
});
client.on('disconnected', (ctx) => {
  state = 'disconnected';
  result.disconnect_codes.push(ctx.code);
});
client.connect();
await client.ready(10_000);
await client.rpc('rooms.join', { id: ROOM });

const received = [];
const sub = client.newSubscription(channel, { recoverable: true, positioned: true });
sub.on('publication', (ctx) => received.push({ id: ctx.data.id, offset: ctx.offset, text: ctx.data.text }));
const subscribedEvents = [];
sub.on('subscribed', (ctx) => subscribedEvents.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
sub.subscribe();
await sub.ready(10_000);

// Publish and receive.
const own = { id: randomUUID(), author: '', text: 'hello from centrifuge-js', ts: Date.now() };
await sub.publish(own);
await waitFor('own publication', () => received.some((p) => p.id === own.id));
result.received_own = true;

// History.
const hist = await sub.history({ limit: -1 });
result.history_has_own = hist.publications.some((p) => p.data.id === own.id);
result.history_epoch = hist.epoch;

// Refresh: the server gives a short ttl; the SDK must call getToken again and refresh in-band.
await waitFor('token refresh through getToken', () => result.token_calls >= 3, 30_000);
const afterRefresh = { id: randomUUID(), author: '', text: 'after refresh', ts: Date.now() };
await sub.publish(afterRefresh);
await waitFor('publication after refresh', () => received.some((p) => p.id === afterRefresh.id));
result.publish_after_refresh = state === 'connected';

// Recovery: drop the connection, publish from another client while it is down, restore.
proxy.down();
await waitFor('the SDK to notice the drop', () => state !== 'connected');
const publisher = new Centrifuge(SERVER_URL, { websocket: WebSocket, getToken });
publisher.connect();
await publisher.ready(10_000);
const missed = [];
for (let i = 0; i < 3; i++) {
  const m = { id: randomUUID(), author: '', text: `missed ${i}`, ts: Date.now() };
  await publisher.publish(channel, m);
  missed.push(m.id);
}
publisher.disconnect();
const subscribedBefore = subscribedEvents.length;
proxy.up();
await waitFor('resubscribe after reconnect', () => subscribedEvents.length > subscribedBefore);
const last = subscribedEvents[subscribedEvents.length - 1];
result.was_recovering = last.wasRecovering;
result.recovered = last.recovered;
await waitFor('missed publications', () => missed.every((id) => received.some((p) => p.id === id)));
const order = received.filter((p) => missed.includes(p.id)).map((p) => p.id);
result.missed_ids_in_order = JSON.stringify(order) === JSON.stringify(missed);
result.missed_count = order.length;

// Large data: the room list page by page, and a room of the largest messages page by page.
if (BIG_ROOM) {
  let after = null;
  result.rooms_listed = [];
  result.rooms_pages = 0;
  result.rooms_max_reply_bytes = 0;
  for (;;) {
    const { data } = await client.rpc('rooms.list', after ? { after } : {});
    result.rooms_pages += 1;
    result.rooms_max_reply_bytes = Math.max(result.rooms_max_reply_bytes, JSON.stringify(data).length);
    result.rooms_listed.push(...data.rooms.map((r) => r.id));
    if (!data.next) break;
    after = data.next;
  }
  result.rooms_listed = result.rooms_listed.length;
  await client.rpc('rooms.join', { id: BIG_ROOM });
  const big = client.newSubscription(`room:${BIG_ROOM}`, { recoverable: true, positioned: true });
  big.subscribe();
  await big.ready(10_000);
  const offsets = [];
  let since = null;
  result.big_pages = [];
  result.big_max_reply_bytes = 0;
  for (;;) {
    const page = await big.history(since ? { limit: 50, reverse: true, since } : { limit: 50, reverse: true });
    if (page.publications.length === 0) break;
    result.big_pages.push(page.publications.length);
    result.big_max_reply_bytes = Math.max(result.big_max_reply_bytes, JSON.stringify(page.publications).length);
    offsets.push(...page.publications.map((p) => p.offset));
    since = { offset: page.publications[page.publications.length - 1].offset, epoch: page.epoch };
  }
  offsets.sort((a, b) => a - b);
  result.big_offsets = offsets;
}

result.ok = true;
client.disconnect();
proxy.close();
console.log(JSON.stringify(result));
process.exit(0);
