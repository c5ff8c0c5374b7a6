// Benchmark receiver: the official JS SDK (centrifuge, npm, from tests/peers) counting
// publications from the replay feeder. Env: PEERS_DIR, URL, COUNT. Prints the ms from the first
// publication to the COUNT-th (connecting and subscribing are not timed).
const { createRequire } = require('node:module');
const path = require('node:path');
const req = createRequire(path.join(process.env.PEERS_DIR, 'package.json'));
const { Centrifuge } = req('centrifuge');
const WebSocket = req('ws');

const count = Number(process.env.COUNT);
const client = new Centrifuge(process.env.URL, { websocket: WebSocket, token: 'bench', name: 'js' });
const sub = client.newSubscription('room:bench');
let seen = 0;
let first = 0n;
sub.on('publication', () => {
  if (seen === 0) first = process.hrtime.bigint();
  seen += 1;
  if (seen === count) {
    const ns = process.hrtime.bigint() - first;
    console.log(`ELAPSED_MS ${Number(ns) / 1e6}`);
    process.exit(0);
  }
});
setTimeout(() => { console.log(`TIMEOUT ${seen}`); process.exit(1); }, 120000).unref();
sub.subscribe();
client.connect();
