// Switchyard's page script, served at /app.js.
//
// Pages are complete without it: every button is a form that posts and
// comes back. With it, a page listens to its server-sent event stream
// (the URL in <body data-live>) and swaps in each region the server
// renders, matched by element id. The server sends a full snapshot on
// every (re)connect, so a dropped connection never leaves a stale screen.
(() => {
  'use strict';

  const indicator = () => document.getElementById('live-state');
  const setState = (state, label) => {
    const el = indicator();
    if (el) {
      el.dataset.state = state;
      el.textContent = label;
    }
  };

  // Relative times ("4 s ago") kept current between updates.
  const ago = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  };
  const refreshAges = (root) => {
    const now = Date.now();
    for (const el of root.querySelectorAll('time[data-ago]')) {
      const at = Date.parse(el.getAttribute('datetime'));
      if (!Number.isNaN(at)) el.textContent = ago(now - at);
    }
  };

  // A region replaced under a pressed button would swallow the click, so
  // swaps wait while the pointer is down; the latest version of each
  // region wins. A region holding the field the operator is typing in or
  // choosing from (a silence length, say) waits until focus leaves it:
  // swapping it would wipe their choice.
  let holding = false;
  const pending = new Map();

  const FIELDS = 'input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea';
  const editing = (region) => {
    const el = document.activeElement;
    return !!el && region.contains(el) && el.matches(FIELDS);
  };

  const swap = (html) => {
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const next = template.content.firstElementChild;
    if (!next || !next.id) return;
    const current = document.getElementById(next.id);
    if (holding || (current && editing(current))) {
      pending.set(next.id, next);
      return;
    }
    apply(next);
  };

  // Where a field's value is kept across a swap: its form's action and its
  // name, which stay the same when the region is rendered again.
  const fieldKey = (el) => `${el.form ? el.form.getAttribute('action') : ''}|${el.name}`;
  const changed = (el) => {
    if (el.tagName === 'SELECT') {
      return Array.from(el.options).some((o) => o.selected !== o.defaultSelected);
    }
    return el.value !== el.defaultValue;
  };

  const apply = (next) => {
    const current = document.getElementById(next.id);
    if (!current) return;
    // Keep the operator's selection across updates of a table, and any
    // field they changed without submitting yet.
    const picked = new Set();
    for (const box of current.querySelectorAll('input[type=checkbox][name]')) {
      if (box.checked) picked.add(`${box.name}=${box.value}`);
    }
    const edited = new Map();
    for (const el of current.querySelectorAll(FIELDS)) {
      if (el.name && changed(el)) edited.set(fieldKey(el), el.value);
    }
    current.replaceWith(next);
    for (const box of next.querySelectorAll('input[type=checkbox][name]')) {
      if (picked.has(`${box.name}=${box.value}`)) box.checked = true;
    }
    for (const el of next.querySelectorAll(FIELDS)) {
      const key = el.name && fieldKey(el);
      if (!key || !edited.has(key)) continue;
      const value = edited.get(key);
      // A choice the new version no longer offers is dropped, not blanked.
      if (el.tagName === 'SELECT' && !Array.from(el.options).some((o) => o.value === value)) continue;
      el.value = value;
    }
    refreshAges(next);
  };

  // Applies what waited, except regions still being edited.
  const release = () => {
    for (const [id, next] of pending) {
      const current = document.getElementById(id);
      if (current && editing(current)) continue;
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
  });

  // "Select all" boxes tick every box belonging to their form.
  document.addEventListener('change', (event) => {
    const all = event.target;
    const formId = all.dataset && all.dataset.selectAll;
    if (!formId) return;
    for (const box of document.querySelectorAll(`input[type=checkbox][form="${formId}"]`)) {
      box.checked = all.checked;
    }
  });

  const connect = (url) => {
    const source = new EventSource(url);
    source.addEventListener('open', () => setState('live', 'live'));
    source.addEventListener('swap', (event) => swap(event.data));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered an error): try again
        // later rather than going quiet for good.
        setState('down', 'disconnected');
        setTimeout(() => connect(url), 5000);
      } else {
        setState('reconnecting', 'reconnecting…');
      }
    });
  };

  const start = () => {
    refreshAges(document);
    setInterval(() => refreshAges(document), 5000);
    const url = document.body && document.body.dataset.live;
    if (url && 'EventSource' in window) connect(url);
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
