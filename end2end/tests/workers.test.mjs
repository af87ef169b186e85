// The Workers page in a real browser, against `switchyard demo`, whose
// queues each have a coord worker: the page lists them live with their busy
// slots and running jobs; an operator quiets one with the keyboard alone,
// the queue then says "all workers quiet", and Resume brings it back; a
// viewer sees the workers but no buttons.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  waitLive,
  markWindow,
  stillMarked,
  addUser,
  api,
  poll,
} from './support.mjs';

const QUEUE = 'emails';

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

/** The state a worker of `queue` reports, per the API. */
async function stateOf(queue) {
  const body = await api(server, `/api/workers?queue=${queue}`);
  return body.workers[0]?.state;
}

test('the workers page lists every demo worker with its jobs, live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/workers');
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Workers · Switchyard');
    await waitLive(page);
    await markWindow(page);
    for (const queue of ['emails', 'reports', 'webhooks']) {
      const row = page.locator('[data-test-id^="worker-row-"]').filter({
        has: page.locator(`[data-test-id="worker-queue"]:text-is("${queue}")`),
      });
      await row.first().waitFor({ timeout: 20_000 });
      assert.equal((await row.first().getByTestId('worker-liveness').innerText()).trim(), 'Live');
    }
    assert.match(await page.getByTestId('worker-counts').innerText(), /running/);
    // What the workers did moves without a reload.
    const done = page.locator('[data-test-id="worker-done"]').first();
    const before = await done.innerText();
    await page.waitForFunction(
      (previous) => document.querySelector('[data-test-id="worker-done"]')?.textContent !== previous,
      before,
      { timeout: 30_000 },
    );
    assert.ok(await stillMarked(page), 'the rows moved without a reload');
    // The BullMQ part says BullMQ is off in the demo, and what it could not know anyway.
    assert.match(await page.getByTestId('bull-workers-unknowable').innerText(), /CLIENT LIST/);
    await page.screenshot({ path: join(artifacts, 'workers.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('an operator quiets and resumes a worker from the keyboard', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(`${server.url}/workers?queue=${QUEUE}`);
    await waitLive(page);
    const row = page.locator('[data-test-id^="worker-row-"]').first();
    await row.waitFor();
    // Focus the row's Quiet and press Enter, as a keyboard user would.
    await row.getByTestId('worker-quiet').focus();
    const quieted = page.waitForNavigation({ waitUntil: 'load' });
    await page.keyboard.press('Enter');
    await quieted;
    assert.match(await page.getByTestId('notice').innerText(), /takes no new jobs/);
    assert.equal(new URL(page.url()).search, `?queue=${QUEUE}`);
    // The worker takes it up at its next heartbeat; the row follows live.
    await waitLive(page);
    await page.waitForFunction(
      () =>
        document.querySelector('[data-test-id^="worker-row-"] [data-test-id="worker-state"]')?.textContent.trim() ===
        'quiet',
      null,
      { timeout: 20_000 },
    );
    await poll('the API to say quiet', async () => (await stateOf(QUEUE)) === 'quiet');
    // The queue says nobody takes its jobs now.
    await page.goto(`${server.url}/queues?q=${QUEUE}`);
    const badge = page.getByTestId(`queue-row-${QUEUE}`).getByTestId('queue-workers');
    await badge.waitFor({ timeout: 15_000 });
    assert.equal((await badge.innerText()).trim(), 'all workers quiet');

    await page.goto(`${server.url}/workers?queue=${QUEUE}`);
    await waitLive(page);
    const resume = page.locator('[data-test-id^="worker-row-"]').first().getByTestId('worker-resume');
    await resume.focus();
    const resumed = page.waitForNavigation({ waitUntil: 'load' });
    await page.keyboard.press('Enter');
    await resumed;
    await poll('the API to say running', async () => (await stateOf(QUEUE)) === 'running');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a viewer sees the workers but no buttons', async () => {
  const viewer = await addUser(server, 'e2e-workers-viewer', 'viewer', 'viewer-password-0123');
  const { context, page, errors } = await newSignedInPage(browser, server, { as: viewer });
  try {
    await page.goto(`${server.url}/workers`);
    const row = page.locator('[data-test-id^="worker-row-"]').first();
    await row.waitFor({ timeout: 20_000 });
    for (const action of ['worker-quiet', 'worker-stop']) {
      const button = row.getByTestId(action);
      if ((await button.count()) > 0) {
        assert.equal(await button.isVisible(), false, `${action} is hidden from a viewer`);
      }
    }
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
