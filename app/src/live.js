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
  // swapping it would wipe their choice. A table with ticked rows waits
  // too when the update brings rows it does not show: they are announced
  // ("12 new — show") rather than pushing the ticked rows down.
  let holding = false;
  const pending = new Map();

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

  // Why a version of a region cannot go in now: true while the pointer
  // is down or a field in it is being edited; a count of rows to announce
  // while rows in it are ticked.
  const blocked = (current, next) => {
    if (holding || editing(current)) return true;
    return arrivals(current, next);
  };

  const swap = (html) => {
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const next = template.content.firstElementChild;
    if (!next || !next.id) return;
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
    unannounce(next.id);
    // Keep any field the operator changed without submitting yet, and the
    // other boxes they ticked (a rule's "enabled", say) while the row is
    // still there. Job selections are kept by showSelection.
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
    for (const form of selectionForms(document)) showSelection(form);
    refreshAges(next);
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

  // A page shown again from the back-forward cache still holds the ids a
  // submit added: they go, so a later submit posts only what is ticked.
  window.addEventListener('pageshow', () => {
    for (const hidden of document.querySelectorAll('input[data-unseen]')) hidden.remove();
    for (const form of selectionForms(document)) showSelection(form);
  });

  const start = () => {
    refreshAges(document);
    for (const form of selectionForms(document)) showSelection(form);
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
