// Live updates as a person at the keyboard meets them, in a real browser
// against `switchyard demo`: focus stays where it is through live swaps,
// a ticked row keeps its tick when it moves, updates can be paused and
// resumed, and a lost connection shows stale figures and unknown health
// (and recovers when the server is back).
//
// The tests fail jobs of their own on `reports` (named `e2e-live…`) to make
// the page change, so they do not wait for the demo's own traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  api,
  poll,
  waitLive,
  jobInState,
  countSwaps,
} from './support.mjs';

const QUEUE = 'reports';

let server;
let browser;

before(async () => {
  server = await startServer('demo');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Enqueues a job the demo workers fail at once, named `name`. */
async function failing(target, name, message) {
  const { id } = await api(target, `/api/queues/${QUEUE}/jobs`, {
    method: 'POST',
    body: { name, data: { fail: message }, options: { attempts: 1 } },
  });
  return id;
}

/** Keeps failing jobs on `reports` every `ms` until the returned stop is called. */
function keepFailing(target, name, ms = 300) {
  let running = true;
  const done = (async () => {
    let i = 0;
    while (running) {
      await failing(target, name, `e2e live churn ${i}`);
      i += 1;
      await new Promise((r) => setTimeout(r, ms));
    }
  })();
  return async () => {
    running = false;
    await done;
  };
}

test('keyboard focus stays on its element through 20 live swaps while tabbing through a changing failed tab', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  await countSwaps(page);
  const ids = [];
  for (let i = 0; i < 12; i += 1) ids.push(await failing(server, 'e2e-live-focus', `focus ${i}`));
  for (const id of ids) await jobInState(server, QUEUE, id, 'failed');
  const stop = keepFailing(server, 'e2e-live-churn');
  try {
    const response = await page.goto(`${server.url}/queues/${QUEUE}?state=failed`);
    assert.equal(response.status(), 200);
    await waitLive(page);

    // The first stop is the skip link; it takes focus past the navigation.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), 'skip-link');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'content');

    // Tab into the jobs and stay on each stop until a swap of the region
    // holding it has landed; the focused element must be the very same
    // one afterwards, in the same job's row.
    let kept = 0;
    let steps = 0;
    while (kept < 20) {
      steps += 1;
      assert.ok(steps < 200, `only ${kept} swaps landed on the focused region in ${steps} tab stops`);
      await page.keyboard.press('Tab');
      const where = await page.evaluate(() => {
        const el = document.activeElement;
        el.__mark = (window.__markCount = (window.__markCount || 0) + 1);
        const region = el.closest('#jobs, #queue-header');
        const row = el.closest('tr[data-test-id^="job-row-"]');
        return {
          html: el.outerHTML.slice(0, 300),
          mark: el.__mark,
          inRegion: !!region,
          text: el.matches('input[type=search], input[type=text], select'),
          row: row ? row.dataset.testId : null,
          focused: window.__focusedSwaps,
        };
      });
      assert.notEqual(await page.evaluate(() => document.activeElement === document.body), true, 'focus fell to <body>');
      // Swaps wait while a text field is edited: nothing to see there.
      if (!where.inRegion || where.text) continue;
      await page.waitForFunction((before) => window.__focusedSwaps > before, where.focused, { timeout: 15_000 });
      const after = await page.evaluate(() => {
        const el = document.activeElement;
        const row = el.closest('tr[data-test-id^="job-row-"]');
        return { html: el.outerHTML.slice(0, 300), mark: el.__mark, body: el === document.body, row: row ? row.dataset.testId : null };
      });
      assert.equal(after.body, false, `focus fell to <body> after a swap (stop ${steps})`);
      assert.equal(after.mark, where.mark, `focus moved to another element after a swap (stop ${steps}): ${where.html} → ${after.html}`);
      assert.equal(after.row, where.row, `focus left its job's row (stop ${steps})`);
      kept += await page.evaluate((before) => window.__focusedSwaps - before, where.focused);
    }
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await stop();
    await context.close();
  }
});

test('a ticked row keeps its tick and focus when rows above it leave', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const ids = [];
    for (let i = 0; i < 4; i += 1) ids.push(await failing(server, 'e2e-live-tick', `tick ${i}`));
    for (const id of ids) await jobInState(server, QUEUE, id, 'failed');
    const response = await page.goto(`${server.url}/queues/${QUEUE}?state=failed&name=e2e-live-tick`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    // Newest first: ids[0] is the last row. Tick it by keyboard.
    const row = page.getByTestId(`job-row-${ids[0]}`);
    await row.getByTestId('select-job').focus();
    await page.keyboard.press('Space');
    assert.ok(await row.getByTestId('select-job').isChecked());
    const top = await page.evaluate((id) => {
      const box = document.querySelector(`[data-test-id="job-row-${id}"] [data-test-id="select-job"]`);
      box.__mark = 'ticked';
      return box.getBoundingClientRect().top;
    }, ids[0]);

    // Two rows above it are removed elsewhere: the ticked row moves up.
    for (const id of [ids[3], ids[2]]) {
      await api(server, `/api/queues/${QUEUE}/jobs/${id}/remove`, { method: 'POST' });
    }
    await poll('the removed rows to leave the table', async () => (await page.getByTestId(`job-row-${ids[3]}`).count()) === 0
      && (await page.getByTestId(`job-row-${ids[2]}`).count()) === 0, { timeout: 15_000 });
    const now = await page.evaluate((id) => {
      const box = document.querySelector(`[data-test-id="job-row-${id}"] [data-test-id="select-job"]`);
      return {
        same: box.__mark === 'ticked',
        checked: box.checked,
        focused: document.activeElement === box,
        top: box.getBoundingClientRect().top,
      };
    }, ids[0]);
    assert.ok(now.top < top, `the row should have moved up (${top} → ${now.top})`);
    assert.ok(now.same, 'the ticked box was replaced');
    assert.ok(now.checked, 'the tick was lost');
    assert.ok(now.focused, 'the ticked box lost focus');
    assert.equal(await page.getByTestId('selection-count').innerText(), '1 selected');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('Pause live holds every update and counts them; Resume shows the latest', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  await countSwaps(page);
  try {
    const response = await page.goto(`${server.url}/queues/${QUEUE}?state=failed&name=e2e-live-pause`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const pause = page.getByTestId('live-pause');
    const pill = page.getByTestId('live-state');
    const note = page.getByTestId('live-note');
    assert.equal(await pause.innerText(), 'Pause live');
    assert.equal(await note.isVisible(), false);
    const width = (await pill.boundingBox()).width;

    // By keyboard.
    await pause.focus();
    await page.keyboard.press('Enter');
    assert.equal(await pause.getAttribute('aria-pressed'), 'true');
    assert.equal(await pause.innerText(), 'Resume live');
    assert.equal((await pill.innerText()).trim(), 'paused');
    assert.equal((await pill.boundingBox()).width, width, 'the pill changed width');
    assert.match(await note.innerText(), /Live updates paused: 0 updates waiting\./);

    const id = await failing(server, 'e2e-live-pause', 'while paused');
    await jobInState(server, QUEUE, id, 'failed');
    const swapsBefore = await page.evaluate(() => window.__swaps);
    await poll('updates to arrive while paused', async () => (await page.evaluate(() => window.__swaps)) > swapsBefore + 1);
    assert.equal(await page.getByTestId(`job-row-${id}`).count(), 0, 'a paused page showed a new row');
    const waiting = await note.innerText();
    const count = Number((waiting.match(/(\d+) updates? waiting/) || [])[1]);
    assert.ok(count >= 1, waiting);

    await page.keyboard.press('Enter');
    assert.equal(await pause.getAttribute('aria-pressed'), 'false');
    assert.equal((await pill.innerText()).trim(), 'live');
    await page.getByTestId(`job-row-${id}`).waitFor();
    assert.equal(await note.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), 'live-pause');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a lost connection dims the live regions "as of" when, makes health unknown, and recovers on a restart', async () => {
  // A server of its own: this test kills it.
  let own = await startServer('demo');
  const { context, page, errors } = await newSignedInPage(browser, own);
  try {
    const response = await page.goto(`${own.url}/queues`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const pill = page.getByTestId('live-state');
    const status = page.getByTestId('backend-status');
    assert.match(await status.innerText(), /reachable/);
    const header = await page.locator('header.top').boundingBox();
    const width = (await pill.boundingBox()).width;

    await own.kill();
    await poll('the page to notice', async () => (await page.evaluate(() => document.body.dataset.connection)) === 'lost');
    assert.match((await pill.innerText()).trim(), /^(reconnecting…|offline)$/);
    assert.equal((await pill.boundingBox()).width, width, 'the pill changed width');
    assert.equal((await page.locator('header.top').boundingBox()).height, header.height, 'the header reflowed');
    const note = await page.getByTestId('live-note').innerText();
    assert.match(note, /Connection lost at \d\d:\d\d:\d\d/);
    // Every live region dims and says as of when; no health reads green.
    const regions = await page.evaluate(() => Array.from(document.querySelectorAll('[data-stale]'))
      .map((el) => [el.id, el.getAttribute('data-stale')]));
    assert.ok(regions.some(([id]) => id === 'queues'), JSON.stringify(regions));
    assert.ok(regions.some(([id]) => id === 'health'), JSON.stringify(regions));
    for (const [, label] of regions) assert.match(label, /^as of \d\d:\d\d:\d\d$/);
    assert.equal(await status.innerText(), 'Backend embedded: unknown');
    assert.equal(await status.getAttribute('data-health'), 'unknown');
    const green = await page.evaluate(() => Array.from(document.querySelectorAll('[data-health]'))
      .filter((el) => el.getAttribute('data-health') !== 'unknown')
      .map((el) => el.outerHTML));
    assert.deepEqual(green, [], 'health still shown as known');
    await page.screenshot({ path: join(artifacts, 'live-disconnected.png'), fullPage: true });

    // The server comes back on the same address and database: the page
    // reconnects by itself and shows real health again.
    own = await startServer('demo', [], { after: own });
    await waitLive(page);
    await poll('health to come back', async () => /reachable/.test(await status.innerText()), { timeout: 15_000 });
    assert.equal(await page.evaluate(() => document.querySelectorAll('[data-stale]').length), 0);
    assert.equal(await page.evaluate(() => document.body.dataset.connection), undefined);
    assert.equal(await page.getByTestId('live-note').isVisible(), false);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
    await own.stop();
  }
});
