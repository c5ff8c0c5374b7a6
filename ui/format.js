// Pure display helpers: times, day labels, avatars and safe links. Nothing here touches the core.

/** Longest message the core accepts, in Unicode scalar values (docs/ui-contract.md). */
export const MAX_MESSAGE_CHARS = 4000;

/** Length as the core counts it (code points, not UTF-16 units). */
export function charCount(text) {
  let n = 0;
  // for..of walks code points; cheaper than spreading a 4000-character string into an array.
  for (const _ of text) n += 1; // eslint-disable-line no-unused-vars
  return n;
}

/** Up to two initials of a name or user id ("alice" -> "A", "Bob Example" -> "BE"). */
export function initials(name) {
  const words = String(name || '?').split(/[\s._@-]+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => w[0].toUpperCase()).join('');
  return letters || '?';
}

/** A stable hue (0–359) per author, so the same person always gets the same avatar colour. */
export function hueOf(author) {
  let h = 0;
  for (const ch of String(author)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** Local calendar day of a Unix-ms timestamp, as a sortable key. */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** "Today", "Yesterday" or a date for a day separator. */
export function dayLabel(ts, now = Date.now()) {
  const key = dayKey(ts);
  if (key === dayKey(now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (key === dayKey(yesterday.getTime())) return 'Yesterday';
  const d = new Date(ts);
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(undefined, {
    weekday: 'long', month: 'long', day: 'numeric', ...(sameYear ? {} : { year: 'numeric' }),
  });
}

// Made on first use, not when the module loads: each formatter loads ICU locale data into the
// page's memory, which the sign-in screen does not need.
let timeFormat = null;
let fullFormat = null;

/** Short time of day ("14:05"). */
export function timeLabel(ts) {
  timeFormat ??= new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  return timeFormat.format(new Date(ts));
}

/** Full date and time for a tooltip. */
export function fullTimeLabel(ts) {
  fullFormat ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
  return fullFormat.format(new Date(ts));
}

// http(s) URLs only. Anything else (javascript:, data:, file:, ...) stays plain text.
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'"*_~]+$/;

/** Trims punctuation that ends a sentence rather than the URL, and an unbalanced ")" or "]". */
function trimUrl(raw) {
  let url = raw.replace(TRAILING_PUNCTUATION, '');
  for (const [open, close] of [['(', ')'], ['[', ']']]) {
    while (url.endsWith(close) && url.split(open).length < url.split(close).length) {
      url = url.slice(0, -1).replace(TRAILING_PUNCTUATION, '');
    }
  }
  return url;
}

/** The URL if it parses as http: or https:, else null. */
export function safeHttpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Appends `text` to `parent` as text nodes, with http(s) URLs as `a.link` elements. Message text
 * is never parsed as HTML: every piece goes through createTextNode / textContent.
 */
export function appendLinkified(parent, text) {
  let last = 0;
  URL_RE.lastIndex = 0;
  for (let m = URL_RE.exec(text); m !== null; m = URL_RE.exec(text)) {
    const raw = trimUrl(m[0]);
    const href = safeHttpUrl(raw);
    if (!href) continue;
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement('a');
    a.className = 'link';
    a.href = href;
    a.rel = 'noopener noreferrer';
    a.textContent = raw;
    parent.append(a);
    last = m.index + raw.length;
    URL_RE.lastIndex = last;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}
