// Chat screen: the open room's menu (people and invitations, leave) and its two dialogs, and
// what happens when the core says the user no longer belongs to a room.

import { wireMenu } from '../menu.js';
import { $, asError, core, showError, state, view } from './state.js';
import { closeRoom } from './timeline.js';
import { setPane } from './room-list.js';

let returnTo = null;

function roomName(id) {
  const room = state.rooms.find((r) => r.id === id);
  return room ? room.name : id;
}

// ---------------------------------------------------------------------------------------------
// The room menu

/** Closes the room menu (set once the page is wired). */
let closeMenu = () => {};

// ---------------------------------------------------------------------------------------------
// People: invite by user id, the member list, removing members (the owner)

function openDialog(id) {
  returnTo = document.activeElement;
  $(id).showModal();
}

function onDialogClose() {
  const target = returnTo;
  returnTo = null;
  if (target && document.contains(target) && !$('screen-chat').hidden) target.focus();
}

async function openPeople() {
  closeMenu();
  const room = view.room;
  if (!room) return;
  $('people-dialog-title').textContent = `People in ${roomName(room)}`;
  $('invite-user-input').value = '';
  setStatus('', null);
  $('members-error').textContent = '';
  $('member-list').replaceChildren();
  $('people-dialog').dataset.room = room;
  openDialog('people-dialog');
  $('invite-user-input').focus();
  await loadMembers(room);
}

function setStatus(text, kind) {
  const s = $('invite-status');
  s.textContent = text;
  if (kind) s.dataset.kind = kind;
  else delete s.dataset.kind;
}

async function loadMembers(room) {
  let m;
  try {
    m = await core.invoke('room_members', { room });
  } catch (err) {
    $('members-error').textContent = asError(err).message;
    return;
  }
  if ($('people-dialog').dataset.room !== room || !m) return;
  const items = (m.members || []).map((user) => {
    const li = document.createElement('li');
    li.className = 'member';
    li.dataset.user = user;
    const name = document.createElement('span');
    name.className = 'member-name';
    name.textContent = user;
    li.append(name);
    if (user === m.owner || user === state.me) {
      const tag = document.createElement('span');
      tag.className = 'member-tag';
      tag.textContent = [user === m.owner ? 'owner' : '', user === state.me ? 'you' : ''].filter(Boolean).join(', ');
      li.append(tag);
    }
    if (m.you_own && user !== state.me) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'remove-member';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${user} from the room`);
      li.append(remove);
    }
    return li;
  });
  $('member-list').replaceChildren(...items);
}

async function invite(e) {
  e.preventDefault();
  const room = $('people-dialog').dataset.room;
  const user = $('invite-user-input').value.trim();
  if (!user) {
    setStatus("Enter the person's user id.", 'error');
    $('invite-user-input').focus();
    return;
  }
  $('invite-send').disabled = true;
  try {
    await core.invoke('invite', { room, user });
    setStatus(`Invited ${user}. They can join from "New room".`, 'ok');
    $('invite-user-input').value = '';
  } catch (err) {
    setStatus(asError(err).message, 'error');
  } finally {
    $('invite-send').disabled = false;
  }
}

async function removeMember(user) {
  const room = $('people-dialog').dataset.room;
  $('members-error').textContent = '';
  try {
    await core.invoke('remove_member', { room, user });
  } catch (err) {
    $('members-error').textContent = asError(err).message;
    return;
  }
  await loadMembers(room);
}

// ---------------------------------------------------------------------------------------------
// Leaving

function openLeave() {
  closeMenu();
  const room = view.room;
  if (!room) return;
  const r = state.rooms.find((x) => x.id === room);
  $('leave-dialog-title').textContent = `Leave ${roomName(room)}?`;
  $('leave-text').textContent = r && r.private
    ? 'This room is private: to come back, someone in it has to invite you again.'
    : 'You can join it again from "New room".';
  $('leave-error').textContent = '';
  $('leave-dialog').dataset.room = room;
  openDialog('leave-dialog');
  $('leave-cancel').focus();
}

async function leave() {
  const room = $('leave-dialog').dataset.room;
  $('leave-confirm').disabled = true;
  try {
    await core.invoke('leave_room', { room });
    $('leave-dialog').close();
  } catch (err) {
    $('leave-error').textContent = asError(err).message;
  } finally {
    $('leave-confirm').disabled = false;
  }
}

/** The core says the user no longer belongs to `room`: close it if open, and say why. */
export function onRoomClosed({ room, reason }) {
  for (const id of ['people-dialog', 'leave-dialog']) {
    if ($(id).open && $(id).dataset.room === room) $(id).close();
  }
  const name = roomName(room);
  if (view.room === room) {
    closeRoom();
    setPane('rooms');
  }
  if (reason !== 'left the room') showError(`You are no longer in ${name}: ${reason}.`, 'room-closed');
}

/** Closes the room menu and dialogs (the chat screen goes away). */
export function closePeopleDialogs() {
  closeMenu();
  for (const id of ['people-dialog', 'leave-dialog']) if ($(id).open) $(id).close();
}

export function wireRoomPeople() {
  closeMenu = wireMenu($('room-menu-button'), $('room-menu'), $('room-menu').parentElement);
  $('room-people').addEventListener('click', openPeople);
  $('room-leave').addEventListener('click', openLeave);
  $('people-dialog-close').addEventListener('click', () => $('people-dialog').close());
  $('invite-form').addEventListener('submit', invite);
  $('member-list').addEventListener('click', (e) => {
    const b = e.target.closest('.remove-member');
    if (b) removeMember(b.closest('.member').dataset.user);
  });
  $('leave-cancel').addEventListener('click', () => $('leave-dialog').close());
  $('leave-confirm').addEventListener('click', leave);
  for (const id of ['people-dialog', 'leave-dialog']) {
    $(id).addEventListener('close', onDialogClose);
    $(id).addEventListener('click', (e) => { if (e.target === $(id)) $(id).close(); });
  }
}
