// Conformance script: the official JS SDK (centrifuge, npm) against a Confab deployment, either
// confab-server alone or Centrifugo with confab-server as its backend. Nothing in it is specific
// to one of them: it speaks the Centrifugo client protocol and Confab's documented RPC methods
// (`rooms.*`, `messages.send`), and reports what it observed; the Rust driver asserts on it.
//
// Env: SERVER_URL (ws://.../connection/websocket), TOKEN_URL (GET -> a fresh IdP access token),
// CHAT_TOKEN_URL (optional: POST with `Authorization: Bearer <IdP token>` -> {token}, the
// backend's chat token endpoint; without it the IdP token itself connects), ROOM (room id),
// BIG_ROOM (optional: a room of the largest messages, read page by page, and the room list read
// page by page), BURST (calls made at once, default 200).
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

const SERVER_URL = process.env.SERVER_URL;
const TOKEN_URL = process.env.TOKEN_URL;
const CHAT_TOKEN_URL = process.env.CHAT_TOKEN_URL || '';
const ROOM = process.env.ROOM || 'general';
const BIG_ROOM = process.env.BIG_ROOM || '';
const BURST = Number(process.env.BURST || 200);
const DEADLINE_MS = 80_000;
const channel = `room:${ROOM}`;

const fail = (msg) => {
  console.log(JSON.stringify({ ok: false, error: msg, result }));
  process.exit(1);
};
setTimeout(() => fail('script deadline exceeded'), DEADLINE_MS).unref();
const why = (e) => (e instanceof Error ? e.stack : JSON.stringify(e));
process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${why(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${why(e)}`));

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

// Whether `cond` came true within `ms` (for what may not happen).
async function waitUntil(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return cond();
}

// The error code of a failed call, or 0 when it succeeded.
async function codeOf(promise) {
  try {
    await promise;
    return 0;
  } catch (e) {
    return e && typeof e.code === 'number' ? e.code : -1;
  }
}

async function getToken() {
  result.token_calls += 1;
  const res = await fetch(TOKEN_URL);
  if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status}`);
  const access = (await res.text()).trim();
  if (!CHAT_TOKEN_URL) return access;
  const chat = await fetch(CHAT_TOKEN_URL, { method: 'POST', headers: { Authorization: `Bearer ${access}` } });
  if (!chat.ok) throw new Error(`chat token endpoint: HTTP ${chat.status}`);
  return (await chat.json()).token;
}

// How Confab sends: the RPC `messages.send` (the backend stores, then publishes).
const send = (c, room, text) => {
  const id = randomUUID();
  return c.rpc('messages.send', { room, id, text, ts: Date.now() }).then(({ data }) => ({ id, ...data }));
};

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

// The offsets of the room's publications in the order they arrive on the wire (the SDK's events
// may come in another order, see received_in_offset_order).
const wire = [];
class TappedWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        const push = line.startsWith('{"push"') ? JSON.parse(line).push : null;
        if (push && push.channel === channel && push.pub) wire.push(push.pub.offset);
      }
    });
  }
}
const proxy = await startProxy(SERVER_URL);
const client = new Centrifuge(proxy.url, {
  websocket: TappedWebSocket,
  getToken,
  minReconnectDelay: 100,
  maxReconnectDelay: 300,
  timeout: 5000,
});
let state = 'disconnected';
let clientId = '';
client.on('connected', (ctx) => {
  clientId = ctx.client;
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
sub.on('publication', (ctx) =>
  received.push({ id: ctx.data.id, offset: ctx.offset, author: ctx.data.author, name: ctx.data.name }),
);
const subscribedEvents = [];
sub.on('subscribed', (ctx) => subscribedEvents.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
sub.subscribe();
await sub.ready(10_000);

// Send and receive: the reply names the place in the stream the subscriber sees it at.
const own = await send(client, ROOM, 'hello from centrifuge-js');
await waitFor('own message', () => received.some((p) => p.id === own.id));
const ownPub = received.find((p) => p.id === own.id);
result.received_own = true;
result.sent_offset_matches = ownPub.offset === own.offset;
result.sent_epoch_set = typeof own.epoch === 'string' && own.epoch.length > 0;
result.own_author = ownPub.author;

// A client's own publish: confab-server accepts it, Centrifugo refuses it (the backend publishes).
const published = { id: randomUUID(), author: 'someone-else', text: 'published by the client', ts: Date.now() };
result.client_publish_code = await codeOf(sub.publish(published));
if (result.client_publish_code === 0) {
  await waitFor('own publication', () => received.some((p) => p.id === published.id));
  result.client_publish_author = received.find((p) => p.id === published.id).author;
}

// History, also from a position given without its epoch (Centrifugo: any epoch).
const hist = await sub.history({ limit: -1 });
result.history_has_own = hist.publications.some((p) => p.data.id === own.id);
result.history_epoch_is_sent_epoch = hist.epoch === own.epoch;
const since = await sub.history({ limit: 10, since: { offset: own.offset - 1, epoch: '' } });
result.history_since_empty_epoch_first = since.publications.length > 0 && since.publications[0].data.id === own.id;

// Refusals a client can meet.
result.unknown_room_code = await codeOf(
  (async () => {
    const s = client.newSubscription('room:no-such-room');
    s.on('error', () => {});
    const done = new Promise((resolve, reject) => {
      s.on('subscribed', resolve);
      s.on('unsubscribed', (ctx) => reject({ code: ctx.code }));
    });
    s.subscribe();
    try {
      await done;
    } finally {
      client.removeSubscription(s);
    }
  })(),
);
result.unknown_method_code = await codeOf(client.rpc('no.such.method', {}));
result.bad_send_code = await codeOf(client.rpc('messages.send', { room: ROOM, text: 'no id' }));

// Sending again with the same id answers the same place (the outbox's retry).
const again = await client.rpc('messages.send', { room: ROOM, id: own.id, text: 'again', ts: Date.now() });
result.resend_same_place = again.data.offset === own.offset && again.data.epoch === own.epoch;

// Sends made at once: each lands once, at its own offset, and the subscriber sees each there.
const concurrent = await Promise.all([...Array(20).keys()].map((i) => send(client, ROOM, `at once ${i}`)));
await waitFor('messages sent at once', () => concurrent.every((m) => received.some((p) => p.id === m.id)));
result.concurrent_offsets_distinct = new Set(concurrent.map((m) => m.offset)).size === concurrent.length;
result.concurrent_received_at_offsets = concurrent.every((m) => received.find((p) => p.id === m.id).offset === m.offset);
result.received_in_offset_order = received.every((p, i) => i === 0 || p.offset > received[i - 1].offset);
result.wire_in_offset_order = wire.length >= concurrent.length && wire.every((o, i) => i === 0 || o > wire[i - 1]);
result.received_offsets = received.map((p) => p.offset);

// Presence of the room, as a subscriber sees it.
const presence = await sub.presence();
result.presence_has_self = Object.values(presence.clients).some((c) => c.client === clientId && c.user === 'alice');
const stats = await sub.presenceStats();
result.presence_stats = { clients: stats.numClients, users: stats.numUsers };

// Join pushes when asked for (the subscriber hears its own join).
const joinRoom = `join-${randomUUID().slice(0, 8)}`;
await client.rpc('rooms.create', { id: joinRoom, name: 'Join' });
const joins = [];
const withJoins = client.newSubscription(`room:${joinRoom}`, { joinLeave: true });
withJoins.on('join', (ctx) => joins.push(ctx.info.user));
withJoins.subscribe();
await withJoins.ready(10_000);
const other = new Centrifuge(SERVER_URL, { websocket: WebSocket, getToken });
other.connect();
await other.ready(10_000);
const otherSub = other.newSubscription(`room:${joinRoom}`);
otherSub.subscribe();
await otherSub.ready(10_000);
await waitUntil(() => joins.length >= 2, 5_000);
result.join_pushes = joins.length;
other.disconnect();

// History and presence of a room one is a member of but not subscribed to.
const quietRoom = `quiet-${randomUUID().slice(0, 8)}`;
await client.rpc('rooms.create', { id: quietRoom, name: 'Quiet' });
result.history_unsubscribed_code = await codeOf(client.history(`room:${quietRoom}`, { limit: 1 }));
result.presence_unsubscribed_code = await codeOf(client.presence(`room:${quietRoom}`));

// Leaving a room ends its subscription from the server's side.
const left = new Promise((resolve) => withJoins.on('unsubscribed', (ctx) => resolve(ctx.code)));
await client.rpc('rooms.leave', { id: joinRoom });
result.left_unsubscribe_code = await Promise.race([left, new Promise((r) => setTimeout(() => r(-1), 10_000))]);

// A burst: BURST history reads and room list calls at once, as an app does when it opens.
const burst = [];
for (let i = 0; i < BURST; i++) {
  burst.push(i % 2 === 0 ? sub.history({ limit: 1 }) : client.rpc('rooms.list', { limit: 1 }));
}
const settled = await Promise.allSettled(burst);
result.burst_ok = settled.filter((s) => s.status === 'fulfilled').length;
result.burst_error_codes = [...new Set(settled.filter((s) => s.status === 'rejected').map((s) => s.reason?.code ?? -1))];

// Refresh: the server gives a short ttl; the SDK must call getToken again and refresh in-band.
await waitFor('token refresh through getToken', () => result.token_calls >= 3, 30_000);
const afterRefresh = await send(client, ROOM, 'after refresh');
await waitFor('message after refresh', () => received.some((p) => p.id === afterRefresh.id));
result.publish_after_refresh = state === 'connected';

// Recovery: drop the connection, send from another client while it is down, restore.
proxy.down();
await waitFor('the SDK to notice the drop', () => state !== 'connected');
const publisher = new Centrifuge(SERVER_URL, { websocket: WebSocket, getToken });
publisher.connect();
await publisher.ready(10_000);
const missed = [];
for (let i = 0; i < 3; i++) {
  missed.push((await send(publisher, ROOM, `missed ${i}`)).id);
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
