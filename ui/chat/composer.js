// Chat screen: the composer. It grows with its text, counts characters near the limit, saves
// the draft shortly after typing stops and sends on Enter.

import { MAX_MESSAGE_CHARS, charCount } from '../format.js';
import { applyState } from './messages.js';
import {
  $, asError, call, core, earlyStates, list, showError, state, view,
} from './state.js';

/** Drafts are saved this long after the last keystroke. */
const DRAFT_DEBOUNCE_MS = 300;
/** The composer grows up to this many lines, then scrolls. */
const COMPOSER_MAX_LINES = 8;
/** The character counter shows from this length on. */
const COUNTER_FROM = MAX_MESSAGE_CHARS - 500;

const draft = { room: null, timer: 0 };

export function setComposerText(text) {
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

export function updateComposer() {
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
  $('composer-input').dataset.draft = 'pending';
  draft.timer = setTimeout(flushDraft, DRAFT_DEBOUNCE_MS);
}

/** Saves a pending draft now (room switch, window hidden, page leaving). */
export function flushDraft() {
  if (!draft.timer) return;
  clearTimeout(draft.timer);
  draft.timer = 0;
  if (draft.room === null || draft.room !== view.room) return;
  const input = $('composer-input');
  const text = input.value;
  // `data-draft` says where the typed text is: `pending` (not saved yet), `saved` (durable in
  // the account's encrypted store), `failed` (the error bar says why).
  core.invoke('save_draft', { room: draft.room, text })
    .then(() => { if (input.value === text && !draft.timer) input.dataset.draft = 'saved'; })
    .catch((err) => {
      input.dataset.draft = 'failed';
      showError(asError(err).message, asError(err).code);
    });
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

export function wireComposer() {
  const input = $('composer-input');
  input.addEventListener('input', onComposerInput);
  input.addEventListener('keydown', onComposerKey);
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
}
