// Chat screen: the open room's messages as data. Each message is kept once, delivered ones in
// offset order, whatever order the core's events and replies arrive in.

import { state, view } from './state.js';

/** A timestamp a Date can show (a bad sender clock must not break rendering). */
export function safeTs(ts) {
  const n = Number(ts);
  return Number.isFinite(n) && Math.abs(n) <= 8.64e15 ? n : Date.now();
}

/** A message from the wire: plain fields only. */
export function toMessage(m) {
  return {
    id: m.id == null ? null : String(m.id),
    offset: m.offset,
    author: String(m.author ?? ''),
    // The display name the server attested (absent: the author's id is all there is).
    name: String(m.name ?? ''),
    text: String(m.text ?? ''),
    ts: safeTs(m.ts),
    own: Boolean(m.own) || (state.me !== null && m.author === state.me),
    state: null,
    reason: null,
  };
}

/**
 * Adds a delivered message in offset order. A message already shown (same id, e.g. the user's
 * own pending row or one already moved by message-state `sent`) is updated, never duplicated.
 */
export function addDelivered(msg) {
  const placed = view.byOffset.get(msg.offset);
  if (placed) {
    // The user's own message, placed by message-state `sent`: the server's copy brings what
    // only the server knows (the author and the display name it attested).
    const changed = placed.id === msg.id && (placed.author !== msg.author || placed.name !== msg.name);
    if (changed) Object.assign(placed, { author: msg.author, name: msg.name });
    return { added: false, changed };
  }
  const known = msg.id !== null ? view.byId.get(msg.id) : undefined;
  if (known) {
    if (known.offset != null) return { added: false };
    removeUnsent(known);
    Object.assign(known, { offset: msg.offset, ts: msg.ts, text: msg.text, author: msg.author, name: msg.name, state: 'sent', reason: null });
    insertDelivered(known);
    return { added: true, fromOthers: false };
  }
  if (msg.own) msg.state = 'sent';
  insertDelivered(msg);
  if (msg.id !== null) view.byId.set(msg.id, msg);
  return { added: true, fromOthers: !msg.own };
}

function insertDelivered(msg) {
  const arr = view.delivered;
  view.byOffset.set(msg.offset, msg);
  if (arr.length === 0 || arr[arr.length - 1].offset < msg.offset) {
    arr.push(msg);
    return;
  }
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid].offset < msg.offset) lo = mid + 1;
    else hi = mid;
  }
  arr.splice(lo, 0, msg);
}

function removeUnsent(msg) {
  const i = view.unsent.indexOf(msg);
  if (i >= 0) view.unsent.splice(i, 1);
}

export function applyState(msg, { state: st, offset, reason }) {
  if (st === 'sent') {
    msg.state = 'sent';
    msg.reason = null;
    if (msg.offset == null && offset != null && !view.byOffset.has(offset)) {
      removeUnsent(msg);
      msg.offset = offset;
      insertDelivered(msg);
    }
  } else if (msg.offset == null) {
    // A delivered message never goes back to pending/failed.
    msg.state = st === 'failed' ? 'failed' : 'pending';
    msg.reason = st === 'failed' ? String(reason || '') : null;
  }
}
