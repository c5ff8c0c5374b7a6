// Confab chat screen: the room list, the open room's history (virtualized), the composer, the
// connection line and the new-room dialog. Display and input only: the core (Rust) keeps the
// connection, the outbox, unread counts, drafts and read positions, and tells this module what
// to show over one ordered channel (docs/chat-ui.md). Message text only ever reaches the DOM as
// text nodes.

import {
  MAX_MESSAGE_CHARS, appendLinkified, charCount, dayKey, dayLabel, fullTimeLabel, hueOf,
  initials, safeHttpUrl, timeLabel,
} from './format.js';
import { VirtualList } from './virtual-list.js';

/** Consecutive messages of one author within this time share one header. */
const GROUP_MS = 5 * 60 * 1000;
/** Drafts are saved this long after the last keystroke. */
const DRAFT_DEBOUNCE_MS = 300;
/** mark_read at most this often. */
const READ_THROTTLE_MS = 500;
/** The composer grows up to this many lines, then scrolls. */
const COMPOSER_MAX_LINES = 8;
/** The character counter shows from this length on. */
const COUNTER_FROM = MAX_MESSAGE_CHARS - 500;
/** Narrow windows show either the room list or the room (matches the CSS breakpoint). */
const NARROW = window.matchMedia('(max-width: 639.98px)');

const $ = (id) => document.getElementById(id);

let core = null; // window.__TAURI__.core
let list = null; // VirtualList over #messages

/** Everything the chat screen shows, as last reported by the core. */
const state = {
  me: null,
  rooms: [], // RoomView[] in the core's order
  notifications: false,
  windowFocused: true,
};

/** The open room's history. Delivered messages sorted by offset, then the user's unsent ones. */
const view = {
  room: null,
  loaded: false, // a room_reset has arrived for this room
  delivered: [],
  unsent: [],
  byId: new Map(), // message id -> message (each message shown once)
  byOffset: new Map(), // offset -> message
  hasOlder: false,
  loadingOlder: false,
  typed: false, // the user typed here before open_room returned the saved draft
  readOffset: 0, // highest offset reported read
  unseen: 0, // messages that arrived while scrolled up
};

/** message_state events for ids not known yet (the event can beat send_message's reply). */
const earlyStates = new Map();

/** Connection line. */
const conn = { state: null, seenConnected: false, episodes: 0, timer: 0 };
let errorCount = 0;

// ---------------------------------------------------------------------------------------------
// Calls into the core

/** The core's error as {code, message}. */
function asError(err) {
  if (err && typeof err === 'object') return { code: err.code || 'internal', message: err.message || String(err) };
  return { code: 'internal', message: String(err) };
}

/** Invokes a chat command; a rejection is shown in #chat-error and rethrown. */
async function call(command, args) {
  try {
    return await core.invoke(command, args);
  } catch (err) {
    const e = asError(err);
    showError(e.message, e.code);
    throw e;
  }
}

/** Shows an error in the bar above the chat; #chat-error[data-count] counts them. */
function showError(message, kind = 'error') {
  const text = String(message || 'Something went wrong').trim();
  errorCount += 1;
  const node = $('chat-error');
  node.textContent = text;
  node.dataset.count = String(errorCount);
  node.dataset.kind = kind;
  $('chat-error-bar').hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Events from the core

function onEvent(event) {
  switch (event.type) {
    case 'session': onSession(event); break;
    case 'rooms': setRooms(event.rooms); break;
    case 'message': onMessage(event); break;
    case 'message_state': onMessageState(event); break;
    case 'room_reset': onRoomReset(event); break;
    case 'connection_state': onConnection(event); break;
    case 'error': showError(event.message, event.kind); break;
    default: break;
  }
}

function onSession({ me, last_room: lastRoom, notifications }) {
  if (state.me !== null && state.me !== me) resetChat();
  state.me = me;
  setNotifications(Boolean(notifications));
  if (lastRoom && view.room !== lastRoom) openRoom(lastRoom, { focus: false });
  else if (!view.room) setPane('rooms');
}

/** A timestamp a Date can show (a bad sender clock must not break rendering). */
function safeTs(ts) {
  const n = Number(ts);
  return Number.isFinite(n) && Math.abs(n) <= 8.64e15 ? n : Date.now();
}

/** A message from the wire: plain fields only. */
function toMessage(m) {
  return {
    id: m.id == null ? null : String(m.id),
    offset: m.offset,
    author: String(m.author ?? ''),
    text: String(m.text ?? ''),
    ts: safeTs(m.ts),
    own: Boolean(m.own) || (state.me !== null && m.author === state.me),
    state: null,
    reason: null,
  };
}

function onMessage(event) {
  if (event.room !== view.room || !view.loaded) return; // the next room_reset covers it
  const { added, fromOthers } = addDelivered(toMessage(event));
  if (!added) return;
  if (fromOthers) announce(`${event.author}: ${event.text}`);
  if (!list.atBottom && fromOthers) {
    view.unseen += 1;
    $('jump-latest').hidden = false;
  }
  list.invalidateSoon();
}

/**
 * Adds a delivered message in offset order. A message already shown (same id, e.g. the user's
 * own pending row or one already moved by message_state `sent`) is updated, never duplicated.
 */
function addDelivered(msg) {
  if (view.byOffset.has(msg.offset)) return { added: false };
  const known = msg.id !== null ? view.byId.get(msg.id) : undefined;
  if (known) {
    if (known.offset != null) return { added: false };
    removeUnsent(known);
    Object.assign(known, { offset: msg.offset, ts: msg.ts, text: msg.text, author: msg.author, state: 'sent', reason: null });
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

function onMessageState({ id, room, state: st, offset, reason }) {
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

function applyState(msg, { state: st, offset, reason }) {
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

function onRoomReset({ room, messages, has_older: hasOlder, unsent }) {
  if (room !== view.room) return;
  const firstLoad = !view.loaded;
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

function onConnection(event) {
  const next = event.state;
  // An episode: the line leaves "connected" (only counted once it has been connected).
  if (conn.state === 'connected' && next !== 'connected' && conn.seenConnected) conn.episodes += 1;
  if (next === 'connected') {
    conn.seenConnected = true;
    // A connection error is over once connected again (the text and count stay for the record).
    if ($('chat-error').dataset.kind === 'transport') $('chat-error-bar').hidden = true;
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
        line.textContent = left > 0 ? `Reconnecting in ${left} s…` : 'Reconnecting…';
        if (left <= 0) clearInterval(conn.timer);
      };
      tick();
      conn.timer = setInterval(tick, 1000);
      break;
    }
    case 'offline':
      line.textContent = event.reason ? `Offline: ${event.reason}` : 'Offline';
      break;
    case 'signed_out':
      line.textContent = 'Session ended';
      break;
    default:
      line.textContent = '';
  }
}

// ---------------------------------------------------------------------------------------------
// Room list

function setRooms(rooms) {
  state.rooms = Array.isArray(rooms) ? rooms : [];
  renderRooms();
  if ($('room-dialog').open) renderJoinList();
  const open = state.rooms.find((r) => r.id === view.room);
  if (open) $('room-title').textContent = open.name;
}

function unreadText(room) {
  if (!room.unread) return '';
  return room.unread_more ? `${room.unread}+` : String(room.unread);
}

/**
 * Reconciles a list of room buttons with `rooms`, keyed by room id: existing elements are
 * updated in place and only moved when out of order, so a rooms event (one per incoming message
 * in any room) never replaces the element under a pointer, keyboard focus or a test's click.
 */
function reconcile(ul, rooms, build, update) {
  const existing = new Map();
  for (const li of ul.children) existing.set(li.firstElementChild.dataset.room, li);
  const keep = new Set(rooms.map((r) => r.id));
  for (const [id, li] of existing) if (!keep.has(id)) li.remove();
  let cursor = ul.firstElementChild;
  for (const room of rooms) {
    let li = existing.get(room.id);
    if (!li) {
      li = document.createElement('li');
      li.append(build(room));
    }
    update(li.firstElementChild, room);
    if (li !== cursor) ul.insertBefore(li, cursor);
    else cursor = cursor.nextElementSibling;
  }
}

/** A room's name in a wrapper that clips it with an ellipsis. */
function roomLabel(nameClass) {
  // The ellipsis sits on a wrapper: WebDriver reports an element with overflow:hidden itself
  // as not displayed, and the tests read .room-name.
  const label = document.createElement('span');
  label.className = 'room-label';
  const name = document.createElement('span');
  name.className = nameClass;
  label.append(name);
  return label;
}

function roomBadge() {
  const badge = document.createElement('span');
  badge.className = 'room-avatar';
  badge.setAttribute('aria-hidden', 'true');
  badge.textContent = '#';
  return badge;
}

function buildRoomButton(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'room';
  button.dataset.room = room.id;
  const unread = document.createElement('span');
  unread.className = 'unread';
  button.append(roomBadge(), roomLabel('room-name'), unread);
  return button;
}

function updateRoomButton(button, room) {
  const name = button.querySelector('.room-name');
  if (name.textContent !== room.name) name.textContent = room.name;
  const unread = button.querySelector('.unread');
  const count = unreadText(room);
  if (unread.textContent !== count) unread.textContent = count;
  unread.hidden = !room.unread;
  button.setAttribute('aria-label', room.unread ? `${room.name}, ${count} unread` : room.name);
  if (room.id === view.room) button.setAttribute('aria-current', 'true');
  else button.removeAttribute('aria-current');
}

/** Updates the room list (member rooms, in the core's order). */
function renderRooms() {
  const members = state.rooms.filter((r) => r.member);
  reconcile($('room-list'), members, buildRoomButton, updateRoomButton);
  $('rooms-empty').hidden = members.length > 0;
}

function markCurrentRoom() {
  for (const b of $('room-list').querySelectorAll('.room')) {
    if (b.dataset.room === view.room) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

/** Arrow keys, Home and End move between rooms (Tab still works: each room is a button). */
function onRoomListKey(e) {
  const buttons = [...$('room-list').querySelectorAll('.room')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  let next = null;
  if (e.key === 'ArrowDown') next = buttons[Math.min(buttons.length - 1, i + 1)];
  else if (e.key === 'ArrowUp') next = buttons[Math.max(0, i - 1)];
  else if (e.key === 'Home') next = buttons[0];
  else if (e.key === 'End') next = buttons[buttons.length - 1];
  if (next) {
    e.preventDefault();
    next.focus();
  }
}

/** Alt+ArrowUp/Down anywhere in the chat switch to the previous/next room. */
function onGlobalKey(e) {
  if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
  if ($('screen-chat').hidden || $('room-dialog').open) return;
  const ids = state.rooms.filter((r) => r.member).map((r) => r.id);
  if (ids.length === 0) return;
  const i = ids.indexOf(view.room);
  const step = e.key === 'ArrowUp' ? -1 : 1;
  const next = ids[i < 0 ? 0 : (i + step + ids.length) % ids.length];
  e.preventDefault();
  openRoom(next);
}

/** Narrow windows: show the room list or the room. */
function setPane(which) {
  $('screen-chat').dataset.view = which;
}

// ---------------------------------------------------------------------------------------------
// Opening a room

async function openRoom(id, { focus = true } = {}) {
  if (view.room === id) {
    setPane('room');
    if (focus) (NARROW.matches ? $('messages') : $('composer-input')).focus();
    return;
  }
  flushDraft();
  Object.assign(view, {
    room: id, loaded: false, delivered: [], unsent: [], byId: new Map(), byOffset: new Map(),
    hasOlder: false, loadingOlder: false, typed: false, readOffset: 0, unseen: 0,
  });
  const room = state.rooms.find((r) => r.id === id);
  $('room-title').textContent = room ? room.name : id;
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

function closeRoom() {
  flushDraft();
  Object.assign(view, {
    room: null, loaded: false, delivered: [], unsent: [], byId: new Map(), byOffset: new Map(),
    hasOlder: false, loadingOlder: false, typed: false, readOffset: 0, unseen: 0,
  });
  $('room-view').hidden = true;
  $('no-room').hidden = false;
  $('room-title').textContent = '';
  setComposerText('');
  markCurrentRoom();
  list.reset();
}

async function loadOlder() {
  if (!view.loaded || !view.hasOlder || view.loadingOlder || view.delivered.length === 0) return;
  const room = view.room;
  const beforeOffset = view.delivered[0].offset;
  view.loadingOlder = true;
  list.invalidate();
  let page = null;
  try {
    page = await call('load_older', { room, beforeOffset });
  } catch {
    // Shown in #chat-error. Stop asking until the room is reset or reopened.
    if (view.room === room) {
      view.loadingOlder = false;
      view.hasOlder = false;
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

// ---------------------------------------------------------------------------------------------
// History rows (virtualized)

/** The rows of the open room: a top row, day separators and messages. */
function buildItems() {
  const items = [];
  if (!view.room) return items;
  if (!view.loaded) {
    items.push({ key: 'top', kind: 'loading', sig: 'loading' });
    return items;
  }
  const roomName = $('room-title').textContent;
  items.push(view.hasOlder
    ? { key: 'top', kind: 'older', sig: view.loadingOlder ? 'older-loading' : 'older' }
    : {
      key: 'top', kind: 'start', name: roomName, empty: view.delivered.length + view.unsent.length === 0,
      sig: `start:${roomName}:${view.delivered.length + view.unsent.length === 0}`,
    });

  const now = Date.now();
  const days = new Set();
  let prev = null;
  let prevDay = null;
  const add = (msg) => {
    // Memoized per message: a Date per message per rebuild would dominate with 10,000 loaded.
    if (msg.dayTs !== msg.ts) {
      msg.day = dayKey(msg.ts);
      msg.dayTs = msg.ts;
    }
    const day = msg.day;
    if (day !== prevDay) {
      // Keys must be unique; a clock-skewed pending message can revisit a day.
      let key = `d:${day}`;
      for (let n = 2; days.has(key); n += 1) key = `d:${day}#${n}`;
      days.add(key);
      const label = dayLabel(msg.ts, now);
      items.push({ key, kind: 'day', label, ts: msg.ts, sig: label });
      prevDay = day;
      prev = null;
    }
    const grouped = prev !== null && prev.author === msg.author && prev.own === msg.own
      && msg.ts - prev.ts < GROUP_MS && msg.ts >= prev.ts;
    const key = msg.id !== null ? `m:${msg.id}` : `o:${msg.offset}`;
    const sig = `${grouped ? 'g' : 'h'}|${msg.state}|${msg.offset ?? ''}|${msg.reason ?? ''}`;
    items.push({ key, kind: 'msg', msg, grouped, sig });
    prev = msg;
  };
  for (const msg of view.delivered) add(msg);
  for (const msg of view.unsent) add(msg);
  items.push({ key: 'tail', kind: 'tail', sig: 'tail' });
  return items;
}

/** A height guess for rows not measured yet. */
function estimate(item, width) {
  if (item.kind === 'day') return 44;
  if (item.kind === 'tail') return 14;
  if (item.kind !== 'msg') return item.kind === 'start' ? 120 : 48;
  const perLine = Math.max(20, Math.floor((Math.min(width, 900) * 0.62) / 8));
  let lines = 0;
  for (const para of item.msg.text.split('\n')) lines += Math.max(1, Math.ceil(para.length / perLine));
  return (item.grouped ? 12 : 36) + lines * 22 + (item.msg.own && item.msg.state !== 'sent' ? 20 : 0);
}

function renderItem(item) {
  if (item.kind === 'msg') return renderMessage(item);
  const row = document.createElement('div');
  if (item.kind === 'tail') {
    row.className = 'history-tail';
    row.setAttribute('aria-hidden', 'true');
    return row;
  }
  if (item.kind === 'day') {
    row.className = 'day-sep';
    row.setAttribute('role', 'separator');
    const label = document.createElement('span');
    label.textContent = item.label;
    row.append(label);
    return row;
  }
  row.className = `history-top history-${item.kind}`;
  if (item.kind === 'start') {
    const badge = document.createElement('div');
    badge.className = 'start-badge';
    badge.setAttribute('aria-hidden', 'true');
    badge.textContent = '#';
    const title = document.createElement('p');
    title.className = 'start-title';
    title.textContent = `This is the start of ${item.name}`;
    row.append(badge, title);
    if (item.empty) {
      const hint = document.createElement('p');
      hint.className = 'start-hint';
      hint.textContent = 'No messages yet. Say hello!';
      row.append(hint);
    }
  } else {
    const spin = document.createElement('div');
    spin.className = 'mini-spinner';
    spin.setAttribute('aria-hidden', 'true');
    const text = document.createElement('span');
    text.textContent = item.kind === 'loading' ? 'Loading messages…' : 'Loading older messages…';
    row.append(spin, text);
  }
  return row;
}

function renderMessage({ msg, grouped }) {
  const row = document.createElement('div');
  row.className = `msg${msg.own ? ' own' : ''}${grouped ? ' grouped' : ''}`;
  if (msg.offset != null) row.dataset.offset = String(msg.offset);
  else row.dataset.id = msg.id;
  row.dataset.author = msg.author;
  if (msg.own) row.dataset.state = msg.state || 'sent';

  const avatar = document.createElement('div');
  avatar.className = 'msg-avatar';
  avatar.setAttribute('aria-hidden', 'true');
  if (!grouped && !msg.own) {
    avatar.textContent = initials(msg.author);
    avatar.style.setProperty('--hue', String(hueOf(msg.author)));
  } else if (grouped && !msg.own) {
    // A grouped row has no header: its time shows in the avatar column on hover.
    avatar.classList.add('gutter-time');
    avatar.textContent = timeLabel(msg.ts);
  }

  const body = document.createElement('div');
  body.className = 'msg-body';
  const head = document.createElement('div');
  head.className = 'msg-head';
  const author = document.createElement('span');
  author.className = 'msg-author';
  author.textContent = msg.author;
  if (!msg.own) author.style.setProperty('--hue', String(hueOf(msg.author)));
  const time = document.createElement('time');
  time.className = 'msg-time';
  time.dateTime = new Date(msg.ts).toISOString();
  time.title = fullTimeLabel(msg.ts);
  time.textContent = timeLabel(msg.ts);
  head.append(author, time);

  const bubble = document.createElement('div');
  bubble.className = 'msg-text';
  bubble.dir = 'auto'; // right-to-left messages read right
  appendLinkified(bubble, msg.text);
  body.append(head, bubble);

  if (msg.own && msg.state && msg.state !== 'sent') {
    const status = document.createElement('div');
    status.className = `msg-status ${msg.state}`;
    if (msg.state === 'pending') {
      status.textContent = 'Sending…';
    } else {
      const why = document.createElement('span');
      why.textContent = msg.reason ? `Not sent: ${msg.reason}` : 'Not sent';
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.textContent = 'Retry';
      retry.setAttribute('aria-label', 'Retry sending this message');
      status.append(why, retry);
    }
    body.append(status);
  }
  row.append(avatar, body);
  return row;
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
// Composer

const draft = { room: null, timer: 0 };

function setComposerText(text) {
  const input = $('composer-input');
  input.value = text;
  autoGrow();
  updateComposer();
}

function autoGrow() {
  const input = $('composer-input');
  const box = input.parentElement;
  const style = getComputedStyle(input);
  const line = parseFloat(style.lineHeight) || 22;
  const extra = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
  // Measuring needs height:auto for a moment; the box keeps its size meanwhile, or the history
  // above would grow, clamp its scroll position and lose "follow the bottom".
  box.style.minHeight = `${box.offsetHeight}px`;
  input.style.height = 'auto';
  const max = line * COMPOSER_MAX_LINES + extra;
  const wanted = Math.min(input.scrollHeight, max);
  input.style.height = `${Math.max(wanted, line + extra)}px`;
  box.style.minHeight = '';
  input.classList.toggle('scrolls', input.scrollHeight > max);
}

function sendable(text) {
  const n = charCount(text);
  return text.trim().length > 0 && n <= MAX_MESSAGE_CHARS;
}

function updateComposer() {
  const text = $('composer-input').value;
  const n = charCount(text);
  $('send').disabled = !view.room || !sendable(text);
  const counter = $('char-count');
  counter.hidden = n < COUNTER_FROM;
  counter.textContent = `${n} / ${MAX_MESSAGE_CHARS}`;
  counter.classList.toggle('over', n > MAX_MESSAGE_CHARS);
}

function onComposerInput() {
  view.typed = true;
  autoGrow();
  updateComposer();
  if (!view.room) return;
  clearTimeout(draft.timer);
  draft.room = view.room;
  draft.timer = setTimeout(flushDraft, DRAFT_DEBOUNCE_MS);
}

/** Saves a pending draft now (room switch, window hidden, page leaving). */
function flushDraft() {
  if (!draft.timer) return;
  clearTimeout(draft.timer);
  draft.timer = 0;
  if (draft.room === null || draft.room !== view.room) return;
  const text = $('composer-input').value;
  core.invoke('save_draft', { room: draft.room, text }).catch((err) => showError(asError(err).message, asError(err).code));
}

function onComposerKey(e) {
  // PageUp/PageDown scroll the history without leaving the composer.
  if ((e.key === 'PageUp' || e.key === 'PageDown') && !e.shiftKey) {
    e.preventDefault();
    const box = $('messages');
    box.scrollBy(0, (e.key === 'PageUp' ? -1 : 1) * box.clientHeight * 0.85);
    return;
  }
  // An IME composing text uses Enter to commit it (keyCode 229 covers WebKit's older events).
  if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  e.preventDefault();
  send();
}

async function send() {
  const input = $('composer-input');
  const text = input.value;
  const room = view.room;
  if (!room || !sendable(text)) return;
  clearTimeout(draft.timer); // send_message clears the saved draft
  draft.timer = 0;
  setComposerText('');
  view.typed = true;
  list.scrollToBottom();
  let id;
  try {
    id = await call('send_message', { room, text });
  } catch {
    // Shown in #chat-error; give the text back so nothing typed is lost.
    if (view.room === room && input.value === '') setComposerText(text);
    return;
  }
  if (view.room !== room || id == null) return;
  const key = String(id);
  if (view.byId.has(key)) return; // already delivered (the event beat the reply)
  const msg = { id: key, offset: null, author: state.me ?? '', text, ts: Date.now(), own: true, state: 'pending', reason: null };
  view.unsent.push(msg);
  view.byId.set(key, msg);
  const early = earlyStates.get(key);
  if (early) {
    earlyStates.delete(key);
    applyState(msg, early);
  }
  list.scrollToBottom();
  list.invalidate();
}

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

// ---------------------------------------------------------------------------------------------
// Live region, notifications toggle

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

function setNotifications(on) {
  state.notifications = on;
  $('notify-toggle').setAttribute('aria-checked', String(on));
}

async function toggleNotifications() {
  const next = !state.notifications;
  setNotifications(next);
  try {
    await call('set_notifications', { enabled: next });
  } catch {
    setNotifications(!next);
  }
}

// ---------------------------------------------------------------------------------------------
// New room dialog

let dialogReturn = null;

function buildJoinButton(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'join-room';
  button.dataset.room = room.id;
  const action = document.createElement('span');
  action.className = 'join-action';
  action.setAttribute('aria-hidden', 'true');
  action.textContent = 'Join';
  button.append(roomBadge(), roomLabel('join-name'), action);
  return button;
}

function updateJoinButton(button, room) {
  const name = button.querySelector('.join-name');
  if (name.textContent !== room.name) name.textContent = room.name;
  button.setAttribute('aria-label', `Join ${room.name}`);
}

/** The dialog's rooms to join: those the user is not a member of. */
function renderJoinList() {
  const others = state.rooms.filter((r) => !r.member);
  reconcile($('join-list'), others, buildJoinButton, updateJoinButton);
  $('join-empty').hidden = others.length > 0;
}

function openDialog() {
  const dialog = $('room-dialog');
  if (dialog.open) return;
  dialogReturn = document.activeElement;
  $('room-name-input').value = '';
  $('room-dialog-error').textContent = '';
  setDialogBusy(false);
  renderJoinList();
  dialog.showModal();
  $('room-name-input').focus();
  // The list may have changed on the server since the last rooms event.
  core.invoke('list_rooms').then((rooms) => { if (Array.isArray(rooms)) setRooms(rooms); }).catch(() => {});
}

/** Closes the new-room dialog (also used when the chat screen goes away). */
export function closeChatDialog() {
  const dialog = $('room-dialog');
  if (dialog && dialog.open) dialog.close();
}

function onDialogClose() {
  const target = dialogReturn;
  dialogReturn = null;
  if (target && document.contains(target) && !$('screen-chat').hidden) target.focus();
}

/** Keeps Tab inside the dialog (showModal makes the rest inert; this also wraps around). */
function onDialogKey(e) {
  if (e.key !== 'Tab') return;
  const focusable = [...$('room-dialog').querySelectorAll('button, input')].filter((n) => !n.disabled && n.offsetParent !== null);
  if (focusable.length === 0) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}

function setDialogBusy(busy) {
  $('room-create').disabled = busy;
  for (const b of $('join-list').querySelectorAll('button')) b.disabled = busy;
}

/** A room the core returned (created or joined): into the list, then open it. */
function adopt(room) {
  if (!room || !room.id) return;
  const i = state.rooms.findIndex((r) => r.id === room.id);
  if (i >= 0) state.rooms[i] = room;
  else state.rooms.push(room);
  renderRooms();
  dialogReturn = null;
  closeChatDialog();
  openRoom(room.id);
}

async function dialogCall(command, args) {
  setDialogBusy(true);
  try {
    return await core.invoke(command, args);
  } catch (err) {
    $('room-dialog-error').textContent = asError(err).message;
    return null;
  } finally {
    setDialogBusy(false);
  }
}

async function createRoom(e) {
  e.preventDefault();
  const name = $('room-name-input').value.trim();
  const n = charCount(name);
  if (n === 0) {
    $('room-dialog-error').textContent = 'Give the room a name.';
    $('room-name-input').focus();
    return;
  }
  if (n > 100) {
    $('room-dialog-error').textContent = 'A room name can be at most 100 characters.';
    return;
  }
  $('room-dialog-error').textContent = '';
  adopt(await dialogCall('create_room', { name }));
}

async function joinRoom(id) {
  $('room-dialog-error').textContent = '';
  adopt(await dialogCall('join_room', { id }));
}

// ---------------------------------------------------------------------------------------------
// Links

function onLinkClick(e) {
  const a = e.target.closest('a.link');
  if (!a) return;
  e.preventDefault();
  const url = safeHttpUrl(a.getAttribute('href'));
  if (url) call('open_link', { url }).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  list = new VirtualList({
    scroller: $('messages'),
    items: buildItems,
    render: renderItem,
    estimate,
    onRendered: afterRender,
  });

  $('room-list').addEventListener('click', (e) => {
    const b = e.target.closest('.room');
    if (b) openRoom(b.dataset.room);
  });
  $('room-list').addEventListener('keydown', onRoomListKey);
  document.addEventListener('keydown', onGlobalKey);
  $('back-to-rooms').addEventListener('click', () => {
    setPane('rooms');
    const current = $('room-list').querySelector('.room[aria-current="true"]');
    if (current) current.focus();
  });

  $('messages').addEventListener('click', (e) => {
    onLinkClick(e);
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

  const input = $('composer-input');
  input.addEventListener('input', onComposerInput);
  input.addEventListener('keydown', onComposerKey);
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });

  $('notify-toggle').addEventListener('click', toggleNotifications);
  $('chat-error-dismiss').addEventListener('click', () => { $('chat-error-bar').hidden = true; });

  $('new-room').addEventListener('click', openDialog);
  $('room-dialog-close').addEventListener('click', closeChatDialog);
  $('room-dialog').addEventListener('close', onDialogClose);
  $('room-dialog').addEventListener('keydown', onDialogKey);
  // A click on the backdrop (the dialog element itself, outside its content) closes it.
  $('room-dialog').addEventListener('click', (e) => { if (e.target === $('room-dialog')) closeChatDialog(); });
  $('room-form').addEventListener('submit', createRoom);
  $('join-list').addEventListener('click', (e) => {
    const b = e.target.closest('.join-room');
    if (b) joinRoom(b.dataset.room);
  });

  // Drafts are saved when the window goes away; reads are reported when it comes back.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flushDraft();
    else list.schedule();
  });
  window.addEventListener('pagehide', flushDraft);
  window.addEventListener('blur', () => { state.windowFocused = false; });
  // Input reaching the page means the window has focus, whatever focus events said.
  for (const type of ['pointerdown', 'keydown', 'wheel']) {
    window.addEventListener(type, () => {
      if (state.windowFocused) return;
      state.windowFocused = true;
      list.schedule();
    }, { capture: true, passive: true });
  }
  window.addEventListener('focus', () => {
    state.windowFocused = true;
    list.schedule();
  });
  NARROW.addEventListener('change', () => list.schedule());
  // "Today" becomes "Yesterday" at midnight.
  let today = dayKey(Date.now());
  setInterval(() => {
    const now = dayKey(Date.now());
    if (now !== today) {
      today = now;
      list.invalidate();
    }
  }, 60 * 1000);
}

/** Subscribes to the chat channel. Called once at start; the core sends `session` when signed in. */
export async function startChat(tauriCore) {
  core = tauriCore;
  wire();
  updateComposer();
  const channel = new core.Channel();
  channel.onmessage = onEvent;
  try {
    await core.invoke('subscribe_chat', { channel });
  } catch (err) {
    showError(asError(err).message, asError(err).code);
  }
}

/** The chat screen became visible (signed in): lay the history out again. */
export function chatShown() {
  if (!view.room) setPane('rooms');
  if (list) list.schedule();
}

/** Forgets everything shown (signed out, or another user signed in). */
export function resetChat() {
  if (!list) return;
  closeChatDialog();
  closeRoom();
  state.me = null;
  state.rooms = [];
  renderRooms();
  earlyStates.clear();
  $('live').textContent = '';
  $('jump-latest').hidden = true;
}
