// A classic script, run while <head> is parsed, before the modules: when the core created the
// window saying the first screen is "Sign in" (window.__CONFAB_FIRST_SCREEN__), the sign-in
// screen is visible in the page's very first frame (styles.css, html[data-first-screen]). A
// first frame with nothing visible in it delayed the sign-in screen's paint by a quarter of a
// second (docs/benchmarks.md, Chat UI). app.js wires the screen up and removes the attribute.
// The button is on screen a few ms before app.js has wired it: a click in that gap is kept here
// and app.js acts on it (takeClick), so no click is lost.
(() => {
  // The password profile (window.__CONFAB_SIGN_IN__): its form, not the browser button.
  if (window.__CONFAB_SIGN_IN__ === 'password') document.documentElement.dataset.signIn = 'password';
  if (window.__CONFAB_FIRST_SCREEN__ !== 'sign-in') return;
  document.documentElement.dataset.firstScreen = 'sign-in';
  let clicked = false;
  const onClick = (event) => {
    if (event.target instanceof Element && event.target.closest('#sign-in')) clicked = true;
  };
  document.addEventListener('click', onClick, true);
  Object.defineProperty(window, '__confabFirstScreen', {
    value: Object.freeze({
      takeClick() {
        document.removeEventListener('click', onClick, true);
        const was = clicked;
        clicked = false;
        return was;
      },
    }),
  });
})();
