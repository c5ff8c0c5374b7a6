// Chat screen: the connection line above the chat (#connection) and the error bar's dismiss
// button. The bar itself is filled by showError (state.js), which every call into the core uses.

import { $ } from './state.js';

/** Error codes that say the connection was lost: the bar hides once connected again. */
const CONNECTION_CODES = new Set(['connection-lost', 'timeout']);

/** Connection line. */
const conn = { state: null, seenConnected: false, episodes: 0, timer: 0 };

export function onConnection(event) {
  const next = event.state;
  // An episode: the line leaves "connected" (only counted once it has been connected).
  if (conn.state === 'connected' && next !== 'connected' && conn.seenConnected) conn.episodes += 1;
  if (next === 'connected') {
    conn.seenConnected = true;
    // A connection error is over once connected again (the text and count stay for the record).
    if (CONNECTION_CODES.has($('chat-error').dataset.code)) $('chat-error-bar').hidden = true;
  }
  conn.state = next;
  clearInterval(conn.timer);
  conn.timer = 0;

  const line = $('connection');
  line.dataset.state = next;
  line.dataset.episodes = String(conn.episodes);
  line.hidden = next === 'connected';
  switch (next) {
    case 'connecting':
      line.textContent = 'Connecting…';
      break;
    case 'reconnecting': {
      const until = Date.now() + Math.max(0, Number(event.in_secs) || 0) * 1000;
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1000);
        // Calm: what is on screen (saved messages, the outbox) stays usable while offline.
        line.textContent = left > 0 ? `Offline · reconnecting in ${left} s…` : 'Offline · reconnecting…';
        if (left <= 0) clearInterval(conn.timer);
      };
      tick();
      conn.timer = setInterval(tick, 1000);
      break;
    }
    case 'offline':
      line.textContent = event.reason ? `Offline: ${event.reason}` : 'Offline';
      break;
    case 'signed-out':
      line.textContent = 'Session ended';
      break;
    default:
      line.textContent = '';
  }
}

export function wireConnectionLine() {
  $('chat-error-dismiss').addEventListener('click', () => { $('chat-error-bar').hidden = true; });
}
