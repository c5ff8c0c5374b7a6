// The other side of `cargo xtask bench-ui`'s chat measurements: plays the browser for the app's
// sign-in and a second user (bob) on confab-server, with the official JS SDK (centrifuge, from
// tests/peers). Env: PEERS_DIR (tests/peers), ISSUER, SERVER_URL.
// Protocol: one JSON command per stdin line, one JSON reply per stdout line ({ok, ...}).
//   {"cmd":"browser","url":<authorize url>,"user":"alice"} -> {callback}: the login done over
//        HTTP (IdP auto mode), the redirect to the app's scheme returned, not followed.
//   {"cmd":"seed","rooms":[{id,name,count}],"members":["alice"]} -> {last_offsets:{id:n}}:
//        bob creates the rooms and publishes `count` messages into each; members join.
//   {"cmd":"live","room":id,"count":n,"interval_ms":ms} -> {offsets:[...]}: bob publishes n
//        messages, one every interval_ms.
import { createRequire } from 'node:module';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';

const req = createRequire(path.join(process.env.PEERS_DIR, 'package.json'));
const { Centrifuge } = req('centrifuge');
const WebSocket = req('ws');

const ISSUER = process.env.ISSUER.replace(/\/$/, '');
const SERVER_URL = process.env.SERVER_URL;
const CLIENT_ID = 'confab-desktop';
const b64url = (buf) => buf.toString('base64url');

/** Follows the IdP's redirects with a cookie jar until one leaves the IdP; returns that URL. */
async function browse(startUrl, user) {
  let url = new URL(startUrl);
  url.searchParams.set('login_hint', user);
  const origin = url.origin;
  const jar = new Map();
  for (let hop = 0; hop < 30; hop += 1) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of res.headers.getSetCookie()) {
      const kv = c.split(';')[0];
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`IdP answered ${res.status} at ${url.pathname} without a redirect`);
    const next = new URL(location, url);
    if (next.origin !== origin) return next.href;
    url = next;
  }
  throw new Error('login did not finish after 30 hops');
}

/** An access token for `user` (authorization code + PKCE, loopback redirect never listened on). */
async function token(user) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const redirect = 'http://127.0.0.1:9/callback';
  const auth = new URL(`${ISSUER}/auth`);
  const q = {
    client_id: CLIENT_ID, response_type: 'code', scope: 'openid profile email offline_access',
    redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256',
    state: b64url(randomBytes(16)), nonce: b64url(randomBytes(16)),
  };
  for (const [k, v] of Object.entries(q)) auth.searchParams.set(k, v);
  const code = new URL(await browse(auth.href, user)).searchParams.get('code');
  if (!code) throw new Error(`no code for ${user}`);
  const res = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', client_id: CLIENT_ID, code, code_verifier: verifier, redirect_uri: redirect,
    }),
  });
  if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

async function client(user) {
  const c = new Centrifuge(SERVER_URL, { websocket: WebSocket, token: await token(user), name: `bench-${user}` });
  c.connect();
  await c.ready(20_000);
  return c;
}

let bob = null;

async function publish(room, text) {
  const data = { id: randomUUID(), author: '', text, ts: Date.now() };
  const res = await bob.publish(`room:${room}`, data);
  return res;
}

async function seed({ rooms, members }) {
  bob = bob || (await client('bob'));
  const lastOffsets = {};
  for (const room of rooms) {
    await bob.rpc('rooms.create', { id: room.id, name: room.name });
    // Bursts of concurrent publishes; each is acknowledged before the next burst.
    const burst = 200;
    for (let i = 0; i < room.count; i += burst) {
      const n = Math.min(burst, room.count - i);
      await Promise.all(Array.from({ length: n }, (_, k) => publish(room.id, `Message ${i + k + 1} of ${room.count} in ${room.name}: the quick brown fox jumps over the lazy dog.`)));
    }
    lastOffsets[room.id] = room.count;
  }
  for (const user of members) {
    const c = await client(user);
    for (const room of rooms) await c.rpc('rooms.join', { id: room.id });
    c.disconnect();
  }
  return { last_offsets: lastOffsets };
}

async function live({ room, count, interval_ms: intervalMs }) {
  bob = bob || (await client('bob'));
  const started = Date.now();
  for (let i = 0; i < count; i += 1) {
    const due = started + i * intervalMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await publish(room, `Live message ${i + 1} of ${count}`);
  }
  return { published: count };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const msg = JSON.parse(line);
    if (msg.cmd === 'browser') reply = { callback: await browse(msg.url, msg.user || 'alice') };
    else if (msg.cmd === 'seed') reply = await seed(msg);
    else if (msg.cmd === 'live') reply = await live(msg);
    else throw new Error(`unknown command ${msg.cmd}`);
    reply.ok = true;
  } catch (e) {
    reply = { ok: false, error: String(e && e.stack ? e.stack : e) };
  }
  console.log(JSON.stringify(reply));
}
if (bob) bob.disconnect();
