// A virtualized vertical list for the message history: the items live in a JS array, only the rows
// in (and a little around) the viewport are in the DOM, between two spacer elements whose heights
// stand in for everything else. Rows have variable height: rendered rows are measured and their
// heights cached by item key; the rest are estimated. The scroll position is anchored to an item,
// so measuring, prepending older pages or replacing the items never makes the view jump, and a list
// scrolled to the bottom stays there when items are appended.

/** Pixels rendered beyond each edge of the viewport. */
const OVERSCAN_PX = 600;
/** Within this many pixels of the end counts as "at the bottom". */
const BOTTOM_SLACK_PX = 32;
/** Measuring can change heights and so the range; a few passes settle it. */
const MAX_PASSES = 4;
/** One frame at 60 Hz: renders closer together than this wait for the next frame. */
const FRAME_MS = 16;

export class VirtualList {
  /**
   * @param {object} options
   * @param {HTMLElement} options.scroller the scrolling element (contents are managed here)
   * @param {() => Array<{key: string, sig: string}>} options.items returns the current items
   * @param {(item: object) => HTMLElement} options.render builds a row element for an item
   * @param {(item: object, width: number) => number} options.estimate a height guess
   * @param {(list: VirtualList) => void} [options.onRendered] called after each render
   */
  constructor({ scroller, items, render, estimate, onRendered }) {
    this.scroller = scroller;
    this.itemsSource = items;
    this.renderItem = render;
    this.estimate = estimate;
    this.onRendered = onRendered || (() => {});

    this.items = [];
    this.indexOf = new Map(); // key -> index in items
    this.heights = new Map(); // key -> [sig, measured height] (a new sig means re-measure)
    this.guesses = new Map(); // key -> [sig, estimated height] for rows never measured
    this.sizes = new Float64Array(0); // sizes[i] = height used for item i
    this.tops = new Float64Array(1); // tops[i] = y of item i; tops[n] = total height
    this.dirtyFrom = 0; // tops are stale from this index on (Infinity: all fresh)
    this.itemsDirty = true;
    this.mounted = new Map(); // key -> {node, sig}
    this.stick = true; // follow the bottom
    this.forceBottom = false;
    this.frame = 0;
    this.soon = false;
    this.lastRender = -Infinity;
    this.fallback = 0;
    this.lastWidth = 0;
    this.programmaticTop = -1;
    this.lastAnchor = { bottom: true }; // where the last visible render left the view
    this.hidden = false; // the scroller had no size at the last render (display: none)

    this.topSpacer = document.createElement('div');
    this.topSpacer.className = 'spacer';
    this.topSpacer.setAttribute('aria-hidden', 'true');
    this.rows = document.createElement('div');
    this.rows.className = 'rows';
    this.bottomSpacer = document.createElement('div');
    this.bottomSpacer.className = 'spacer';
    this.bottomSpacer.setAttribute('aria-hidden', 'true');
    scroller.replaceChildren(this.topSpacer, this.rows, this.bottomSpacer);

    scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => this.onResize()).observe(scroller);
    } else {
      window.addEventListener('resize', () => this.onResize());
    }
  }

  /** The items changed (re-read them on the next frame). */
  invalidate() {
    this.itemsDirty = true;
    this.schedule();
  }

  /**
   * A new item arrived at the end (a live message). After a quiet spell it is rendered right
   * after this event's other updates (a microtask) instead of up to a frame later with rAF, so
   * the row is in the DOM at once; within a frame of the last render, bursts still coalesce
   * into one render per frame. Everything else (opening a room, pages, resizes) waits for the
   * next frame: rendering a freshly opened room in a microtask cost its first open about 1 s.
   */
  invalidateSoon() {
    this.itemsDirty = true;
    const appending = this.mounted.size > 0 && this.stick && !this.hidden;
    if (appending && !this.frame && !this.soon && performance.now() - this.lastRender >= FRAME_MS) {
      this.soon = true;
      queueMicrotask(() => {
        this.soon = false;
        this.flush();
      });
      return;
    }
    this.schedule();
  }

  /** Forgets everything (another room): the next render starts at the bottom. */
  reset() {
    this.heights.clear();
    this.guesses.clear();
    for (const { node } of this.mounted.values()) node.remove();
    this.mounted.clear();
    this.items = [];
    this.indexOf.clear();
    this.sizes = new Float64Array(0);
    this.dirtyFrom = 0;
    this.stick = true;
    this.lastAnchor = { bottom: true };
    this.invalidate();
  }

  /** Scrolls to the newest item on the next frame and follows it. */
  scrollToBottom() {
    this.stick = true;
    this.forceBottom = true;
    this.schedule();
  }

  /** Whether the view follows the bottom. */
  get atBottom() {
    return this.stick;
  }

  /** One render per frame; a timer backs rAF up where frames are throttled (hidden window). */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => this.flush());
    this.fallback = setTimeout(() => this.flush(), 250);
  }

  flush() {
    if (this.frame) cancelAnimationFrame(this.frame);
    clearTimeout(this.fallback);
    this.frame = 0;
    this.fallback = 0;
    this.lastRender = performance.now();
    this.render();
  }

  onScroll() {
    // Hiding the scroller (display: none) resets its scroll position: not the user's doing.
    if (this.scroller.clientHeight === 0) return;
    const top = this.scroller.scrollTop;
    // Our own scrollTop writes also fire scroll events; they don't change what the user wants.
    if (Math.abs(top - this.programmaticTop) < 1) return;
    this.programmaticTop = -1;
    const gap = this.scroller.scrollHeight - top - this.scroller.clientHeight;
    this.stick = gap <= BOTTOM_SLACK_PX;
    this.schedule();
  }

  onResize() {
    const width = this.scroller.clientWidth;
    if (width !== this.lastWidth) {
      // Wrapping changes with the width: every cached height is stale (re-measured as shown).
      this.lastWidth = width;
      this.heights.clear();
      this.guesses.clear();
      this.refreshSizes();
    }
    this.schedule();
  }

  /** Height of an item: measured, else a cached estimate (estimating costs per character). */
  sizeOf(item) {
    const measured = this.heights.get(item.key);
    if (measured && measured[0] === item.sig) return measured[1];
    const guess = this.guesses.get(item.key);
    if (guess && guess[0] === item.sig) return guess[1];
    const estimated = this.estimate(item, this.lastWidth || this.scroller.clientWidth);
    this.guesses.set(item.key, [item.sig, estimated]);
    return estimated;
  }

  /** Recomputes every item's size (new items or a new width). */
  refreshSizes() {
    const n = this.items.length;
    if (this.sizes.length < n) this.sizes = new Float64Array(Math.max(n, this.sizes.length * 2));
    for (let i = 0; i < n; i += 1) this.sizes[i] = this.sizeOf(this.items[i]);
    this.dirtyFrom = 0;
  }

  /** Prefix sums of the sizes, from the first changed item on. */
  updatePositions() {
    const n = this.items.length;
    if (this.dirtyFrom > n) return;
    if (this.tops.length < n + 1) {
      const grown = new Float64Array(Math.max(n + 1, this.tops.length * 2));
      grown.set(this.tops.subarray(0, Math.min(this.tops.length, n + 1)));
      this.tops = grown;
      this.dirtyFrom = 0;
    }
    let i = Math.max(0, Math.min(this.dirtyFrom, n));
    let y = i === 0 ? 0 : this.tops[i - 1] + this.sizes[i - 1];
    for (; i < n; i += 1) {
      this.tops[i] = y;
      y += this.sizes[i];
    }
    this.tops[n] = y;
    this.dirtyFrom = Infinity;
  }

  get totalHeight() {
    return this.tops[this.items.length];
  }

  /** Index of the item containing y (binary search over tops). */
  indexAt(y) {
    let lo = 0;
    let hi = this.items.length - 1;
    if (hi < 0) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.tops[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The item at the top edge of the viewport and how far into it the view is scrolled. */
  captureAnchor(scrollTop) {
    if (this.stick || this.forceBottom || this.items.length === 0) return { bottom: true };
    this.updatePositions();
    const i = this.indexAt(scrollTop);
    const keys = [];
    for (let j = i; j < Math.min(this.items.length, i + 50); j += 1) keys.push(this.items[j].key);
    return { keys, delta: scrollTop - this.tops[i] };
  }

  /** The scroll position that puts the anchor back where it was. */
  resolveAnchor(anchor, viewport) {
    const maxTop = Math.max(0, this.totalHeight - viewport);
    if (anchor.bottom) return maxTop;
    // The anchor item may be gone (a reset): the next surviving one stands in for it.
    for (let k = 0; k < anchor.keys.length; k += 1) {
      const i = this.indexOf.get(anchor.keys[k]);
      if (i !== undefined) return Math.min(maxTop, Math.max(0, this.tops[i] + (k === 0 ? anchor.delta : 0)));
    }
    return maxTop;
  }

  render() {
    const scroller = this.scroller;
    const viewport = scroller.clientHeight;
    if (!this.lastWidth) this.lastWidth = scroller.clientWidth;
    // Back from display:none the scroll position is lost: resume where the view last was.
    const anchor = this.hidden && !this.forceBottom ? this.lastAnchor : this.captureAnchor(scroller.scrollTop);
    if (this.itemsDirty) {
      this.items = this.itemsSource();
      this.indexOf = new Map();
      for (let i = 0; i < this.items.length; i += 1) this.indexOf.set(this.items[i].key, i);
      this.itemsDirty = false;
      this.refreshSizes();
    }
    if (viewport === 0) {
      // Not displayed: nothing to measure. Render again once it has a size (ResizeObserver).
      this.hidden = true;
      if (anchor.bottom) this.lastAnchor = anchor;
      return;
    }
    this.hidden = false;

    let target = 0;
    for (let pass = 0; pass < MAX_PASSES; pass += 1) {
      this.updatePositions();
      target = this.resolveAnchor(anchor, viewport);
      const changed = this.mountRange(target, viewport);
      if (!changed) break;
    }
    if (Math.abs(scroller.scrollTop - target) >= 1) {
      scroller.scrollTop = target;
      this.programmaticTop = scroller.scrollTop;
    }
    if (anchor.bottom) this.stick = true;
    this.forceBottom = false;
    this.lastAnchor = this.captureAnchor(target);
    this.onRendered(this);
  }

  /**
   * Puts the rows around [top, top + viewport) in the DOM, in order, and measures them.
   * Returns true when a measured height differed from what the layout assumed.
   */
  mountRange(top, viewport) {
    const n = this.items.length;
    const start = n ? this.indexAt(Math.max(0, top - OVERSCAN_PX)) : 0;
    const end = n ? this.indexAt(top + viewport + OVERSCAN_PX) + 1 : 0;
    this.start = start;
    this.end = end;

    const wanted = new Set();
    for (let i = start; i < end; i += 1) wanted.add(this.items[i].key);
    for (const [key, entry] of this.mounted) {
      if (!wanted.has(key)) {
        entry.node.remove();
        this.mounted.delete(key);
      }
    }
    let cursor = this.rows.firstChild;
    for (let i = start; i < end; i += 1) {
      const item = this.items[i];
      let entry = this.mounted.get(item.key);
      if (entry && entry.sig !== item.sig) {
        const node = this.renderItem(item);
        entry.node.replaceWith(node);
        if (cursor === entry.node) cursor = node;
        entry = { node, sig: item.sig };
        this.mounted.set(item.key, entry);
      } else if (!entry) {
        entry = { node: this.renderItem(item), sig: item.sig };
        this.mounted.set(item.key, entry);
      }
      if (entry.node !== cursor) this.rows.insertBefore(entry.node, cursor);
      else cursor = cursor.nextSibling;
    }
    this.topSpacer.style.height = `${this.tops[start]}px`;
    this.bottomSpacer.style.height = `${this.totalHeight - this.tops[end]}px`;

    // Read all heights after all writes: one layout for the whole batch.
    let changed = false;
    for (let i = start; i < end; i += 1) {
      const item = this.items[i];
      const h = this.mounted.get(item.key).node.getBoundingClientRect().height;
      if (h <= 0) continue;
      this.heights.set(item.key, [item.sig, h]);
      if (Math.abs(h - this.sizes[i]) >= 0.5) {
        this.sizes[i] = h;
        this.dirtyFrom = Math.min(this.dirtyFrom, i);
        changed = true;
      }
    }
    if (changed) {
      this.updatePositions();
      this.topSpacer.style.height = `${this.tops[start]}px`;
      this.bottomSpacer.style.height = `${this.totalHeight - this.tops[end]}px`;
    }
    return changed;
  }

  /** Mounted row elements with their items, top to bottom. */
  *visibleRows() {
    const top = this.scroller.scrollTop;
    const bottom = top + this.scroller.clientHeight;
    for (let i = this.start || 0; i < (this.end || 0); i += 1) {
      const item = this.items[i];
      if (!item) break;
      if (this.tops[i + 1] <= top + 1 || this.tops[i] >= bottom - 1) continue;
      yield item;
    }
  }

  /** Whether the first item is near the top of the viewport (time to load older ones). */
  nearTop() {
    return this.items.length > 0 && this.scroller.scrollTop < this.scroller.clientHeight;
  }
}
