// Search from the header of any page, in a real browser against
// `switchyard demo`: words in a job's data find it across queues, and a
// job id lists every queue that has it, each linking to the job.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, artifacts, newSignedInPage, api, poll, submit } from './support.mjs';

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

test('the header box finds a job by a word in its data and by its id, from any page', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await api(server, '/api/queues/reports/pause', { method: 'POST' });
    const { id } = await api(server, '/api/queues/reports/jobs', {
      method: 'POST',
      body: { name: 'e2e-search <b>x</b>', data: { customer: 'zebracorn-e2e', n: 7 } },
    });
    // The server's indexer adds it within a second or so.
    await poll('the job to be indexed', async () => {
      const body = await api(server, '/api/search?q=zebracorn');
      return body.unindexed === 0 && body.hits.some((h) => h.queue === 'reports' && h.id === id);
    });

    await page.goto(`${server.url}/queues`);
    const box = page.getByTestId('header-search');
    await box.fill('data.customer:zebracorn-e2e');
    let landed = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), box.press('Enter')]);
    assert.equal(landed[0].status(), 200);
    const hit = page.getByTestId('search-hit').filter({ hasText: 'reports' });
    assert.equal(await hit.count(), 1);
    assert.match(await hit.innerText(), /e2e-search <b>x<\/b>/, 'the name shows as text');
    assert.match(await page.getByTestId('search-scope').innerText(), /^Searched the text index/);
    await page.screenshot({ path: join(artifacts, 'search.png'), fullPage: true });

    // An id: every queue that has it (ids are per queue), one of them ours.
    await page.getByTestId('header-search').fill(id);
    landed = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByTestId('header-search').press('Enter')]);
    const foundIn = page.getByTestId('found-in');
    assert.match(await foundIn.innerText(), new RegExp(`Job ${id} found in \\d+ queues?`));
    const link = page.getByTestId('found-job').filter({ hasText: 'reports' });
    landed = await submit(page, link);
    assert.equal(new URL(page.url()).pathname, `/queues/reports/jobs/${id}`);

    // A bad query says why and keeps what was typed.
    await page.getByTestId('header-search').fill('colour:red');
    landed = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByTestId('header-search').press('Enter')]);
    assert.equal(landed[0].status(), 400);
    assert.match(await page.getByTestId('search-error').innerText(), /unknown qualifier/);
    assert.equal(await page.getByTestId('search-query').inputValue(), 'colour:red');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await api(server, '/api/queues/reports/resume', { method: 'POST' }).catch(() => {});
    await context.close();
  }
});
