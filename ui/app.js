// Confab UI: renders what the Rust core reports and asks it to do things. It never sees a token:
// the core sends only what is displayed (user name, email, status, errors in plain words).
// The chat screen (rooms, history, composer) lives in chat.js.

import { wireMenu } from './menu.js';

const tauri = window.__TAURI__;
// The workspace signs in with Confab's own password form (the password profile) instead of the
// system browser; the core told the window at creation.
const PASSWORD_SIGN_IN = window.__CONFAB_SIGN_IN__ === 'password';

// The chat part (chat.js and chat/, virtual-list.js, format.js) is loaded when it may be needed,
// not at launch: on the sign-in screen it is fetched once sign-in is under way (the person is in
// the browser then), and in every other case at once. Someone looking at the sign-in screen pays
// neither its start-up time nor its memory (docs/ui-contract.md, "First screen").
let chat = null; // the chat module, once loaded
let chatLoad = null; // its import, once asked for
let chatStarted = false;
let signedInName = ''; // the signed-in user's name, for the sign-out question

function loadChat() {
  if (!chatLoad) {
    chatLoad = import('./chat.js').then(
      (module) => {
        chat = module;
        performance.mark('confab:chat-loaded'); // User Timing, no data (tests read it)
        return module;
      },
      (err) => {
        chatLoad = null; // asked again at the next need
        throw err;
      },
    );
  }
  return chatLoad;
}

/** Starts the chat part (once) and lays it out if the chat screen is still the one shown. */
async function openChat() {
  let module;
  try {
    module = await loadChat();
  } catch (err) {
    onEvent({ type: 'sign-in-failed', code: 'internal', message: `Confab could not load its chat view (${err && err.message ? err.message : err})` });
    return;
  }
  if (!chatStarted) {
    chatStarted = true;
    module.startChat(tauri.core);
  }
  if (current === 'chat') module.chatShown();
}

const screens = {
  busy: document.getElementById('screen-busy'),
  unlock: document.getElementById('screen-unlock'),
  vaultBroken: document.getElementById('screen-vault-broken'),
  signIn: document.getElementById('screen-sign-in'),
  waiting: document.getElementById('screen-waiting'),
  error: document.getElementById('screen-error'),
  chat: document.getElementById('screen-chat'),
};
const el = (id) => document.getElementById(id);

/** Extra advice per error code, in plain words; the core's message says what happened. */
const HINTS = {
  'state-mismatch': 'For your safety Confab ignored a sign-in response it did not ask for. Start again from here.',
  'callback-replayed': 'That sign-in link was already used. Start again from here.',
  'login-expired': 'Sign-in requests are only valid for a few minutes.',
  'access-denied': 'If this was a mistake, try again and approve the request in your browser.',
  'no-pending-login': 'Start signing in from this window, then finish in your browser.',
  'discovery': 'Check your network connection and the identity provider address in the settings.',
  'network': 'Check your network connection, then try again.',
  'config': 'Fix the configuration file, then restart Confab.',
  'resource-refused': 'Fix chat_resource in the configuration file (or leave it empty), then restart Confab.',
  'browser': 'Confab could not open your web browser.',
  'vault-locked': 'Unlock Confab with your passphrase first.',
};

/** Said with a refused redirect while a sign-in is pending. */
const REFUSED_HINT = 'Confab ignored it; finish signing in in the browser window it opened for you.';

/** Why the sign-in screen is shown, in plain words. */
const SIGNED_OUT = {
  'cancelled': ['Sign-in cancelled.', ''],
  'signed-out': ['Signed out.', 'You signed out.'],
  'session-ended': ['Your session ended, please sign in again.', 'Your session ended, please sign in again.'],
};

let countdownTimer = null;
// Counts failure events; exposed as #error[data-seq] so tests can tell a repeated error apart.
let failures = 0;
let current = 'none';

let signInMarked = false;

function show(name) {
  for (const [key, node] of Object.entries(screens)) node.hidden = key !== name;
  // From here on the screens' `hidden` flags alone decide (see first-screen.js).
  delete document.documentElement.dataset.firstScreen;
  // User Timing mark of the first time "Sign in" is on screen (read by `cargo xtask bench-ui`).
  if (name === 'signIn' && !signInMarked) {
    signInMarked = true;
    performance.mark('confab:sign-in');
  }
  el('topbar').hidden = name !== 'chat';
  document.body.dataset.screen = name;
  if (name !== 'chat') {
    closeMenu();
    if (chat) chat.closeChatDialog();
  }
  current = name;
}

/** Closes the user menu (set once the page is wired). */
let closeMenu = () => {};

function showUnlock(firstRun) {
  el('unlock-form').dataset.firstRun = String(firstRun);
  el('unlock-title').textContent = firstRun ? 'Choose a passphrase' : 'Unlock Confab';
  el('unlock-lead').textContent = firstRun
    ? 'This device has no keychain Confab can use. Choose a passphrase to protect your sign-in here.'
    : 'Enter the passphrase that protects your sign-in on this device.';
  el('unlock').textContent = firstRun ? 'Save passphrase' : 'Unlock';
  el('confirm-row').hidden = !firstRun;
  el('forgot-passphrase').hidden = firstRun;
  el('passphrase-confirm').required = firstRun;
  el('unlock-error').textContent = '';
  clearPassphrase();
  show('unlock');
  el('passphrase').focus();
}

function clearPassphrase() {
  el('passphrase').value = '';
  el('passphrase-confirm').value = '';
}

function announce(text) {
  el('status').textContent = text;
}

function stopCountdown() {
  if (countdownTimer !== null) clearInterval(countdownTimer);
  countdownTimer = null;
}

function startCountdown(deadlineMs) {
  stopCountdown();
  const render = () => {
    const left = Math.max(0, Math.round((deadlineMs - Date.now()) / 1000));
    const m = Math.floor(left / 60);
    const s = String(left % 60).padStart(2, '0');
    el('deadline').textContent = left > 0 ? `This request expires in ${m}:${s}` : 'This request has expired';
  };
  render();
  countdownTimer = setInterval(render, 1000);
}

function initials(name) {
  return (name || '?')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join('');
}

function setBusy(busy) {
  for (const id of ['sign-in', 'password-sign-in', 'try-again', 'open-again', 'unlock', 'reset-yes', 'sign-out']) el(id).disabled = busy;
}

/** A message from the core as a sentence: capital first letter, final full stop. */
function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return 'Something went wrong.';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Applies one event from the core. Events are ordered (one Channel per window). */
function onEvent(event) {
  setBusy(false);
  switch (event.type) {
    case 'starting':
      el('busy-title').textContent = 'Starting Confab…';
      show('busy');
      break;
    case 'vault-locked':
      showUnlock(event.first_run);
      announce(event.first_run ? 'Choose a passphrase.' : 'Enter your passphrase.');
      break;
    case 'vault-broken':
      el('vault-error').textContent = sentence(event.message);
      el('vault-error').dataset.code = event.code;
      el('reset-ask').hidden = false;
      el('reset-confirm').hidden = true;
      show('vaultBroken');
      announce(`Confab can't open your saved sign-in. ${sentence(event.message)}`);
      el('reset-vault').focus();
      break;
    case 'restoring':
      el('busy-title').textContent = event.name ? `Signing in as ${event.name}…` : 'Signing you in…';
      show('busy');
      announce('Signing you in…');
      break;
    case 'session-retrying':
      announce('Reconnecting to your account provider…');
      break;
    case 'session-refreshed':
      if (el('status').textContent.startsWith('Reconnecting')) announce('Connected.');
      break;
    case 'signed-out': {
      stopCountdown();
      if (chat) chat.resetChat();
      show('signIn');
      const [status, notice] = SIGNED_OUT[event.reason] || ['', ''];
      el('sign-in-notice').textContent = notice;
      el('sign-in-notice').dataset.reason = event.reason;
      if (status) announce(status);
      if (!PASSWORD_SIGN_IN) el('sign-in').focus();
      else (el('login').value ? el('password') : el('login')).focus();
      break;
    }
    case 'sign-in-pending':
      loadChat().catch(() => {}); // fetched while the person is in the browser; see openChat
      el('waiting-notice').hidden = true;
      el('waiting-notice').textContent = '';
      show('waiting');
      startCountdown(event.deadline);
      announce('Waiting for you to finish signing in in your browser.');
      el('open-again').focus();
      break;
    case 'redirect-refused': {
      // A link that is not for this sign-in (forged, stale, replayed): refused, no token
      // request; the sign-in in progress goes on, so the waiting screen stays.
      const notice = el('waiting-notice');
      notice.textContent = `${sentence(event.message)} ${REFUSED_HINT}`;
      notice.dataset.code = event.code;
      notice.hidden = false;
      announce(notice.textContent);
      break;
    }
    case 'signed-in': {
      stopCountdown();
      const user = event.user;
      const name = user.name || user.email || 'you';
      signedInName = user.name || user.email || '';
      el('signed-in-as').textContent = `Signed in as ${name}`;
      el('signed-in-email').textContent = user.email || '';
      el('avatar').textContent = initials(name);
      el('menu-account').textContent = user.email ? `${name} · ${user.email}` : name;
      show('chat');
      // The chat part starts with the first sign-in, not at launch: the sign-in screen does
      // not carry its state (the core replays the session, rooms and connection on subscribe).
      openChat();
      announce(`Signed in as ${name}.`);
      break;
    }
    case 'sign-in-failed':
      stopCountdown();
      el('error').textContent = sentence(event.message);
      el('error-hint').textContent = HINTS[event.code] || '';
      el('error').dataset.code = event.code;
      failures += 1;
      el('error').dataset.seq = String(failures);
      show('error');
      announce(`Sign-in didn't work. ${sentence(event.message)}`);
      el('try-again').focus();
      break;
    default:
      break;
  }
}

/** Invokes a command; a rejected call shows the error it carries ({code, message}). */
async function call(command, args) {
  try {
    return await tauri.core.invoke(command, args);
  } catch (err) {
    const e = typeof err === 'object' && err !== null ? err : { code: 'internal', message: String(err) };
    const code = e.code || 'internal';
    // The core also reports failures as events; show each one once.
    if (current === 'error' && el('error').dataset.code === code) {
      setBusy(false);
      return undefined;
    }
    onEvent({ type: 'sign-in-failed', code, message: e.message || String(err) });
    return undefined;
  }
}

/** Sends the passphrase straight to the core; the fields are cleared at once, never kept. */
async function unlock(event) {
  event.preventDefault();
  const firstRun = el('unlock-form').dataset.firstRun === 'true';
  const passphrase = el('passphrase').value;
  const confirmation = firstRun ? el('passphrase-confirm').value : null;
  clearPassphrase();
  if (!passphrase) {
    el('unlock-error').textContent = 'Enter a passphrase.';
    el('passphrase').focus();
    return;
  }
  if (firstRun && passphrase !== confirmation) {
    el('unlock-error').textContent = 'The two passphrases are not the same. Try again.';
    el('passphrase').focus();
    return;
  }
  el('unlock-error').textContent = '';
  setBusy(true);
  announce(firstRun ? 'Creating your vault…' : 'Unlocking…');
  try {
    await tauri.core.invoke('unlock_vault', { passphrase, confirmation });
  } catch (err) {
    const message = err && err.message ? err.message : String(err);
    el('unlock-error').textContent = err && err.code === 'wrong-passphrase'
      ? 'That passphrase is not right. Try again.'
      : sentence(message);
    el('unlock-error').dataset.code = (err && err.code) || 'internal';
    if (current === 'unlock') el('passphrase').focus();
  } finally {
    setBusy(false);
  }
}

/** Sign out asks first what happens to the account's local data (kept by default). */
function askSignOut() {
  closeMenu();
  const dialog = el('sign-out-dialog');
  if (dialog.open) return;
  el('sign-out-remove').checked = false;
  el('sign-out-dialog-title').textContent = signedInName ? `Sign out of ${signedInName}?` : 'Sign out?';
  dialog.showModal();
  el('sign-out-cancel').focus();
}

async function signOut() {
  const removeLocalData = el('sign-out-remove').checked;
  el('sign-out-dialog').close();
  setBusy(true);
  announce(removeLocalData ? 'Signing out and removing this account’s data…' : 'Signing out…');
  await call('sign_out', { removeLocalData });
  setBusy(false);
}

async function signIn() {
  setBusy(true);
  announce(PASSWORD_SIGN_IN ? 'Signing you in…' : 'Opening your browser…');
  await call('sign_in');
}

/** The password profile's form: login and password go straight to the core; the password field
 * is cleared before the call and the password never kept. A refusal (wrong password, inactive
 * account, rate limit, server down) is shown under the form, the login kept. */
async function passwordSignIn(event) {
  event.preventDefault();
  const login = el('login').value.trim();
  const password = el('password').value;
  el('password').value = '';
  const error = el('password-error');
  if (!login || !password) {
    error.textContent = login ? 'Enter your password.' : 'Enter your email or username.';
    error.dataset.code = 'invalid-form';
    el(login ? 'password' : 'login').focus();
    return;
  }
  error.textContent = '';
  delete error.dataset.code;
  setBusy(true);
  announce('Signing you in…');
  try {
    await tauri.core.invoke('sign_in_password', { login, password });
  } catch (err) {
    const e = typeof err === 'object' && err !== null ? err : { code: 'internal', message: String(err) };
    error.textContent = sentence(e.message || String(err));
    error.dataset.code = e.code || 'internal';
    announce(error.textContent);
    if (current === 'signIn') el('password').focus();
  } finally {
    setBusy(false);
  }
}

/** Shows the password form instead of the browser button (the window was told at creation). */
function usePasswordForm() {
  el('sign-in').hidden = true;
  el('password-form').hidden = false;
  el('sign-in-fineprint').textContent = "Confab sends your password once to your organisation's server over an encrypted connection and never stores it.";
}

function wire() {
  if (PASSWORD_SIGN_IN) usePasswordForm();
  el('password-form').addEventListener('submit', passwordSignIn);
  el('sign-in').addEventListener('click', signIn);
  el('try-again').addEventListener('click', signIn);
  el('open-again').addEventListener('click', async () => {
    setBusy(true);
    await call('open_browser_again');
  });
  el('cancel').addEventListener('click', () => call('cancel_sign_in'));
  el('unlock-form').addEventListener('submit', unlock);
  closeMenu = wireMenu(el('user-menu-button'), el('user-menu'), el('user-menu').parentElement);
  el('sign-out').addEventListener('click', askSignOut);
  el('sign-out-confirm').addEventListener('click', signOut);
  el('sign-out-cancel').addEventListener('click', () => el('sign-out-dialog').close());
  el('sign-out-dialog').addEventListener('close', () => el('user-menu-button').focus());
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeMenu(true); });
  el('forgot-passphrase').addEventListener('click', () => {
    clearPassphrase();
    onEvent({
      type: 'vault-broken',
      code: 'forgot-passphrase',
      message: 'Without its passphrase the saved sign-in on this device cannot be opened',
    });
  });
  el('reset-vault').addEventListener('click', () => {
    el('reset-ask').hidden = true;
    el('reset-confirm').hidden = false;
    el('reset-no').focus();
  });
  el('reset-no').addEventListener('click', () => {
    if (el('vault-error').dataset.code === 'forgot-passphrase') {
      showUnlock(false);
      return;
    }
    el('reset-confirm').hidden = true;
    el('reset-ask').hidden = false;
    el('reset-vault').focus();
  });
  el('reset-yes').addEventListener('click', async () => {
    setBusy(true);
    await call('reset_vault');
    setBusy(false);
  });
}

async function start() {
  wire();
  if (!tauri || !tauri.core) {
    onEvent({ type: 'sign-in-failed', code: 'internal', message: 'Confab must be opened as an app, not in a web browser.' });
    return;
  }
  // The core knew at window creation that the first screen is "Sign in": show it now, not
  // after the first round trip (the subscription below then confirms it).
  if (window.__CONFAB_FIRST_SCREEN__ === 'sign-in') {
    onEvent({ type: 'signed-out', reason: 'not-signed-in' });
    // A click on the button painted before it was wired (first-screen.js) counts now.
    if (window.__confabFirstScreen && window.__confabFirstScreen.takeClick()) signIn();
  } else {
    // Likely a returning person: the chat will be needed in a moment.
    loadChat().catch(() => {}); // a failure shows when the chat is opened (openChat)
  }
  const channel = new tauri.core.Channel();
  channel.onmessage = onEvent;
  // The core answers a subscription with the current state, so a reload shows the right screen.
  await call('subscribe_events', { channel });
  if (current === 'none') show('busy');
}

start();
