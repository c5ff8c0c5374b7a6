// Confab UI: renders what the Rust core reports and asks it to do things. It never sees a token:
// the core sends only what is displayed (user name, email, status, errors in plain words).

const tauri = window.__TAURI__;

const screens = {
  signIn: document.getElementById('screen-sign-in'),
  waiting: document.getElementById('screen-waiting'),
  error: document.getElementById('screen-error'),
  signedIn: document.getElementById('screen-signed-in'),
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
  'browser': 'Confab could not open your web browser.',
};

let countdownTimer = null;
// Counts failure events; exposed as #error[data-seq] so tests can tell a repeated error apart.
let failures = 0;
let current = 'none';

function show(name) {
  for (const [key, node] of Object.entries(screens)) node.hidden = key !== name;
  el('topbar').hidden = name !== 'signedIn';
  current = name;
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
  for (const id of ['sign-in', 'try-again', 'open-again']) el(id).disabled = busy;
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
    case 'signed-out':
      stopCountdown();
      show('signIn');
      if (event.reason === 'cancelled') announce('Sign-in cancelled.');
      else if (event.reason === 'signed-out') announce('Signed out.');
      el('sign-in').focus();
      break;
    case 'sign-in-pending':
      show('waiting');
      startCountdown(event.deadline);
      announce('Waiting for you to finish signing in in your browser.');
      el('open-again').focus();
      break;
    case 'signed-in': {
      stopCountdown();
      const user = event.user;
      const name = user.name || user.email || 'you';
      el('signed-in-as').textContent = `Signed in as ${name}`;
      el('signed-in-email').textContent = user.email || '';
      el('avatar').textContent = initials(name);
      el('home-name').textContent = name;
      el('home-issuer').textContent = `Account provider: ${user.issuer}`;
      show('signedIn');
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

async function signIn() {
  setBusy(true);
  announce('Opening your browser…');
  await call('sign_in');
}

function wire() {
  el('sign-in').addEventListener('click', signIn);
  el('try-again').addEventListener('click', signIn);
  el('open-again').addEventListener('click', async () => {
    setBusy(true);
    await call('open_browser_again');
  });
  el('cancel').addEventListener('click', () => call('cancel_sign_in'));
}

async function start() {
  wire();
  if (!tauri || !tauri.core) {
    onEvent({ type: 'sign-in-failed', code: 'internal', message: 'Confab must be opened as an app, not in a web browser.' });
    return;
  }
  const channel = new tauri.core.Channel();
  channel.onmessage = onEvent;
  // The core answers a subscription with the current state, so a reload shows the right screen.
  await call('subscribe_events', { channel });
  if (current === 'none') show('signIn');
}

start();
