// A classic script, run while <head> is parsed, before the modules: when the core created the
// window saying the first screen is "Sign in" (window.__CONFAB_FIRST_SCREEN__), the sign-in
// screen is visible in the page's very first frame (styles.css, html[data-first-screen]). A
// first frame with nothing visible in it delayed the sign-in screen's paint by a quarter of a
// second (docs/benchmarks.md, Chat UI). app.js wires the screen up and removes the attribute.
if (window.__CONFAB_FIRST_SCREEN__ === 'sign-in') {
  document.documentElement.dataset.firstScreen = 'sign-in';
}
