// The fleet pages in a real browser, against `switchyard demo`, whose
// simulated instances share settings through the synced state: the
// channels page shows their notifications arriving, and the instances page
// lists each instance with its sync status, both without a reload.
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
  number,
} from './support.mjs';

const DEMO_INSTANCES = ['demo-api-1', 'demo-api-2', 'demo-worker-1'];

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

test('the channels page shows the demo instances’ notifications arriving live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/channels');
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);
    const card = page.getByTestId('channel-demo.settings');
    await card.waitFor({ timeout: 20_000 });
    const first = number(await card.getByTestId('channel-total').innerText());
    await page.waitForFunction(
      (previous) => {
        const cell = document.querySelector(
          '[data-test-id="channel-demo.settings"] [data-test-id="channel-total"]',
        );
        return cell && Number(cell.textContent.replace(/[^0-9]/g, '')) > previous;
      },
      first,
      { timeout: 15_000 },
    );
    const messages = card.getByTestId('channel-messages');
    assert.match(await messages.innerText(), /demo-(api|worker)-\d/);
    assert.equal(number(await card.getByTestId('channel-malformed').innerText()), 0);
    assert.ok(await stillMarked(page), 'the traffic moved without a reload');
    await page.screenshot({ path: join(artifacts, 'channels.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('the instances page lists every demo instance as live with its sync figures', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/instances');
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);
    for (const id of DEMO_INSTANCES) {
      const row = page.getByTestId(`instance-row-${id}`);
      await row.waitFor({ timeout: 20_000 });
      assert.equal((await row.getByTestId('instance-state').innerText()).trim(), 'Live');
    }
    // The figures follow the demo's changes: some instance processes
    // notifications from the others.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-test-id="instance-counters"]')].some((cell) =>
          /[1-9]/.test(cell.textContent),
        ),
      null,
      { timeout: 20_000 },
    );
    assert.ok(await stillMarked(page), 'the rows updated without a reload');
    await page.screenshot({ path: join(artifacts, 'instances.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
