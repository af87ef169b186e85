// Hostile text renders as inert text everywhere (issue 7), in a real
// browser against `switchyard demo` on Redis: classic script-injection
// payloads are put in every place a page shows outside data — job names,
// job data, failure reasons, channel names and messages, instance ids and
// report fields, alert-rule targets, refused requests in the audit log,
// search boxes, error pages and the sign-in page (a refused user name, the
// page to go back to) — and every page that shows them is opened,
// left to take its live (server-sent) updates, and checked: no payload ran,
// no dialog opened, no element carries an event-handler attribute or a
// `javascript:` URL, and each payload is visible as text.
//
// The server's Content-Security-Policy already forbids inline script, which
// would hide an escaping bug from this test; the pages are therefore opened
// with the policy bypassed (a control proves injected markup would run),
// so what is tested is the escaping itself.
//
// Channel traffic and instances have no HTTP entry point (services publish
// on Redis and heartbeat into it), so the server runs on Redis under a
// prefix of its own and the test writes there with `redis-cli`, the way a
// foreign service would; everything under the prefix is deleted at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, launchBrowser, newSignedInPage, openPage, submitSignIn, api, jobInState, poll, waitLive, countSwaps } from './support.mjs';

const run = promisify(execFile);
const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `e2e-xss-${process.pid}-${Date.now()}`;

/** The vectors; each sets `window.__xss` to its number if it ever runs. */
const PAYLOADS = [
  '<script>window.__xss=1</script>',
  '"><img src=x onerror="window.__xss=2">',
  '<svg onload="window.__xss=3">',
  'javascript:window.__xss=4',
  '</textarea><script>window.__xss=5</script>',
  "'-window.__xss=6-'",
  '" autofocus onfocus="window.__xss=7',
  // Already entity-encoded: must show literally, never decoded into markup.
  '&lt;img src=x onerror=window.__xss=8&gt;',
];

/** Instance ids may not contain whitespace: the same vectors without it. */
const INSTANCE_IDS = [
  '<script>window.__xss=11</script>',
  '"><img/src=x/onerror="window.__xss=12">',
  '<svg/onload=window.__xss=13>',
  'javascript:window.__xss=14',
  '"/autofocus/onfocus="window.__xss=17',
];
const ROLE = '<svg/onload=window.__xss=23>';
const VERSION = "'-window.__xss=26-'";

/** Channel names are free on Redis (the dashboard observes every one). */
const CHANNELS = ['<script>window.__xss=31</script>', '"><img src=x onerror="window.__xss=32">'];
/** A well-formed envelope whose fields are all hostile. */
const ENVELOPE = JSON.stringify({
  instanceId: PAYLOADS[6],
  timestamp: 1,
  changeType: PAYLOADS[4],
  keys: [PAYLOADS[2]],
  source: PAYLOADS[5],
  payload: { note: PAYLOADS[0] },
});
const MESSAGES = [...PAYLOADS, ENVELOPE];

let server;
let browser;
let publisher;
/** Job id per payload (same index). */
const jobs = [];

function redis(...args) {
  return run('redis-cli', ['-u', REDIS_URL, ...args]).then((r) => r.stdout.trim());
}

/** Writes one instance report the way `RedisRegistry` does, 30 s old (stale). */
async function registerInstance(id, lastError) {
  const now = Date.now();
  const report = JSON.stringify({
    id,
    role: ROLE,
    version: VERSION,
    startedAt: now - 120_000,
    heartbeatAt: now - 30_000,
    sync: { appliedVersion: 0, stateHash: PAYLOADS[0], lastError, busConnected: true },
  });
  assert.equal(await redis('SET', `${PREFIX}:instance:${id}`, report, 'PX', '600000'), 'OK');
  await redis('HSET', `${PREFIX}:instances`, id, report);
}

/** Publishes the hostile messages round-robin on the hostile channels until stopped. */
function startPublishing() {
  let n = 0;
  let stopped = false;
  let busy = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    const message = MESSAGES[n % MESSAGES.length];
    n += 1;
    busy = Promise.all(
      CHANNELS.map((c) => redis('PUBLISH', `${PREFIX}:notifications:${c}`, message)),
    ).catch((err) => console.error(`publish failed: ${err.message}`));
  }, 150);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await busy;
    },
  };
}

async function deletePrefix() {
  const keys = (await redis('--scan', '--pattern', `${PREFIX}*`)).split('\n').filter(Boolean);
  for (let i = 0; i < keys.length; i += 200) {
    await redis('DEL', ...keys.slice(i, i + 200));
  }
}

before(async () => {
  try {
    assert.equal(await redis('PING'), 'PONG');
  } catch (err) {
    throw new Error(`Redis must answer at ${REDIS_URL} (scripts/prepare starts it): ${err.message}`);
  }
  server = await startServer('demo', [
    '--redis', REDIS_URL,
    '--redis-prefix', PREFIX,
    '--alert-interval', '1',
  ]);
  browser = await launchBrowser();
  publisher = startPublishing();

  // Jobs: the name, the data (a key too) and the failure reason are hostile.
  for (const p of PAYLOADS) {
    const { id } = await api(server, '/api/queues/webhooks/jobs', {
      method: 'POST',
      body: { name: p, data: { fail: p, note: p, [p]: [p] }, options: { attempts: 1 } },
    });
    jobs.push(id);
  }
  // Alert rules that never fire, with hostile targets (shown in form fields).
  for (const [i, p] of PAYLOADS.entries()) {
    await api(server, '/api/alerts/rules', {
      method: 'POST',
      body: { name: `xss-${i + 1}`, kind: 'queue_backlog', target: p, threshold: 1e9 },
    });
  }
  // Refused requests: a rule named by a payload is refused and audited
  // with the payload as its target.
  for (const p of PAYLOADS) {
    await api(server, '/api/alerts/rules', {
      method: 'POST',
      body: { name: p, kind: 'queue_backlog', target: 'webhooks' },
      expect: [400],
    });
  }
  // Stale instances with hostile ids and fields; the shipped
  // `instance-stale` rule (on every instance) raises one firing alert
  // naming them all (the worst five), shown in the banner of every page.
  for (const [i, id] of INSTANCE_IDS.entries()) {
    await registerInstance(id, PAYLOADS[i % PAYLOADS.length]);
  }
  await Promise.all(jobs.map((id) => jobInState(server, 'webhooks', id, 'failed')));
  await poll('an instance-stale alert firing for every hostile instance', async () => {
    const { active } = await api(server, '/api/alerts');
    const stale = active.find((a) => a.status === 'firing' && a.rule === 'instance-stale');
    return stale && INSTANCE_IDS.every((id) => stale.summary.includes(id));
  });
});

after(async () => {
  await publisher?.stop();
  await browser?.close();
  await server?.stop();
  await deletePrefix().catch((err) => console.error(`could not clean Redis: ${err.message}`));
});

/**
 * A page that counts live swaps (regions merged in), with the CSP
 * bypassed so injected script would run, and that records dialogs; signed
 * in as the server's admin unless `signedIn` is false.
 */
async function xssPage({ signedIn = true } = {}) {
  const opened = signedIn
    ? await newSignedInPage(browser, server, { bypassCSP: true })
    : await openPage(browser, { bypassCSP: true });
  const dialogs = [];
  opened.page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await countSwaps(opened.context);
  return { ...opened, dialogs };
}

/** What the page shows as text: its rendered text and its form fields' values. */
function shown() {
  const fields = [...document.querySelectorAll('input, textarea, select')].map((f) => f.value);
  return [document.body.innerText, ...fields].join('\n');
}

/**
 * Opens `path` (answering `status`), waits for the live stream to swap in
 * regions, for every `expected` text to show, and for pending loads (an
 * `<img src=x>` error) to settle; then checks nothing ran.
 */
async function visit(opened, path, { status = 200, expected = [] } = {}) {
  const { page, errors, dialogs } = opened;
  const response = await page.goto(server.url + path);
  assert.equal(response.status(), status, `${path} answered ${response.status()}`);
  if (await page.locator('body[data-live]').count()) {
    await waitLive(page);
    await page.waitForFunction(() => window.__swaps > 0, null, { timeout: 10_000 });
  }
  try {
    await page.waitForFunction(
      (expected) => {
        const fields = [...document.querySelectorAll('input, textarea, select')].map((f) => f.value);
        const text = [document.body.innerText, ...fields].join('\n');
        return expected.every((e) => text.includes(e));
      },
      expected,
      { timeout: 10_000 },
    );
  } catch {
    const text = await page.evaluate(shown);
    const missing = expected.filter((e) => !text.includes(e));
    assert.fail(`${path}: not shown as text: ${JSON.stringify(missing)}`);
  }
  await page.waitForTimeout(200);
  return inspect(opened, path);
}

/** Fails if a payload ran, markup was injected, a dialog opened or the page threw. */
async function inspect({ page, errors, dialogs }, path) {
  const found = await page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('*')) {
      for (const { name, value } of el.attributes) {
        const n = name.toLowerCase();
        if (n.startsWith('on')) bad.push(`<${el.localName} ${n}="${value}">`);
        if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(n) && /^\s*javascript:/i.test(value)) {
          bad.push(`<${el.localName} ${n}="${value}">`);
        }
      }
      if (['iframe', 'object', 'embed', 'base'].includes(el.localName)) bad.push(`<${el.localName}>`);
    }
    for (const s of document.scripts) {
      if (!s.src || s.textContent.trim()) bad.push(`inline script: ${s.outerHTML.slice(0, 120)}`);
    }
    return { xss: window.__xss, bad, swaps: window.__swaps };
  });
  assert.equal(found.xss, undefined, `${path}: payload ${found.xss} ran`);
  assert.deepEqual(found.bad, [], `${path}: injected markup`);
  assert.deepEqual(dialogs, [], `${path}: a dialog opened`);
  assert.deepEqual(errors, [], `${path}: the page script threw`);
  return found;
}

/** JSON's escaping of a string (how it shows in the pretty-printed data). */
const inJson = (s) => JSON.stringify(s).slice(1, -1);

test('the control: with the policy bypassed, injected markup does run', async () => {
  const opened = await xssPage();
  try {
    await opened.page.goto(server.url + '/queues');
    await opened.page.evaluate(() =>
      document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__xss=\'control\'">'),
    );
    await opened.page.waitForFunction(() => window.__xss === 'control', null, { timeout: 5_000 });
  } finally {
    await opened.context.close();
  }
});

test('queue pages: job names, failure reasons and the search box stay text', async () => {
  const opened = await xssPage();
  try {
    const banner = INSTANCE_IDS;
    await visit(opened, '/', { expected: banner });
    await visit(opened, '/queues', { expected: banner });
    await visit(opened, '/queues/webhooks?state=failed&q=__xss', { expected: [...PAYLOADS, ...banner] });
    // The filter echoes its text into the search box (and the live URL).
    for (const p of PAYLOADS) {
      await visit(opened, `/queues/webhooks?state=failed&q=${encodeURIComponent(p)}`, { expected: [p] });
      assert.equal(await opened.page.getByTestId('filter-text').inputValue(), p);
    }
  } finally {
    await opened.context.close();
  }
});

test('job pages: the name, the pretty-printed data and the failure reason stay text', async () => {
  const opened = await xssPage();
  try {
    for (const [i, p] of PAYLOADS.entries()) {
      await visit(opened, `/queues/webhooks/jobs/${jobs[i]}`, { expected: [p, inJson(p)] });
    }
  } finally {
    await opened.context.close();
  }
});

test('fleet pages: channel names and messages, instance ids and reports stay text', async () => {
  const opened = await xssPage();
  try {
    // Messages keep arriving while the page is open: its regions are
    // swapped many times over.
    const found = await visit(opened, '/channels', { expected: [...CHANNELS, ...PAYLOADS, ENVELOPE] });
    await opened.page.waitForFunction((n) => window.__swaps >= n + 5, found.swaps, { timeout: 10_000 });
    await inspect(opened, '/channels (after more messages)');
    await visit(opened, '/instances', {
      expected: [...INSTANCE_IDS, ROLE, VERSION, ...PAYLOADS.slice(0, INSTANCE_IDS.length)],
    });
    await visit(opened, '/ratelimits', { expected: INSTANCE_IDS });
  } finally {
    await opened.context.close();
  }
});

test('alerts and audit: alert subjects, rule targets and refused names stay text', async () => {
  const opened = await xssPage();
  try {
    await visit(opened, '/alerts', { expected: [...INSTANCE_IDS, ...PAYLOADS] });
    for (const p of PAYLOADS) {
      // The refused rule is listed (the text is the entry, not only the
      // echo in the filter's field).
      await visit(opened, `/audit?target=${encodeURIComponent(p)}`, { expected: [p] });
      assert.equal(await opened.page.getByTestId('audit-filter-target').inputValue(), p);
      const target = opened.page.getByTestId('audit-target').first();
      assert.ok((await target.innerText()).includes(p), `audit entry for ${p}`);
      // A filter matching nothing still echoes its text.
      await visit(opened, `/audit?actor=${encodeURIComponent(p)}`, { expected: [p] });
      assert.equal(await opened.page.getByTestId('audit-filter-actor').inputValue(), p);
    }
  } finally {
    await opened.context.close();
  }
});

test('error pages: hostile queue names, job ids and paths are refused and echoed as text', async () => {
  // Queue names are restricted to letters, digits, '_', '.' and '-'.
  for (const p of PAYLOADS) {
    await api(server, `/api/queues/${encodeURIComponent(p)}/jobs`, {
      method: 'POST',
      body: { name: 'x', data: {} },
      expect: [400],
    });
  }
  const opened = await xssPage();
  try {
    for (const p of PAYLOADS) {
      const segment = encodeURIComponent(p);
      // The reason quotes the name as Rust does (`"` escaped, like JSON).
      await visit(opened, `/queues/${segment}`, { status: 400, expected: [inJson(p)] });
      await visit(opened, `/queues/webhooks/jobs/${segment}`, { status: 400, expected: [inJson(p)] });
      await visit(opened, `/no-such-page/${segment}`, { status: 404, expected: [`/no-such-page/${segment}`] });
    }
  } finally {
    await opened.context.close();
  }
});

test('the sign-in page: the page to go back to and a refused user name stay text', async () => {
  // Signed out: a signed-in browser is sent straight on from /login.
  const opened = await xssPage({ signedIn: false });
  try {
    // `next` is echoed in the form when it is a local path (no whitespace).
    for (const p of INSTANCE_IDS) {
      const next = `/${p}`;
      await visit(opened, `/login?next=${encodeURIComponent(next)}`, { expected: [next] });
    }
    // A refused sign-in shows the form again with the name that was tried.
    // Each attempt counts against the sign-in limit (10 a minute per
    // address, shared with this file's other sign-ins): three are enough
    // for the text, attribute-breaking and event-handler cases.
    for (const p of [PAYLOADS[0], PAYLOADS[1], PAYLOADS[6]]) {
      await opened.page.goto(server.url + '/login');
      const response = await submitSignIn(opened.page, { user: p, password: 'not the password at all' });
      assert.equal(response.status(), 401);
      assert.equal(await opened.page.getByTestId('login-error').innerText(), 'Wrong user name or password.');
      assert.equal(await opened.page.getByTestId('login-username').inputValue(), p);
      await opened.page.waitForTimeout(200);
      await inspect(opened, `/login (refused ${JSON.stringify(p)})`);
    }
  } finally {
    await opened.context.close();
  }
});
