// Confab chat screen: the room list, the open room's history (virtualized), the composer, the
// connection line and the new-room dialog. Display and input only: the core (Rust) keeps the
// connection, the outbox, unread counts, drafts and read positions, and tells this module what
// to show over one ordered channel (docs/ui-contract.md). Each part is a module under chat/; this
// one routes the core's events to them, wires them up and is what app.js imports.

import { dayKey } from './format.js';
import { flushDraft, updateComposer, wireComposer } from './chat/composer.js';
import { onConnection, wireConnectionLine } from './chat/connection-line.js';
import { closeChatDialog as closeRoomDialog, wireRoomDialog } from './chat/room-dialog.js';
import { closePeopleDialogs, onRoomClosed, wireRoomPeople } from './chat/room-people.js';
import {
  onRoomListKey, renderRooms, setPane, setRooms,
} from './chat/room-list.js';
import {
  $, NARROW, asError, call, core, earlyStates, list, setCore, showError, state, view,
} from './chat/state.js';
import {
  closeRoom, onMessage, onMessageState, onRoomFailed, onRoomReset, openRoom, wireTimeline,
} from './chat/timeline.js';

/** Closes every chat dialog and menu (the chat screen goes away). */
export function closeChatDialog() {
  closeRoomDialog();
  closePeopleDialogs();
}

// ---------------------------------------------------------------------------------------------
// Events from the core

function onEvent(event) {
  switch (event.type) {
    case 'session': onSession(event); break;
    case 'rooms': setRooms(event.rooms); break;
    case 'message': onMessage(event); break;
    case 'message-state': onMessageState(event); break;
    case 'room-reset': onRoomReset(event); break;
    case 'room-failed': onRoomFailed(event); break;
    case 'room-closed': onRoomClosed(event); break;
    case 'connection-state': onConnection(event); break;
    case 'error': showError(event.message, event.code); break;
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

// ---------------------------------------------------------------------------------------------
// Notifications toggle, room switching

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

/** Alt+ArrowUp/Down anywhere in the chat switch to the previous/next room. */
function onGlobalKey(e) {
  if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
  if ($('screen-chat').hidden || document.querySelector('dialog[open]')) return;
  const ids = state.rooms.filter((r) => r.member).map((r) => r.id);
  if (ids.length === 0) return;
  const i = ids.indexOf(view.room);
  const step = e.key === 'ArrowUp' ? -1 : 1;
  const next = ids[i < 0 ? 0 : (i + step + ids.length) % ids.length];
  e.preventDefault();
  openRoom(next);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  wireTimeline();

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

  wireComposer();

  $('notify-toggle').addEventListener('click', toggleNotifications);
  wireConnectionLine();

  wireRoomDialog();
  wireRoomPeople();

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
  setCore(tauriCore);
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
