// The Rate limits page in a real browser, against `switchyard demo`, whose
// simulated API clients run into the demo service's limits: the page lists
// the policies, shows usage moving without a reload, lists a key the login
// limit blocked, and unblocks it with the button.
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
  submit,
} from './support.mjs';

// The demo's password guesser: blocked by `demo.login` some 20 s after the
// start, and only again 10 s after an unblock.
const GUESSER = '198.51.100.23';

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

test('the rate limits page shows policies and usage, live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/ratelimits');
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);
    for (const policy of ['dashboard.pages', 'demo.api.free', 'demo.api.pro', 'demo.login']) {
      await page
        .locator(`[data-test-id="ratelimit-policy"][data-policy="${policy}"]`)
        .waitFor({ timeout: 20_000 });
    }
    assert.match(await page.getByTestId('ratelimit-backend').innerText(), /in-process/);
    // A busy client's usage appears and moves without a reload.
    const row = page.locator('[data-test-id="ratelimit-row"][data-key="acme-corp"]');
    await row.waitFor({ timeout: 20_000 });
    const first = await row.getByTestId('key-count').innerText();
    await page.waitForFunction(
      (previous) => {
        const cell = document.querySelector(
          '[data-test-id="ratelimit-row"][data-key="acme-corp"] [data-test-id="key-count"]',
        );
        return cell && cell.textContent !== previous;
      },
      first,
      { timeout: 15_000 },
    );
    // The scraper goes over its limit: rejections show in the chart.
    await page.waitForFunction(
      () => {
        const total = document.querySelector('[data-test-id="rejected-total"]');
        const count = total?.textContent.match(/^\s*([\d,]+) rejected/);
        return count && Number(count[1].replace(/,/g, '')) > 0;
      },
      null,
      { timeout: 30_000 },
    );
    assert.ok(await stillMarked(page), 'the figures moved without a reload');
    assert.equal(await page.getByTestId('ratelimit-degraded').count(), 0);
    await page.screenshot({ path: join(artifacts, 'ratelimits.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a blocked key appears live and Unblock lifts the block', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/ratelimits');
    await waitLive(page);
    const blocked = page.locator(`[data-test-id="blocked-row"][data-key="${GUESSER}"]`);
    await blocked.waitFor({ timeout: 45_000 });
    assert.match(await blocked.innerText(), /demo\.login/);
    // Its Top keys row has its Unblock too, next to the Blocked badge.
    const top = page.locator(`[data-test-id="ratelimit-row"][data-policy="demo.login"][data-key="${GUESSER}"]`);
    await top.getByTestId('key-unblock').waitFor({ timeout: 15_000 });
    assert.equal(await top.getByTestId('key-blocked').count(), 1);
    // The dashboard's own limits are apart from the services' keys.
    assert.equal(
      await page.getByTestId('top-keys-table').locator('[data-test-id="ratelimit-row"][data-policy^="dashboard."]').count(),
      0,
    );
    page.once('dialog', (dialog) => dialog.accept());
    await submit(page, blocked.getByTestId('unblock-button'));
    assert.match(
      await page.getByTestId('notice').innerText(),
      new RegExp(`Unblocked ${GUESSER.replace(/\./g, '\\.')} under demo\\.login`),
    );
    // The page it returns to already shows the block gone.
    assert.equal(
      await page.locator(`[data-test-id="blocked-row"][data-key="${GUESSER}"]`).count(),
      0,
    );
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
