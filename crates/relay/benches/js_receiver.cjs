// Benchmark receiver: the official JS SDK (centrifuge, npm, from tests/peers) counting
// publications from the replay feeder. Env: PEERS_DIR, URL, COUNT. Prints elapsed ms.
const { createRequire } = require('node:module');
const path = require('node:path');
const req = createRequire(path.join(process.env.PEERS_DIR, 'package.json'));
const { Centrifuge } = req('centrifuge');
const WebSocket = req('ws');

const count = Number(process.env.COUNT);
const client = new Centrifuge(process.env.URL, { websocket: WebSocket, token: 'bench', name: 'js' });
const sub = client.newSubscription('room:bench');
let seen = 0;
let start = 0;
sub.on('publication', () => {
  seen += 1;
  if (seen === count) {
    console.log(`ELAPSED_MS ${Date.now() - start}`);
    process.exit(0);
  }
});
setTimeout(() => { console.log(`TIMEOUT ${seen}`); process.exit(1); }, 120000).unref();
start = Date.now();
sub.subscribe();
client.connect();
