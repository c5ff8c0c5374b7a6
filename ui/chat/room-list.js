// Chat screen: the room list (member rooms) and the new-room dialog's list of rooms to join, both
// reconciled in place from the core's rooms events, and the narrow-window pane switch.

import { $, state, view } from './state.js';

export function setRooms(rooms) {
  state.rooms = Array.isArray(rooms) ? rooms : [];
  renderRooms();
  if ($('room-dialog').open) renderJoinList();
  const open = state.rooms.find((r) => r.id === view.room);
  if (open) {
    $('room-title').textContent = open.name;
    setBadge($('room-badge'), open);
  }
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

const SVG = 'http://www.w3.org/2000/svg';

/** A padlock drawn in the badge's text colour (no emoji font is needed). */
function lockIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'lock');
  svg.setAttribute('focusable', 'false');
  const body = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ x: 5, y: 11, width: 14, height: 9, rx: 2 })) body.setAttribute(k, String(v));
  const shackle = document.createElementNS(SVG, 'path');
  shackle.setAttribute('d', 'M8 11V8a4 4 0 0 1 8 0v3');
  svg.append(body, shackle);
  return svg;
}

/** '#' for a public room, a padlock for a private one. */
export function setBadge(badge, room) {
  const isPrivate = Boolean(room && room.private);
  if (badge.classList.contains('private') === isPrivate && badge.firstChild) return;
  badge.classList.toggle('private', isPrivate);
  if (isPrivate) badge.replaceChildren(lockIcon());
  else badge.replaceChildren('#');
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
  button.dataset.private = String(Boolean(room.private));
  setBadge(button.querySelector('.room-avatar'), room);
  const unread = button.querySelector('.unread');
  const count = unreadText(room);
  if (unread.textContent !== count) unread.textContent = count;
  unread.hidden = !room.unread;
  button.setAttribute('aria-label', room.unread ? `${room.name}, ${count} unread` : room.name);
  if (room.id === view.room) button.setAttribute('aria-current', 'true');
  else button.removeAttribute('aria-current');
}

/** Updates the room list (member rooms, in the core's order). */
export function renderRooms() {
  const members = state.rooms.filter((r) => r.member);
  reconcile($('room-list'), members, buildRoomButton, updateRoomButton);
  $('rooms-empty').hidden = members.length > 0;
}

export function markCurrentRoom() {
  for (const b of $('room-list').querySelectorAll('.room')) {
    if (b.dataset.room === view.room) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

/** Arrow keys, Home and End move between rooms (Tab still works: each room is a button). */
export function onRoomListKey(e) {
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

/** Narrow windows: show the room list or the room. */
export function setPane(which) {
  $('screen-chat').dataset.view = which;
}

function buildJoinButton(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'join-room';
  button.dataset.room = room.id;
  const action = document.createElement('span');
  action.className = 'join-action';
  action.setAttribute('aria-hidden', 'true');
  action.textContent = 'Join';
  const tag = document.createElement('span');
  tag.className = 'member-tag join-invited';
  tag.textContent = 'Invited';
  button.append(roomBadge(), roomLabel('join-name'), tag, action);
  return button;
}

function updateJoinButton(button, room) {
  const name = button.querySelector('.join-name');
  if (name.textContent !== room.name) name.textContent = room.name;
  setBadge(button.querySelector('.room-avatar'), room);
  button.querySelector('.join-invited').hidden = !room.invited;
  button.dataset.invited = String(Boolean(room.invited));
  button.setAttribute('aria-label', room.invited ? `Join ${room.name} (you are invited)` : `Join ${room.name}`);
}

/** The dialog's rooms to join: those the user is not a member of, invitations first. */
export function renderJoinList() {
  const others = state.rooms.filter((r) => !r.member)
    .sort((a, b) => Number(Boolean(b.invited)) - Number(Boolean(a.invited)));
  reconcile($('join-list'), others, buildJoinButton, updateJoinButton);
  $('join-empty').hidden = others.length > 0;
}
