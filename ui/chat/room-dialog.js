// Chat screen: the new-room dialog. Creates a room by name or joins one, then opens it; keeps
// focus inside while open and gives it back when closed.

import { charCount } from '../format.js';
import { renderJoinList, renderRooms, setRooms } from './room-list.js';
import { $, asError, core, state } from './state.js';
import { openRoom } from './timeline.js';

let dialogReturn = null;

function openDialog() {
  const dialog = $('room-dialog');
  if (dialog.open) return;
  dialogReturn = document.activeElement;
  $('room-name-input').value = '';
  $('room-private').checked = true;
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
  adopt(await dialogCall('create_room', { name, private: $('room-private').checked }));
}

async function joinRoom(id) {
  $('room-dialog-error').textContent = '';
  adopt(await dialogCall('join_room', { id }));
}

export function wireRoomDialog() {
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
}
