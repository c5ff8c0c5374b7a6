// Chat screen: what every part shares. The state the core last reported, the open room's
// history, and calls into the core that show their failures in the error bar.

/** Narrow windows show either the room list or the room (matches the CSS breakpoint). */
export const NARROW = window.matchMedia('(max-width: 639.98px)');

export const $ = (id) => document.getElementById(id);

// Set once at start (startChat, wireTimeline); importers see them through live bindings.
export let core = null; // window.__TAURI__.core
export let list = null; // VirtualList over #messages

export function setCore(tauriCore) {
  core = tauriCore;
}

export function setList(virtualList) {
  list = virtualList;
}

/** Everything the chat screen shows, as last reported by the core. */
export const state = {
  me: null,
  rooms: [], // RoomView[] in the core's order
  notifications: false,
  windowFocused: true,
};

/** The open room's history. Delivered messages sorted by offset, then the user's unsent ones. */
export const view = {
  room: null,
  loaded: false, // a room-reset has arrived for this room
  delivered: [],
  unsent: [],
  byId: new Map(), // message id -> message (each message shown once)
  byOffset: new Map(), // offset -> message
  hasOlder: false,
  loadingOlder: false,
  olderFailed: null, // why the last older page failed (Retry asks again)
  failed: null, // {message, retryInSecs}: the room's latest page could not be loaded
  typed: false, // the user typed here before open_room returned the saved draft
  readOffset: 0, // highest offset reported read
  unseen: 0, // messages that arrived while scrolled up
};

/** message-state events for ids not known yet (the event can beat send_message's reply). */
export const earlyStates = new Map();

let errorCount = 0;

// ---------------------------------------------------------------------------------------------
// Calls into the core

/** The core's error as {code, message}. */
export function asError(err) {
  if (err && typeof err === 'object') return { code: err.code || 'internal', message: err.message || String(err) };
  return { code: 'internal', message: String(err) };
}

/** Invokes a chat command; a rejection is shown in #chat-error and rethrown. */
export async function call(command, args) {
  try {
    return await core.invoke(command, args);
  } catch (err) {
    const e = asError(err);
    showError(e.message, e.code);
    throw e;
  }
}

/** Shows an error in the bar above the chat; #chat-error[data-count] counts them. */
export function showError(message, code = 'error') {
  const text = String(message || 'Something went wrong').trim();
  errorCount += 1;
  const node = $('chat-error');
  node.textContent = text;
  node.dataset.count = String(errorCount);
  node.dataset.code = code;
  $('chat-error-bar').hidden = false;
}
