// Thousands of queues in a real browser: the overview stays small and
// live, and the queues page pages, sorts and filters them.
//
// One embedded server (`serve`, no demo) gets QUEUES queues of one job
// each through the API before the pages are opened.
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
  markWindow,
  stillMarked,
  submit,
  number,
} from './support.mjs';

const QUEUES = 2_000;

let server;
let browser;

const name = (i) => `tenant-${String(i).padStart(4, '0')}`;

before(async () => {
  server = await startServer('serve', ['--rate-limit-api', 'off']);
  browser = await launchBrowser();
  // Queue i holds i % 3 + 1 jobs, so the backlog order is known.
  const jobs = [];
  for (let i = 0; i < QUEUES; i += 1) {
    for (let j = 0; j <= i % 3; j += 1) jobs.push(i);
  }
  for (let at = 0; at < jobs.length; at += 16) {
    await Promise.all(
      jobs.slice(at, at + 16).map((i) =>
        api(server, `/api/queues/${name(i)}/jobs`, {
          method: 'POST',
          body: { name: 'job', data: { i } },
        }),
      ),
    );
  }
  await poll('the hub lists every queue', async () => {
    const body = await api(server, '/api/queues?limit=1');
    return body.total === QUEUES;
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the overview of thousands of queues names a few, stays small and updates live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/');
    assert.equal(response.status(), 200);
    const html = await response.text();
    assert.ok(html.length < 150_000, `the overview is ${html.length} bytes`);
    await waitLive(page);
    await markWindow(page);
    const rows = page.getByTestId('attention-table').locator('[data-test-id^="queue-row-"]');
    assert.equal(await rows.count(), 10);
    assert.match(
      await page.getByTestId('attention-more').innerText(),
      new RegExp(`and ${(QUEUES - 10).toLocaleString('en-US')} more queues`),
    );
    assert.ok((await page.locator('[data-test-id^="chart-"]').count()) <= 8);
    const waiting = number(await page.getByTestId('total-waiting').locator('.n').innerText());
    await api(server, `/api/queues/${name(3)}/jobs`, { method: 'POST', body: { name: 'more' } });
    await page.waitForFunction(
      (before) => {
        const text = document.querySelector('[data-test-id="total-waiting"] .n')?.textContent ?? '';
        return Number(text.replace(/,/g, '')) === before + 1;
      },
      waiting,
      { timeout: 15_000 },
    );
    assert.ok(await stillMarked(page), 'the totals moved without a reload');
    const size = await page.evaluate(() => document.documentElement.outerHTML.length);
    assert.ok(size < 150_000, `the live overview is ${size} bytes`);
    await page.screenshot({ path: join(artifacts, 'scale-overview.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('the queues page shows fifty queues a page, sorts by backlog and filters by name', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/queues');
    await waitLive(page);
    const rows = page.getByTestId('queues-table').locator('[data-test-id^="queue-row-"]');
    assert.equal(await rows.count(), 50);
    assert.match(await page.getByTestId('queues-pager').innerText(), /1–50 of 2,000/);
    await submit(page, page.getByTestId('queues-page-next'));
    assert.equal(await rows.first().getAttribute('data-test-id'), `queue-row-${name(50)}`);

    // Keyboard only: type a filter, pick an order, submit.
    await page.getByTestId('queues-filter-name').fill('tenant-01');
    await page.getByTestId('queues-sort').selectOption('backlog');
    const navigated = page.waitForNavigation({ waitUntil: 'load' });
    await page.getByTestId('queues-filter-name').press('Enter');
    await navigated;
    assert.match(page.url(), /sort=backlog/);
    assert.match(await page.getByTestId('queues-pager').innerText(), /of 100\b/);
    // The most backlog first: queues whose number is 2 modulo 3.
    const first = await rows.first().getAttribute('data-test-id');
    const i = Number(first.replace('queue-row-tenant-', ''));
    assert.equal(i % 3, 2, first);
    await waitLive(page);
    await markWindow(page);
    // The stream shows the same rows: a new job in a shown queue arrives
    // without a reload, and the rows stay those of the filter.
    const queue = first.replace('queue-row-', '');
    const cell = page.getByTestId(first).getByTestId('count-waiting');
    const before = number(await cell.innerText());
    await api(server, `/api/queues/${queue}/jobs`, { method: 'POST', body: { name: 'more' } });
    await poll('the row shows the new job', async () => number(await cell.innerText()) === before + 1);
    assert.ok(await stillMarked(page));
    const names = await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-test-id')));
    assert.ok(names.every((n) => n.startsWith('queue-row-tenant-01')), names.join(','));
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
