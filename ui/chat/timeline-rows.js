// Chat screen: the open room's history as rows for the virtual list (items, height guesses, row
// elements). Message text only ever reaches the DOM as text nodes.

import {
  appendLinkified, dayKey, dayLabel, fullTimeLabel, hueOf, initials, timeLabel,
} from '../format.js';
import { $, view } from './state.js';

/** Consecutive messages of one author within this time share one header. */
const GROUP_MS = 5 * 60 * 1000;

/** The rows of the open room: a top row, day separators and messages. */
export function buildItems() {
  const items = [];
  if (!view.room) return items;
  if (!view.loaded) {
    items.push(view.failed
      ? { key: 'top', kind: 'failed', failed: view.failed, sig: `failed:${view.failed.message}` }
      : { key: 'top', kind: 'loading', sig: 'loading' });
    return items;
  }
  const roomName = $('room-title').textContent;
  let top;
  if (view.hasOlder && view.olderFailed !== null) {
    top = { key: 'top', kind: 'older-failed', message: view.olderFailed, sig: `older-failed:${view.olderFailed}` };
  } else if (view.hasOlder) {
    top = { key: 'top', kind: 'older', sig: view.loadingOlder ? 'older-loading' : 'older' };
  }
  items.push(top || {
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
    const sig = `${grouped ? 'g' : 'h'}|${msg.state}|${msg.offset ?? ''}|${msg.reason ?? ''}|${msg.name}`;
    items.push({ key, kind: 'msg', msg, grouped, sig });
    prev = msg;
  };
  for (const msg of view.delivered) add(msg);
  for (const msg of view.unsent) add(msg);
  if (view.failed) {
    // Loaded before, but the latest page failed since: what is shown may be out of date.
    items.push({ key: 'stale', kind: 'failed', failed: view.failed, sig: `stale:${view.failed.message}` });
  }
  items.push({ key: 'tail', kind: 'tail', sig: 'tail' });
  return items;
}

/** A height guess for rows not measured yet. */
export function estimate(item, width) {
  if (item.kind === 'day') return 44;
  if (item.kind === 'tail') return 14;
  if (item.kind !== 'msg') return item.kind === 'start' ? 120 : (item.kind.endsWith('failed') ? 64 : 48);
  const perLine = Math.max(20, Math.floor((Math.min(width, 900) * 0.62) / 8));
  let lines = 0;
  for (const para of item.msg.text.split('\n')) lines += Math.max(1, Math.ceil(para.length / perLine));
  return (item.grouped ? 12 : 36) + lines * 22 + (item.msg.own && item.msg.state !== 'sent' ? 20 : 0);
}

export function renderItem(item) {
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
  if (item.kind === 'failed' || item.kind === 'older-failed') {
    row.setAttribute('role', 'alert');
    const text = document.createElement('span');
    const retry = document.createElement('button');
    retry.type = 'button';
    if (item.kind === 'failed') {
      const again = item.failed.retryInSecs > 0 ? ` Trying again in ${item.failed.retryInSecs} s.` : '';
      text.textContent = `Could not load this room's messages: ${item.failed.message}.${again}`;
      retry.className = 'room-retry';
      retry.setAttribute('aria-label', "Retry loading this room's messages");
    } else {
      text.textContent = `Could not load older messages: ${item.message}.`;
      retry.className = 'older-retry';
      retry.setAttribute('aria-label', 'Retry loading older messages');
    }
    retry.textContent = 'Retry';
    row.append(text, retry);
    return row;
  }
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
  // People are shown by the display name the server attested, else by their id; colours and
  // grouping follow the id, which cannot be spoofed by picking someone's name.
  const shown = msg.name || msg.author;
  if (!grouped && !msg.own) {
    avatar.textContent = initials(shown);
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
  author.textContent = shown;
  if (shown !== msg.author) author.title = msg.author;
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
