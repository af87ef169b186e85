// The Cache page in a real browser, as an operator uses it, by keyboard
// only: against `switchyard demo`, whose three instances read the caches
// `patients` (each holds other keys: not comparable) and `search-params`
// (all hold the same keys: they match). The operator opens a namespace,
// reads its chart over a day, invalidates a key and then the whole
// namespace (asked first); a live update never eats a half-typed key; the
// page fits a 390 px phone and reads in light and dark.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  waitLive,
  countSwaps,
  markWindow,
  stillMarked,
  poll,
  api,
} from './support.mjs';

const NS = 'search-params';

let server;
let browser;

before(async () => {
  server = await startServer('demo');
  browser = await launchBrowser();
  // The demo's instances need a few heartbeats to have read every key of
  // search-params; the page is visited once they agree.
  await poll('search-params to match across the demo instances', async () => {
    const list = await api(server, '/api/cache');
    const text = JSON.stringify(list);
    const detail = await api(server, `/api/cache/${NS}`, { expect: [200, 404] });
    return text.includes(NS) && JSON.stringify(detail ?? {}).includes('"matches"');
  }, { timeout: 30_000, interval: 500 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Presses Enter on a focused control and waits for the page it loads. */
async function enter(page, locator) {
  await locator.focus();
  const navigated = page.waitForNavigation({ waitUntil: 'load' });
  await page.keyboard.press('Enter');
  return navigated;
}

test('an operator opens a namespace by keyboard, reads its chart and invalidates a key and then the namespace', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/cache');
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Cache · Switchyard');
    await waitLive(page);
    const table = page.getByTestId('cache-namespaces-table');
    await table.waitFor();
    await page.getByTestId('cache-ns-patients').waitFor();
    const row = page.getByTestId(`cache-ns-${NS}`);
    await row.waitFor();
    assert.match(await page.getByTestId('cache-ns-patients-agreement').innerText(), /not comparable/);

    // Follow the namespace's link by keyboard.
    await enter(page, row.getByRole('link', { name: NS }));
    assert.equal(new URL(page.url()).searchParams.get('ns'), NS);
    assert.equal(await row.getByRole('link', { name: NS }).getAttribute('aria-current'), 'page');
    await page.getByTestId('cache-chart').waitFor();
    assert.match(await page.getByTestId('cache-chart-summary').innerText(), /^Hit ratio of search-params \(every instance\) over the last hour: /);
    assert.equal((await page.getByTestId('cache-agreement-badge').innerText()).trim(), 'matches');
    assert.equal(await page.getByTestId('cache-instances-table').locator('tbody tr').count(), 3);

    // A day instead of the hour.
    await enter(page, page.getByTestId('cache-range-24h'));
    assert.equal(new URL(page.url()).searchParams.get('range'), '24h');
    assert.equal(await page.getByTestId('cache-range-24h').getAttribute('aria-current'), 'page');
    assert.match(await page.getByTestId('cache-chart-summary').innerText(), /24 hours|day/);
    await page.screenshot({ path: join(artifacts, 'cache.png'), fullPage: true });

    // A key typed and submitted with Enter.
    const key = page.getByTestId('cache-key');
    await key.focus();
    await page.keyboard.type('Patient');
    const invalidated = page.waitForNavigation({ waitUntil: 'load' });
    await page.keyboard.press('Enter');
    await invalidated;
    assert.match(
      await page.getByTestId('notice').innerText(),
      new RegExp(`Invalidated Patient in ${NS}: dropped from the shared tier, every instance told`),
    );
    // Back on the same namespace and range.
    assert.equal(new URL(page.url()).searchParams.get('ns'), NS);

    // The whole namespace: asked first, then the notice counts the entries.
    let question;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    await enter(page, page.getByTestId('cache-invalidate-all'));
    assert.match(question, new RegExp(`Drop every entry of ${NS} from the shared tier and from every instance\\?`));
    assert.match(
      await page.getByTestId('notice').innerText(),
      new RegExp(`Invalidated namespace ${NS}: (no|\\d[\\d,]*) (entry|entries) dropped from the shared tier`),
    );
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('declining the confirmation invalidates nothing', async () => {
  const { context, page } = await newSignedInPage(browser, server);
  try {
    await page.goto(`${server.url}/cache?ns=${NS}`);
    let asked = false;
    page.once('dialog', async (dialog) => {
      asked = true;
      await dialog.dismiss();
    });
    await markWindow(page);
    await page.getByTestId('cache-invalidate-all').focus();
    await page.keyboard.press('Enter');
    await poll('the confirmation', () => asked);
    await page.waitForTimeout(300);
    assert.ok(await stillMarked(page), 'the page was left although the operator declined');
    assert.equal(await page.getByTestId('notice').count(), 0);
  } finally {
    await context.close();
  }
});

test('a live update never loses a half-typed key or its focus', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  await countSwaps(page);
  try {
    await page.goto(`${server.url}/cache?ns=${NS}`);
    await waitLive(page);
    await markWindow(page);
    const key = page.getByTestId('cache-key');
    await key.focus();
    await page.keyboard.type('patient-1');
    const before = await page.evaluate(() => window.__swaps);
    // The hub sends the page's regions every few seconds; wait out more
    // than one update.
    await poll('a live update', async () => (await page.evaluate(() => window.__swaps)) > before, { timeout: 15_000 });
    await page.waitForTimeout(3_500);
    await page.keyboard.type('7');
    assert.equal(await key.inputValue(), 'patient-17');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testId), 'cache-key');
    assert.equal(await page.evaluate(() => window.__focusedSwaps), 0, 'a swap landed on the focused form');
    assert.ok(await stillMarked(page), 'the page reloaded');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('the Instances page names each instance\'s caches with its own badge and links to them', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(`${server.url}/instances`);
    const row = page.getByTestId('instance-row-demo-api-1');
    await row.waitFor();
    const params = row.getByTestId(`instance-cache-${NS}`);
    await poll('demo-api-1 to match on search-params', async () => /matches/.test(await params.innerText()));
    assert.match(await row.getByTestId('instance-cache-patients').innerText(), /not comparable/);
    await enter(page, params.getByRole('link', { name: NS }));
    assert.equal(new URL(page.url()).pathname, '/cache');
    assert.equal(new URL(page.url()).searchParams.get('ns'), NS);
    await page.getByTestId('cache-chart').waitFor();
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('the page fits a 390 px phone and reads in light and dark', async () => {
  const backgrounds = {};
  for (const colorScheme of ['light', 'dark']) {
    for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
      const phone = viewport.width === 390;
      const { context, page, errors } = await newSignedInPage(browser, server, {
        viewport,
        colorScheme,
        ...(phone ? { isMobile: true, hasTouch: true } : {}),
      });
      try {
        await page.goto(`${server.url}/cache?ns=${NS}`);
        await waitLive(page);
        await page.getByTestId('cache-chart').waitFor();
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= viewport.width, `${colorScheme} at ${viewport.width} px scrolls sideways (${width} px)`);
        assert.equal(
          await page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches),
          colorScheme === 'dark',
        );
        // Text and background differ in either scheme (the stylesheet
        // follows the scheme, not a fixed colour).
        const [fg, bg] = await page.evaluate(() => {
          const style = getComputedStyle(document.body);
          return [style.color, style.backgroundColor];
        });
        assert.notEqual(fg, bg);
        backgrounds[colorScheme] = bg;
        await page.screenshot({ path: join(artifacts, `cache-${colorScheme}-${viewport.width}.png`), fullPage: true });
        assert.deepEqual(errors, [], 'the page script threw');
      } finally {
        await context.close();
      }
    }
  }
  // The scheme is followed, not ignored.
  assert.notEqual(backgrounds.light, backgrounds.dark);
});
