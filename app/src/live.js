// Switchyard's page script, served at /app.js.
//
// Pages are complete without it: every button is a form that posts and
// comes back. With it, a page listens to its server-sent event stream
// (the URL in <body data-live>) and merges in each region the server
// renders, matched by element id (see "Morphing"). The server sends a full
// snapshot on every (re)connect, so a dropped connection never leaves a
// stale screen; while it is down the page says so (see "Connection").
(() => {
  'use strict';

  // Relative times ("4 s ago") kept current between updates.
  const ago = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  };
  // Moments to come ("in 12 s"), the same words as the server's.
  const due = (ms) => {
    const s = Math.floor(ms / 1000);
    if (ms <= 0) return 'due now';
    if (s < 60) return `in ${Math.max(1, s)} s`;
    if (s < 3600) return `in ${Math.floor(s / 60)} min`;
    if (s < 86400) return `in ${Math.floor(s / 3600)} h`;
    return `in ${Math.floor(s / 86400)} d`;
  };
  const refreshAges = (root) => {
    const now = Date.now();
    for (const el of root.querySelectorAll('time[data-ago]')) {
      const at = Date.parse(el.getAttribute('datetime'));
      if (!Number.isNaN(at)) el.textContent = ago(now - at);
    }
    for (const el of root.querySelectorAll('time[data-in]')) {
      const at = Date.parse(el.getAttribute('datetime'));
      if (!Number.isNaN(at)) el.textContent = due(at - now);
    }
  };

  // ---- Morphing ---------------------------------------------------------
  //
  // A new version of a region is merged into the one on screen rather than
  // replacing it: elements are matched by identity, so the element the
  // operator is on — the focused button, a ticked box, an open <details>,
  // a table scrolled sideways, a half-typed field — is the very same
  // element afterwards, only its text and attributes brought up to date.
  //
  // Identity is an element's id, else its data-id, else its data-test-id,
  // when that name is unique among its siblings on both sides (a job row is
  // `job-row-<id>`); other elements match by position and tag. An element
  // with a name never takes on another's content, so focus on row 4's
  // Retry never ends up on a different job's Retry.
  // (getAttribute: a form's `id` property is its control named "id".)
  const keyOf = (node) => (node.nodeType === Node.ELEMENT_NODE
    ? node.getAttribute('id') || node.getAttribute('data-id') || node.getAttribute('data-test-id') || null
    : null);
  const uniqueKeys = (nodes) => {
    const seen = new Map();
    for (const node of nodes) {
      const key = keyOf(node);
      if (key) seen.set(key, (seen.get(key) || 0) + 1);
    }
    return new Set(Array.from(seen).filter(([, n]) => n === 1).map(([key]) => key));
  };

  // Moves a node without taking focus from it where the browser can
  // (Element.moveBefore); elsewhere focus is put back after the morph.
  const moveBefore = (parent, node, before) => {
    if (typeof parent.moveBefore === 'function') {
      try {
        parent.moveBefore(node, before);
        return;
      } catch {
        // Not movable atomically (another document, say): a plain move.
      }
    }
    parent.insertBefore(node, before);
  };

  const syncAttributes = (current, next) => {
    for (const { name, value } of Array.from(next.attributes)) {
      // An open <details> is the operator's choice, not the server's.
      if (name === 'open' && current.tagName === 'DETAILS') continue;
      if (current.getAttribute(name) !== value) current.setAttribute(name, value);
    }
    for (const { name } of Array.from(current.attributes)) {
      if (name === 'open' && current.tagName === 'DETAILS') continue;
      if (!next.hasAttribute(name)) current.removeAttribute(name);
    }
  };

  const morphNode = (current, next) => {
    if (current.nodeType !== next.nodeType
      || (current.nodeType === Node.ELEMENT_NODE && current.tagName !== next.tagName)) {
      current.replaceWith(next);
      return;
    }
    if (current.nodeType !== Node.ELEMENT_NODE) {
      if (current.nodeValue !== next.nodeValue) current.nodeValue = next.nodeValue;
      return;
    }
    // Attributes only: a field's typed value and a box's tick are kept by
    // the browser once the operator touched them (its "dirty" flag), and
    // follow the server's value and checked attributes until then.
    syncAttributes(current, next);
    morphChildren(current, next);
  };

  // An unnamed node's counterpart: among the next few unnamed nodes on
  // screen (named ones are matched by name, wherever they are), the first
  // of the same tag and class; failing that, the very next one if its tag
  // is the same. So a block that appears (a notice, a progress line) is
  // inserted rather than taking over the toolbar after it.
  const SOFT_WINDOW = 8;
  const sameKind = (a, b) => a.nodeType === b.nodeType
    && (a.nodeType !== Node.ELEMENT_NODE || a.tagName === b.tagName);
  const sameClass = (a, b) => a.nodeType !== Node.ELEMENT_NODE
    || (a.getAttribute('class') || '') === (b.getAttribute('class') || '');
  const softMatch = (node, cursor, named) => {
    let first = null;
    let seen = 0;
    for (let candidate = cursor; candidate && seen < SOFT_WINDOW; candidate = candidate.nextSibling) {
      const key = keyOf(candidate);
      if (key && named.has(key)) continue;
      if (sameKind(candidate, node)) {
        if (sameClass(candidate, node)) return candidate;
        if (seen === 0) first = candidate;
      }
      seen += 1;
    }
    return first;
  };

  const morphChildren = (current, next) => {
    const incoming = Array.from(next.childNodes);
    const inNext = uniqueKeys(incoming);
    const inCurrent = uniqueKeys(Array.from(current.childNodes));
    const keyed = (node) => {
      const key = keyOf(node);
      return key && inNext.has(key) && inCurrent.has(key) ? key : null;
    };
    // Named on one side only, or not unique: not a match for anything.
    const named = (node, names) => {
      const key = keyOf(node);
      return !!key && names.has(key);
    };
    const byKey = new Map();
    for (const node of current.childNodes) {
      const key = keyed(node);
      if (key) byKey.set(key, node);
    }
    let cursor = current.firstChild;
    for (const node of incoming) {
      const key = keyed(node);
      let match = key ? byKey.get(key) : null;
      if (!key && !named(node, inNext)) match = softMatch(node, cursor, inCurrent);
      if (match) {
        if (match === cursor) cursor = cursor.nextSibling;
        else moveBefore(current, match, cursor);
        morphNode(match, node);
      } else {
        current.insertBefore(node, cursor);
      }
    }
    while (cursor) {
      const following = cursor.nextSibling;
      cursor.remove();
      cursor = following;
    }
  };

  // Morphs a region and keeps the operator's place: focus stays on its
  // element; if that element went (its row left the table), focus goes to
  // the same control of the row that took its place, else to the region,
  // never to <body>.
  const morph = (current, next) => {
    const active = document.activeElement;
    const inside = active && active !== document.body && current.contains(active);
    let row = null;
    let neighbours = [];
    if (inside) {
      row = active.closest('[data-id], tr[data-test-id], li[data-test-id]');
      if (row && current.contains(row)) {
        neighbours = [row.nextElementSibling, row.previousElementSibling]
          .filter(Boolean).map(keyOf).filter(Boolean);
      }
    }
    morphNode(current, next);
    if (!inside) return;
    if (active.isConnected) {
      if (document.activeElement !== active) active.focus({ preventScroll: true });
      return;
    }
    const region = document.getElementById(next.id) || next;
    const control = active.getAttribute('data-test-id');
    for (const key of neighbours) {
      const other = Array.from(region.querySelectorAll('*')).find((el) => keyOf(el) === key);
      const target = other && (control
        ? other.querySelector(`[data-test-id="${CSS.escape(control)}"]`)
        : other.querySelector('a[href], button, input, select, textarea'));
      if (target) {
        target.focus({ preventScroll: true });
        return;
      }
    }
    region.setAttribute('tabindex', '-1');
    region.focus({ preventScroll: true });
  };

  // What waits, and why. Updates wait while the pointer is down (a row
  // moving under a press would take the click elsewhere) and while a
  // field in the region is being typed in or chosen from (a <select>'s
  // open list would close); the latest version of each region wins. A
  // table with ticked rows waits when the update brings rows it does not
  // show: they are announced ("12 new — show") rather than pushing the
  // ticked rows down. And every region waits while the operator paused
  // live updates.
  let holding = false;
  let paused = false;
  // Updates received while paused, for "N updates waiting".
  let waiting = 0;
  const pending = new Map();
  // The ids of the regions the stream keeps current: every (re)connect
  // sends them all, so this is complete from the first connection on.
  const regions = new Set();

  const FIELDS = 'input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea';
  const editing = (region) => {
    const el = document.activeElement;
    return !!el && region.contains(el) && el.matches(FIELDS);
  };

  // Ticked jobs, kept by job id (never by row position) per selection
  // form — a form marked data-selection whose boxes name it in their
  // form attribute. They live in sessionStorage under the form's action,
  // so they survive live updates and going to another page of the list.
  const selectionForms = (root) => Array.from(root.querySelectorAll('form[data-selection]'));
  const storeKey = (form) => `switchyard:selected:${form.getAttribute('action')}`;
  // This page's copy, which works where storage does not (blocked,
  // full); storage carries the ticks to other pages of the list.
  const memory = new Map();
  const selected = (form) => {
    const key = storeKey(form);
    try {
      const stored = sessionStorage.getItem(key);
      if (stored !== null) {
        const ids = JSON.parse(stored);
        if (Array.isArray(ids)) return new Set(ids.map(String));
      }
    } catch {
      // Unreadable storage: this page's copy below.
    }
    return new Set(memory.get(key) || []);
  };
  const keep = (form, ids) => {
    const key = storeKey(form);
    memory.set(key, Array.from(ids));
    try {
      if (ids.size) sessionStorage.setItem(key, JSON.stringify(Array.from(ids)));
      else sessionStorage.removeItem(key);
    } catch {
      // Storage refused: the ticks live in this page's copy.
    }
  };
  // The form's id attribute: `form.id` would be its controls named "id"
  // (the job boxes), as forms expose named controls as properties.
  const formId = (form) => form.getAttribute('id');
  const boxesOf = (form, root = document) => (formId(form)
    ? Array.from(root.querySelectorAll(`input[type=checkbox][form="${formId(form)}"]:not([data-select-all])`))
    : []);
  const selectionIn = (region) => selectionForms(document).find((form) => region.contains(form)
    || boxesOf(form, region).length > 0);

  // Shows the ticks, the select-all box and the "N selected" bar as the
  // stored selection says.
  const showSelection = (form) => {
    const ids = selected(form);
    const boxes = boxesOf(form);
    let shown = 0;
    for (const box of boxes) {
      box.checked = ids.has(box.value);
      if (box.checked) shown += 1;
    }
    for (const all of document.querySelectorAll(`input[data-select-all="${formId(form)}"]`)) {
      all.checked = boxes.length > 0 && shown === boxes.length;
      all.indeterminate = shown > 0 && shown < boxes.length;
    }
    const bar = form.querySelector('.selection-bar');
    if (!bar) return;
    bar.hidden = ids.size === 0;
    const count = bar.querySelector('[data-test-id="selection-count"]');
    if (!count) return;
    const away = ids.size - shown;
    let text = `${ids.size} selected`;
    if (away > 0) text += ` (${away} not shown)`;
    const max = Number(form.dataset.max || 0);
    if (max && ids.size > max) text += ` — at most ${max} at once`;
    count.textContent = text;
  };

  // What an update would add to a table with ticked rows: the ids of the
  // boxes it brings that the table does not show yet. Nothing waits when
  // no ticked row is on screen.
  const arrivals = (current, next) => {
    const form = selectionIn(current);
    if (!form) return 0;
    const ids = selected(form);
    // Only ticks the operator can see hold the table still: ticks left on
    // another page of the list never freeze this one.
    if (!boxesOf(form, current).some((box) => ids.has(box.value))) return 0;
    const shown = new Set(boxesOf(form, current).map((box) => box.value));
    return boxesOf(form, next).filter((box) => !shown.has(box.value)).length;
  };

  // The "12 new — show" line in front of a held table.
  const newsId = (id) => `${id}-news`;
  const announce = (id, count) => {
    const current = document.getElementById(id);
    if (!current) return;
    let news = document.getElementById(newsId(id));
    if (!news) {
      news = document.createElement('p');
      news.id = newsId(id);
      news.className = 'news';
      news.setAttribute('role', 'status');
      const show = document.createElement('button');
      show.type = 'button';
      show.className = 'button';
      show.dataset.testId = 'show-new';
      show.addEventListener('click', () => {
        const next = pending.get(id);
        pending.delete(id);
        news.remove();
        if (!next) return;
        apply(next);
        // The button is gone: focus goes to the table it showed.
        const shown = document.getElementById(id);
        if (shown) {
          shown.setAttribute('tabindex', '-1');
          shown.focus({ preventScroll: true });
        }
      });
      news.append(show);
      current.before(news);
    }
    news.firstElementChild.textContent = `${count} new — show`;
  };
  const unannounce = (id) => {
    const news = document.getElementById(newsId(id));
    if (news) news.remove();
  };

  // Why a version of a region cannot go in now: true while paused, the
  // pointer is down or a field in it is being edited; a count of rows to
  // announce while rows in it are ticked.
  const blocked = (current, next) => {
    if (paused || holding || editing(current)) return true;
    return arrivals(current, next);
  };

  const swap = (html) => {
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const next = template.content.firstElementChild;
    if (!next || !next.id) return;
    regions.add(next.id);
    if (paused) {
      waiting += 1;
      showPause();
    }
    const current = document.getElementById(next.id);
    const wait = current ? blocked(current, next) : false;
    if (wait) {
      pending.set(next.id, next);
      if (typeof wait === 'number') announce(next.id, wait);
      return;
    }
    pending.delete(next.id);
    apply(next);
  };

  // A table that fits its card is marked .fits: the card stops being a
  // sideways scroller, so the table's header can stick to the window, and
  // it leaves the tab order (it has nothing to scroll). Measured again
  // after each update and when the window changes size.
  const fitTables = (root) => {
    if (!root) return;
    for (const wrap of root.querySelectorAll('.table-wrap')) {
      const table = wrap.querySelector('table');
      if (!table) continue;
      wrap.classList.remove('fits');
      const fits = table.scrollWidth <= wrap.clientWidth;
      wrap.classList.toggle('fits', fits);
      if (fits) wrap.removeAttribute('tabindex');
      else wrap.setAttribute('tabindex', '0');
    }
  };
  let resizing = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => fitTables(document));
  });

  // A bulk run's notice ("Retrying all failed jobs…") is done with once
  // the run's progress line says how it ended: it goes a few seconds after
  // the run on screen finishes (a notice from before, for something else,
  // stays).
  const NOTICE_AFTER_RUN_MS = 5000;
  const clearRunNotices = () => {
    if (!document.querySelector('#progress [data-finished="true"]')) return;
    setTimeout(() => {
      for (const notice of document.querySelectorAll('main .notice[data-test-id="notice"]')) notice.remove();
    }, NOTICE_AFTER_RUN_MS);
  };

  // The tab's title starts with the number of firing alerts nobody
  // silenced ("(2) Queues · Switchyard"), from the banner; a region with a
  // data-title (a queue's header: "reports · 34 failed") keeps the rest
  // current.
  let untitled = document.title.replace(/^\(\d+\) /, '');
  const showTitle = () => {
    const titled = document.querySelector('[data-title]');
    if (titled) untitled = titled.getAttribute('data-title');
    const banner = document.getElementById('alert-banner');
    const firing = banner ? Number(banner.getAttribute('data-firing') || 0) : 0;
    document.title = firing > 0 ? `(${firing}) ${untitled}` : untitled;
  };

  const apply = (next) => {
    const current = document.getElementById(next.id);
    if (!current) return;
    unannounce(next.id);
    // A run that ends while the page is open (not one already over when
    // it loaded) clears the notice announcing it.
    const wasRunning = next.id === 'progress' && !current.querySelector('[data-finished="true"]');
    morph(current, next);
    if (next.id === 'alert-banner' || next.hasAttribute('data-title')) showTitle();
    if (wasRunning) clearRunNotices();
    fitTables(document.getElementById(next.id));
    const region = document.getElementById(next.id);
    if (region) refreshAges(region);
    for (const form of selectionForms(document)) showSelection(form);
    // A version that waited from before the connection was lost is no
    // fresher than the rest.
    if (lostAt) markStale();
  };

  // Applies what waited, except regions still being edited or holding
  // ticked rows back from new ones.
  const release = () => {
    for (const [id, next] of pending) {
      const current = document.getElementById(id);
      if (!current) {
        pending.delete(id);
        continue;
      }
      const wait = blocked(current, next);
      if (typeof wait === 'number' && wait > 0) announce(id, wait);
      if (wait) continue;
      pending.delete(id);
      apply(next);
    }
  };

  const flush = () => {
    holding = false;
    release();
  };

  document.addEventListener('pointerdown', () => {
    holding = true;
  }, true);
  document.addEventListener('pointerup', () => setTimeout(flush, 50), true);
  document.addEventListener('pointercancel', flush, true);
  // Focus moves after focusout fires: look once it has settled.
  document.addEventListener('focusout', () => setTimeout(() => {
    if (!holding) release();
  }, 0), true);

  // Destructive actions ask first. Forms swapped in by a live update are
  // shared by every open page, so their CSRF field is empty: it gets this
  // page's token (from its meta tag) before posting.
  document.addEventListener('submit', (event) => {
    const form = event.target;
    const question = form.dataset && form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    const meta = document.querySelector('meta[name="csrf-token"]');
    const field = form.querySelector && form.querySelector('input[name="csrf_token"]');
    if (meta && field && !field.value) field.value = meta.content;
    if (form.hasAttribute && form.hasAttribute('data-selection')) submitSelection(form, event);
  });

  // A selection posts every ticked id, shown or not (the ones on screen
  // go as their boxes), and is forgotten once posted. One larger than
  // the server takes is refused here, keeping the ticks.
  const submitSelection = (form, event) => {
    const ids = selected(form);
    const max = Number(form.dataset.max || 0);
    if (max && ids.size > max) {
      event.preventDefault();
      showSelection(form);
      return;
    }
    const shown = new Set(boxesOf(form).filter((box) => box.checked).map((box) => box.value));
    for (const id of ids) {
      if (shown.has(id)) continue;
      const hidden = document.createElement('input');
      hidden.type = 'hidden';
      hidden.name = 'id';
      hidden.value = id;
      hidden.dataset.unseen = '';
      form.append(hidden);
    }
    keep(form, new Set());
  };

  // A tick or an untick changes the stored selection; "select all" ticks
  // every box of its form shown on the page.
  document.addEventListener('change', (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== 'checkbox') return;
    const owner = box.dataset.selectAll || box.getAttribute('form');
    const form = owner && document.getElementById(owner);
    if (!form || !form.hasAttribute('data-selection')) return;
    const ids = selected(form);
    const boxes = box.dataset.selectAll ? boxesOf(form) : [box];
    for (const one of boxes) {
      if (box.checked) ids.add(one.value);
      else ids.delete(one.value);
    }
    keep(form, ids);
    showSelection(form);
    release();
  });

  document.addEventListener('click', (event) => {
    const clear = event.target instanceof Element && event.target.closest('[data-selection-clear]');
    const form = clear && clear.closest('form[data-selection]');
    if (!form) return;
    keep(form, new Set());
    showSelection(form);
    release();
  });

  // ---- Connection, pause and the page's own status ----------------------
  //
  // The pill in the header says whether the page is live. It keeps one
  // width whatever it says, so the header never reflows. The note at the
  // top of the content says what the operator needs to act on: live updates
  // paused (and how many wait), or the connection lost (since when).
  let connection = 'static';
  let lostAt = null;
  const byId = (id) => document.getElementById(id);
  const clock = (date) => date.toTimeString().slice(0, 8);
  const plural = (n, one, many) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

  const showState = () => {
    const pill = byId('live-state');
    if (!pill) return;
    const [state, label] = connection === 'live' && paused
      ? ['paused', 'paused']
      : {
        static: ['static', 'static'],
        live: ['live', 'live'],
        reconnecting: ['reconnecting', 'reconnecting…'],
        down: ['down', 'offline'],
      }[connection];
    pill.dataset.state = state;
    pill.textContent = label;
  };

  const showNote = () => {
    const note = byId('live-note');
    if (!note) return;
    const lines = [];
    if (lostAt) {
      lines.push(['live-lost', `Connection lost at ${clock(lostAt)}: what you see is as of then, and health is unknown until it is back. Reconnecting…`]);
    }
    if (paused) {
      lines.push(['live-waiting', `Live updates paused: ${plural(waiting, 'update', 'updates')} waiting.`]);
    }
    note.hidden = lines.length === 0;
    note.replaceChildren(...lines.map(([testId, text]) => {
      const line = document.createElement('span');
      line.dataset.testId = testId;
      line.textContent = text;
      return line;
    }));
  };

  const showPause = () => {
    const button = byId('live-pause');
    if (button) {
      button.setAttribute('aria-pressed', paused ? 'true' : 'false');
      button.textContent = paused ? 'Resume live' : 'Pause live';
    }
    showState();
    showNote();
  };

  const togglePause = () => {
    paused = !paused;
    waiting = 0;
    showPause();
    if (!paused) {
      release();
      if (lostAt) markStale();
    }
  };

  // Health shown while the connection is lost is a guess: every health
  // indicator of a live region ([data-health]) says unknown (its
  // data-unknown text), and each region dims and says "as of" when. The
  // full snapshot that follows a reconnect brings the real ones back.
  const healthShown = new Map();
  const markStale = () => {
    const asOf = `as of ${clock(lostAt)}`;
    for (const id of regions) {
      const region = byId(id);
      if (!region) continue;
      region.setAttribute('data-stale', asOf);
      for (const el of region.querySelectorAll('[data-health]:not([data-health="unknown"])')) {
        healthShown.set(el, { nodes: Array.from(el.childNodes), health: el.getAttribute('data-health') });
        el.setAttribute('data-health', 'unknown');
        el.replaceChildren(document.createTextNode(el.getAttribute('data-unknown') || 'unknown'));
      }
    }
  };
  const unmarkStale = () => {
    for (const [el, { nodes, health }] of healthShown) {
      if (el.isConnected && el.getAttribute('data-health') === 'unknown') {
        el.setAttribute('data-health', health);
        el.replaceChildren(...nodes);
      }
    }
    healthShown.clear();
    for (const region of document.querySelectorAll('[data-stale]')) region.removeAttribute('data-stale');
  };

  const lost = (state) => {
    connection = state;
    if (!lostAt) {
      lostAt = new Date();
      document.body.dataset.connection = 'lost';
      markStale();
    }
    showState();
    showNote();
  };
  const regained = () => {
    connection = 'live';
    if (lostAt) {
      lostAt = null;
      delete document.body.dataset.connection;
      unmarkStale();
    }
    showState();
    showNote();
  };

  const connect = (url) => {
    const source = new EventSource(url);
    source.addEventListener('open', regained);
    source.addEventListener('swap', (event) => swap(event.data));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered an error): try again
        // later rather than going quiet for good.
        lost('down');
        setTimeout(() => connect(url), 5000);
      } else {
        lost('reconnecting');
      }
    });
  };

  // A page shown again from the back-forward cache still holds the ids a
  // submit added: they go, so a later submit posts only what is ticked.
  window.addEventListener('pageshow', () => {
    for (const hidden of document.querySelectorAll('input[data-unseen]')) hidden.remove();
    for (const form of selectionForms(document)) showSelection(form);
  });

  // The sections menu on phones: Menu opens and closes it, Escape closes
  // it and gives focus back to Menu.
  const menu = () => {
    const toggle = byId('nav-toggle');
    const header = toggle && toggle.closest('header');
    if (!header) return;
    document.documentElement.classList.add('scripted');
    toggle.hidden = false;
    const open = (yes) => {
      header.classList.toggle('nav-open', yes);
      toggle.setAttribute('aria-expanded', yes ? 'true' : 'false');
    };
    toggle.addEventListener('click', () => open(toggle.getAttribute('aria-expanded') !== 'true'));
    header.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || toggle.getAttribute('aria-expanded') !== 'true') return;
      open(false);
      toggle.focus();
    });
  };

  // On a phone, filters fold away unless one is on: the jobs come first.
  const foldFilters = () => {
    if (!window.matchMedia('(max-width: 40rem)').matches) return;
    for (const details of document.querySelectorAll('details.search-toggle[data-active="false"]')) {
      details.open = false;
    }
  };

  // Charts: the bar under the pointer, or chosen with the arrow keys once
  // the chart has focus, is read out under it (the bars' own titles say
  // it on hover without the script). Delegated, so charts swapped in live
  // work too.
  const readout = (svg, bar) => {
    const figure = svg.closest('figure');
    const out = figure && figure.querySelector('.readout');
    if (!out) return;
    for (const chosen of svg.querySelectorAll('g.chosen')) chosen.classList.remove('chosen');
    if (!bar) {
      out.textContent = '';
      return;
    }
    bar.classList.add('chosen');
    const title = bar.querySelector('title');
    out.textContent = title ? title.textContent : '';
  };
  // The bar under the pointer by its column, so the space above a short
  // bar reads it too.
  document.addEventListener('mousemove', (event) => {
    const svg = event.target instanceof Element && event.target.closest('figure.chart svg');
    if (!svg) return;
    const bars = svg.querySelectorAll('g');
    const box = svg.getBoundingClientRect();
    if (!bars.length || box.width <= 0) return;
    const at = Math.floor(((event.clientX - box.left) / box.width) * bars.length);
    const bar = bars[Math.min(bars.length - 1, Math.max(0, at))];
    if (!bar.classList.contains('chosen')) readout(svg, bar);
  });
  document.addEventListener('focusin', (event) => {
    const svg = event.target instanceof Element && event.target.closest('figure.chart svg');
    if (!svg) return;
    const bars = svg.querySelectorAll('g');
    readout(svg, svg.querySelector('g.chosen') || bars[bars.length - 1]);
  });
  document.addEventListener('keydown', (event) => {
    const svg = event.target instanceof Element && event.target.closest('figure.chart svg');
    if (!svg || !['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) return;
    const bars = Array.from(svg.querySelectorAll('g'));
    if (!bars.length) return;
    const at = bars.findIndex((g) => g.classList.contains('chosen'));
    const from = at < 0 ? bars.length - 1 : at;
    const to = {
      ArrowLeft: Math.max(0, from - 1),
      ArrowRight: Math.min(bars.length - 1, from + 1),
      Home: 0,
      End: bars.length - 1,
    }[event.key];
    event.preventDefault();
    readout(svg, bars[to]);
  });

  // A strip of tabs scrolled sideways (phones) shows the current one.
  const showCurrentTabs = () => {
    for (const tab of document.querySelectorAll('.tabs > .current')) {
      const strip = tab.parentElement;
      if (strip.scrollWidth > strip.clientWidth) strip.scrollLeft = tab.offsetLeft - strip.offsetLeft - 16;
    }
  };

  const start = () => {
    menu();
    foldFilters();
    showCurrentTabs();
    fitTables(document);
    refreshAges(document);
    for (const form of selectionForms(document)) showSelection(form);
    setInterval(() => refreshAges(document), 5000);
    const url = document.body && document.body.dataset.live;
    if (url && 'EventSource' in window) {
      const button = byId('live-pause');
      if (button) {
        button.hidden = false;
        button.addEventListener('click', togglePause);
      }
      showPause();
      connect(url);
    }
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
