// A menu button and its popup menu (the user menu, the room menu): opening and closing,
// ArrowUp/ArrowDown/Home/End between items, Escape (back to the button) and Tab (on) closing
// it, and a press outside its wrapper closing it.

/**
 * Wires `button` to `menu` (whose items have role menuitem or menuitemcheckbox); `wrap` is the
 * element around both. Returns `close(returnFocus)`.
 */
export function wireMenu(button, menu, wrap) {
  const items = () => [...menu.querySelectorAll('[role^="menuitem"]')].filter((b) => !b.hidden && !b.disabled);

  function close(returnFocus = false) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (returnFocus) button.focus();
  }

  function toggle() {
    const open = menu.hidden;
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    const first = items()[0];
    if (open && first) first.focus();
  }

  function onKey(e) {
    const list = items();
    const i = list.indexOf(document.activeElement);
    let next = null;
    if (e.key === 'ArrowDown') next = list[(i + 1) % list.length];
    else if (e.key === 'ArrowUp') next = list[(i - 1 + list.length) % list.length];
    else if (e.key === 'Home') next = list[0];
    else if (e.key === 'End') next = list[list.length - 1];
    else if (e.key === 'Escape') {
      e.stopPropagation();
      close(true);
      return;
    } else if (e.key === 'Tab') {
      close();
      return;
    }
    if (next) {
      e.preventDefault();
      next.focus();
    }
  }

  button.addEventListener('click', toggle);
  menu.addEventListener('keydown', onKey);
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !wrap.contains(e.target)) close();
  });
  return close;
}
