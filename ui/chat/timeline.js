// Chat screen: the open room's history. Opening and closing a room, the core's message events,
// older pages, the virtual list over #messages, the read position, retries, links and the live
// region that announces incoming messages.

import { safeHttpUrl } from '../format.js';
import { VirtualList } from '../virtual-list.js';
import { flushDraft, setComposerText } from './composer.js';
import {
  addDelivered, applyState, safeTs, toMessage,
} from './messages.js';
import { markCurrentRoom, setBadge, setPane } from './room-list.js';
import {
  $, NARROW, asError, call, core, earlyStates, list, setList, showError, state, view,
} from './state.js';
import { buildItems, estimate, renderItem } from './timeline-rows.js';

/** mark_read at most this often. */
const READ_THROTTLE_MS = 500;

// ---------------------------------------------------------------------------------------------
// Events from the core

export function onMessage(event) {
  if (event.room !== view.room || !view.loaded) return; // the next room-reset covers it
  const { added, fromOthers, changed } = addDelivered(toMessage(event));
  if (changed) list.invalidateSoon();
  if (!added) return;
  if (fromOthers) announce(`${event.name || event.author}: ${event.text}`);
  if (!list.atBottom && fromOthers) {
    view.unseen += 1;
    $('jump-latest').hidden = false;
  }
  list.invalidateSoon();
}

export function onMessageState({ id, room, state: st, offset, reason }) {
  const key = String(id);
  const msg = view.byId.get(key);
  if (!msg || room !== view.room) {
    // Possibly the reply to a send_message still in flight: keep the latest state briefly.
    earlyStates.set(key, { state: st, offset, reason });
    if (earlyStates.size > 200) earlyStates.delete(earlyStates.keys().next().value);
    return;
  }
  applyState(msg, { state: st, offset, reason });
  list.invalidate();
}

/** The room's latest page could not be loaded: say so in the room, with Retry. */
export function onRoomFailed({ room, message, retry_in_secs: retryInSecs }) {
  if (room !== view.room) return;
  view.failed = { message: String(message || 'unknown error'), retryInSecs: Number(retryInSecs) || 0 };
  list.invalidate();
}

/** Retry of the room's latest page: open_room asks at once (the core's own retry waits). */
function retryRoom() {
  const room = view.room;
  if (!room) return;
  view.failed = null;
  list.invalidate();
  call('open_room', { room }).catch(() => {});
}

export function onRoomReset({ room, messages, has_older: hasOlder, unsent }) {
  if (room !== view.room) return;
  const firstLoad = !view.loaded;
  view.failed = null;
  view.olderFailed = null;
  view.delivered = [];
  view.unsent = [];
  view.byId = new Map();
  view.byOffset = new Map();
  for (const m of messages || []) addDelivered(toMessage(m));
  for (const u of unsent || []) {
    const id = String(u.id);
    if (view.byId.has(id)) continue;
    const failed = u.failed !== null && u.failed !== undefined && u.failed !== false;
    const msg = {
      id, offset: null, author: state.me ?? '', text: String(u.text ?? ''), ts: safeTs(u.ts),
      own: true, state: failed ? 'failed' : 'pending', reason: typeof u.failed === 'string' ? u.failed : null,
    };
    view.unsent.push(msg);
    view.byId.set(id, msg);
  }
  view.hasOlder = Boolean(hasOlder);
  view.loadingOlder = false;
  view.loaded = true;
  if (firstLoad) list.scrollToBottom();
  list.invalidate();
}

// ---------------------------------------------------------------------------------------------
// Opening a room

export async function openRoom(id, { focus = true } = {}) {
  if (view.room === id) {
    setPane('room');
    if (focus) (NARROW.matches ? $('messages') : $('composer-input')).focus();
    return;
  }
  flushDraft();
  Object.assign(view, {
    room: id, loaded: false, delivered: [], unsent: [], byId: new Map(), byOffset: new Map(),
    hasOlder: false, loadingOlder: false, olderFailed: null, failed: null, typed: false,
    readOffset: 0, unseen: 0,
  });
  const room = state.rooms.find((r) => r.id === id);
  $('room-title').textContent = room ? room.name : id;
  setBadge($('room-badge'), room);
  $('composer-label').textContent = `Message ${room ? room.name : id}`;
  $('composer-input').placeholder = `Message #${room ? room.name : id}`;
  $('no-room').hidden = true;
  $('room-view').hidden = false;
  $('jump-latest').hidden = true;
  setComposerText('');
  markCurrentRoom();
  setPane('room');
  list.reset();
  // On narrow (touch) screens focusing the composer would pop up the keyboard over the history;
  // the history takes focus instead (the room list that had it is hidden now).
  if (focus) (NARROW.matches ? $('messages') : $('composer-input')).focus();
  try {
    const opened = await call('open_room', { room: id });
    if (view.room !== id || !opened) return;
    view.readOffset = Number(opened.read_offset) || 0;
    if (!view.typed && typeof opened.draft === 'string') setComposerText(opened.draft);
  } catch {
    // Shown in #chat-error (e.g. the remembered room is gone): back to the room list.
    if (view.room === id) {
      closeRoom();
      setPane('rooms');
    }
  }
}

export function closeRoom() {
  flushDraft();
  Object.assign(view, {
    room: null, loaded: false, delivered: [], unsent: [], byId: new Map(), byOffset: new Map(),
    hasOlder: false, loadingOlder: false, olderFailed: null, failed: null, typed: false,
    readOffset: 0, unseen: 0,
  });
  $('room-view').hidden = true;
  $('no-room').hidden = false;
  $('messages').dataset.room = '';
  $('room-title').textContent = '';
  setComposerText('');
  markCurrentRoom();
  list.reset();
}

async function loadOlder() {
  if (!view.loaded || !view.hasOlder || view.loadingOlder || view.olderFailed !== null
    || view.delivered.length === 0) return;
  const room = view.room;
  const beforeOffset = view.delivered[0].offset;
  view.loadingOlder = true;
  list.invalidate();
  let page = null;
  try {
    page = await call('load_older', { room, beforeOffset });
  } catch (err) {
    // The page says it failed, with Retry; no more automatic tries until then.
    if (view.room === room) {
      view.loadingOlder = false;
      view.olderFailed = asError(err).message || 'unknown error';
      list.invalidate();
    }
    return;
  }
  if (view.room !== room || !page) return;
  const older = [];
  for (const m of page.messages || []) {
    const msg = toMessage(m);
    if (msg.offset >= beforeOffset || view.byOffset.has(msg.offset)) continue;
    if (msg.id !== null && view.byId.has(msg.id)) continue;
    if (msg.own) msg.state = 'sent';
    older.push(msg);
  }
  older.sort((a, b) => a.offset - b.offset);
  for (const msg of older) {
    view.byOffset.set(msg.offset, msg);
    if (msg.id !== null) view.byId.set(msg.id, msg);
  }
  view.delivered = older.concat(view.delivered);
  view.hasOlder = Boolean(page.has_older) && older.length > 0;
  view.loadingOlder = false;
  list.invalidate();
}

/** After each render: counters on #messages, older pages, the jump button, read position. */
function afterRender() {
  const box = $('messages');
  box.dataset.room = view.room || '';
  box.dataset.count = String(view.delivered.length + view.unsent.length);
  const last = view.delivered[view.delivered.length - 1];
  box.dataset.lastOffset = last ? String(last.offset) : '';
  if (view.loaded && view.hasOlder && !view.loadingOlder && list.nearTop()) loadOlder();
  if (list.atBottom && view.unseen) {
    view.unseen = 0;
    $('jump-latest').hidden = true;
  }
  noteRead();
}

// ---------------------------------------------------------------------------------------------
// Read position

const read = { room: null, offset: 0, timer: 0, last: 0 };

/** Reports the newest delivered message on screen as read, while the window is in view. */
function noteRead() {
  if (!view.loaded || document.visibilityState !== 'visible' || !state.windowFocused) return;
  let newest = -1;
  for (const item of list.visibleRows()) {
    if (item.kind === 'msg' && item.msg.offset != null && item.msg.offset > newest) newest = item.msg.offset;
  }
  if (newest <= view.readOffset) return;
  view.readOffset = newest;
  // A read still waiting for another room goes out first rather than being overwritten.
  if (read.room !== null && read.room !== view.room) sendRead();
  read.room = view.room;
  read.offset = newest;
  const wait = read.last + READ_THROTTLE_MS - Date.now();
  if (wait <= 0) sendRead();
  else if (!read.timer) read.timer = setTimeout(sendRead, wait);
}

function sendRead() {
  clearTimeout(read.timer);
  read.timer = 0;
  if (read.room === null) return;
  read.last = Date.now();
  const args = { room: read.room, offset: read.offset };
  read.room = null;
  core.invoke('mark_read', args).catch((err) => showError(asError(err).message, asError(err).code));
}

// ---------------------------------------------------------------------------------------------
// Retry, links, live region

async function retry(id) {
  const msg = view.byId.get(id);
  if (msg && msg.offset == null) {
    msg.state = 'pending';
    msg.reason = null;
    list.invalidate();
  }
  try {
    await call('retry_message', { id });
  } catch {
    if (msg && msg.offset == null && msg.state === 'pending') {
      msg.state = 'failed';
      list.invalidate();
    }
  }
}

function onLinkClick(e) {
  const a = e.target.closest('a.link');
  if (!a) return;
  e.preventDefault();
  const url = safeHttpUrl(a.getAttribute('href'));
  if (url) call('open_link', { url }).catch(() => {});
}

let liveTimer = 0;
let liveText = '';

/** Announces incoming messages, once per burst of events (the newest wins). */
function announce(text) {
  liveText = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  if (liveTimer) return;
  // A timer rather than a frame: announcements must not wait for a hidden window to paint.
  liveTimer = setTimeout(() => {
    liveTimer = 0;
    const live = $('live');
    live.textContent = liveText;
    // Mirrored in attributes: WebDriver reads no text from a visually hidden element.
    live.dataset.text = liveText;
    live.dataset.count = String(Number(live.dataset.count || 0) + 1);
  }, 0);
}

// ---------------------------------------------------------------------------------------------
// Wiring

/** Creates the virtual list over #messages and wires the history's buttons and links. */
export function wireTimeline() {
  setList(new VirtualList({
    scroller: $('messages'),
    items: buildItems,
    render: renderItem,
    estimate,
    onRendered: afterRender,
  }));

  $('messages').addEventListener('click', (e) => {
    onLinkClick(e);
    if (e.target.closest('.older-retry')) {
      view.olderFailed = null;
      list.invalidate();
      loadOlder();
      return;
    }
    if (e.target.closest('.room-retry')) {
      retryRoom();
      return;
    }
    const r = e.target.closest('.retry');
    if (r) {
      const row = r.closest('.msg');
      if (row && row.dataset.id) retry(row.dataset.id);
    }
  });
  // Middle-click would open a link in the webview: route it through the core too. The context
  // menu's "Open link" would navigate the webview itself, so links get none.
  $('messages').addEventListener('auxclick', onLinkClick);
  $('messages').addEventListener('contextmenu', (e) => {
    if (e.target.closest('a.link')) e.preventDefault();
  });
  $('jump-latest').addEventListener('click', () => {
    list.scrollToBottom();
    $('jump-latest').hidden = true;
    view.unseen = 0;
    $('composer-input').focus();
  });
}
