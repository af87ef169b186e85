// The live dashboard in a real browser, against `switchyard demo`: pages
// that update themselves over server-sent events, operator actions that
// work with and without JavaScript, and error pages a person can read.
//
// One server serves the whole file. Each test acts on its own queue so
// none disturbs another: the overview and queues table only read,
// `webhooks` is for the single failed job, `thumbnails` for retry-all,
// `emails` for the job page, `reports` for the no-JavaScript forms and
// `e2e-notice` (a queue no demo worker serves) for notices. Jobs are
// identified by id, so the demo's own random failures cannot confuse a
// test; queues a test pauses are resumed when it ends, pass or fail.
// Every page is opened signed in as the server's admin (`newSignedInPage`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  api,
  authHeaders,
  counts,
  enqueueFailing,
  poll,
  jobInState,
  waitLive,
  markWindow,
  stillMarked,
  submit,
  number,
} from './support.mjs';

const DEMO_QUEUES = ['emails', 'reports', 'webhooks', 'thumbnails'];
const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'];

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

/** Resumes a queue through the API (cleanup: never hides a test's failure). */
async function resume(queue) {
  try {
    await api(server, `/api/queues/${queue}/resume`, { method: 'POST' });
  } catch (err) {
    console.error(`could not resume ${queue}: ${err.message}`);
  }
}

/** The text of every count cell of the queues table, as one string. */
function queueCountsSignature(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-test-id^="queue-row-"] [data-test-id^="count-"]')]
      .map((cell) => cell.textContent.trim())
      .join('|'),
  );
}

test('the overview shows totals, alerts and a throughput chart per demo queue, live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/');
    assert.equal(response.status(), 200);
    // Firing alerts and failed jobs across queues lead the tab's title.
    assert.match(await page.title(), /^(\(\d+\) )?(\d[\d,]* failed · )?Switchyard$/);
    await page.getByTestId('totals').waitFor();
    for (const state of STATES) {
      await page.getByTestId(`total-${state}`).waitFor();
    }
    await page.getByTestId('alerts').waitFor();
    assert.match(await page.getByTestId('backend-status').innerText(), /reachable/);
    await waitLive(page);
    await markWindow(page);

    // One pane: every capability the demo runs has its card, linking to
    // its page; BullMQ is off in the demo, so it has none.
    await page.waitForFunction(
      () => /^3\/3 in sync$/.test(document.querySelector('[data-test-id="glance-instances"] [data-test-id="glance-main"]')?.textContent || ''),
      null,
      { timeout: 20_000 },
    );
    assert.match(await page.getByTestId('glance-channels').innerText(), /messages\/s/);
    assert.match(await page.getByTestId('glance-ratelimits').innerText(), /rejected\/min/);
    assert.match(await page.getByTestId('glance-alerts').innerText(), /firing/);
    assert.equal(await page.getByTestId('glance-bullmq').count(), 0);
    assert.equal(await page.getByTestId('glance-instances').getAttribute('href'), '/instances');
    assert.equal(await page.getByTestId('total-failed').getAttribute('href'), '/search?q=state%3Afailed');

    // The demo's producers start with the server: charts appear, then fill
    // with bars as jobs finish, all without a reload. Charts show finished
    // minutes (the region changes once a minute), so the first bars come
    // when the server's first minute turns.
    for (const queue of DEMO_QUEUES) {
      await page.getByTestId(`chart-${queue}`).waitFor({ timeout: 20_000 });
    }
    await page.waitForFunction(
      (queues) =>
        queues.every((queue) =>
          [...document.querySelectorAll(`[data-test-id="chart-${queue}"] rect`)].some(
            (bar) => Number(bar.getAttribute('height')) > 0,
          ),
        ),
      DEMO_QUEUES,
      { timeout: 80_000 },
    );
    // A chart reads out the bar chosen from the keyboard: its minute and
    // values; the value axis has round numbers.
    const chart = page.getByTestId(`chart-${DEMO_QUEUES[0]}`);
    await chart.locator('svg').focus();
    const readout = chart.getByTestId('bar-readout');
    assert.match(await readout.innerText(), /^\d\d:\d\d: [\d,]+ completed, [\d,]+ failed$/);
    const lastMinute = await readout.innerText();
    await page.keyboard.press('ArrowLeft');
    assert.notEqual(await readout.innerText(), lastMinute);
    await page.keyboard.press('End');
    assert.equal(await readout.innerText(), lastMinute);
    const axis = await chart.locator('.y-axis span').allInnerTexts();
    assert.equal(axis.length, 3);
    assert.equal(axis[2], '0');
    assert.match(axis[0], /^(1|2|5)0*$|^[125]0{0,2},0{3}/);

    const completed = await page.getByTestId('total-completed').innerText();
    await page.waitForFunction(
      (before) => document.querySelector('[data-test-id="total-completed"]')?.innerText !== before,
      completed,
      { timeout: 15_000 },
    );
    assert.ok(await stillMarked(page), 'the overview updated itself without a reload');
    assert.equal(await page.getByTestId('live-state').innerText(), 'live');
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('the queues table lists the demo queues and its counts move without a reload', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/queues');
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);
    for (const queue of DEMO_QUEUES) {
      await page.getByTestId(`queue-row-${queue}`).waitFor({ timeout: 20_000 });
    }
    const rows = page.locator('[data-test-id^="queue-row-"]');
    assert.ok((await rows.count()) >= 3, 'the demo creates several queues');
    for (const state of STATES) {
      assert.equal(await page.getByTestId(`queue-row-emails`).getByTestId(`count-${state}`).count(), 1);
    }

    // Counts change at least twice while the page stays the same document.
    for (let change = 0; change < 2; change += 1) {
      const before = await queueCountsSignature(page);
      await page.waitForFunction(
        (previous) =>
          [...document.querySelectorAll('[data-test-id^="queue-row-"] [data-test-id^="count-"]')]
            .map((cell) => cell.textContent.trim())
            .join('|') !== previous,
        before,
        { timeout: 15_000 },
      );
    }
    const completed = number(
      await page.getByTestId('queue-row-emails').getByTestId('count-completed').innerText(),
    );
    assert.ok(completed > 0, 'demo workers complete jobs');
    assert.ok(await stillMarked(page), 'the counts moved without a reload');
    await page.screenshot({ path: join(artifacts, 'queues.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a failed job appears live, and Retry moves it out of the failed table', async () => {
  const queue = 'webhooks';
  const message = 'e2e boom <script>window.__xss=1</script>';
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(`${server.url}/queues/${queue}?state=failed`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);

    const id = await enqueueFailing(server, queue, message);
    const row = page.getByTestId(`job-row-${id}`);
    await row.waitFor({ timeout: 20_000 });
    assert.ok(await stillMarked(page), 'the failed job arrived without a reload');
    // The error is shown as text: the markup in it is neither parsed nor run.
    assert.equal((await row.getByTestId('failed-reason').innerText()).trim(), message);
    assert.equal(await row.locator('script').count(), 0, 'the error became markup');
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'the error ran as a script');
    await page.screenshot({ path: join(artifacts, 'failed.png'), fullPage: true });

    // Paused, the demo workers take no webhooks job, so nothing but this
    // test moves the retried job.
    let landed = await submit(page, page.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    await page.getByTestId('paused-badge').waitFor();
    assert.match(await page.getByTestId('notice').innerText(), /paused/);
    await page.getByTestId('resume-queue').waitFor();
    assert.equal((await counts(server, queue)).paused, true);
    await waitLive(page);

    landed = await submit(page, row.getByTestId('retry-job'));
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'failed', 'Retry comes back to the failed table');
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Job ${id} was retried`));
    await row.waitFor({ state: 'detached' });
    assert.equal((await api(server, `/api/queues/${queue}/jobs/${id}`)).state, 'waiting');
    await page.getByTestId('paused-badge').waitFor();
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(queue);
    await context.close();
  }
});

test('Retry all retries every failed job of a paused queue and reports its progress', async (t) => {
  const queue = 'thumbnails';
  // More than the demo keeps in a failed set (500 per queue), so the set is
  // full when the test retries it.
  const bulk = 600;
  const { context, page, errors } = await newSignedInPage(browser, server);
  // Every value the progress element shows on the page, in order.
  await context.addInitScript(() => {
    window.__progress = [];
    const record = () => {
      const el = document.querySelector('[data-test-id="retry-progress"]');
      if (!el) return;
      const seen = { done: Number(el.dataset.done), total: Number(el.dataset.total), finished: el.dataset.finished };
      const last = window.__progress[window.__progress.length - 1];
      if (!last || last.done !== seen.done || last.total !== seen.total || last.finished !== seen.finished) {
        window.__progress.push(seen);
      }
    };
    new MutationObserver(record).observe(document, { childList: true, subtree: true, attributes: true });
  });
  try {
    const start = await counts(server, queue);
    let next = 0;
    const enqueueSome = async () => {
      while (next < bulk) {
        next += 1;
        await enqueueFailing(server, queue, `bulk boom ${next}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, enqueueSome));
    await poll(
      `${bulk} jobs of ${queue} to fail`,
      async () => {
        const now = await counts(server, queue);
        return now.failedTotal >= start.failedTotal + bulk ? now : false;
      },
      { timeout: 30_000 },
    );

    const response = await page.goto(`${server.url}/queues/${queue}?state=failed`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const landed = await submit(page, page.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    await page.getByTestId('paused-badge').waitFor();

    // Jobs running when the queue paused finish; then the failed set stays
    // as it is until someone retries it.
    const settled = await poll(`${queue} to have no active job`, async () => {
      const now = await counts(server, queue);
      return now.active === 0 ? now : false;
    });
    const failed = settled.failed;
    assert.ok(failed >= 100, `the failed set is full (${failed})`);
    await page.waitForFunction(
      (n) => {
        const tab = document.querySelector('[data-test-id="tab-failed"]');
        return tab && Number(tab.textContent.replace(/[^0-9]/g, '')) === n;
      },
      failed,
      { timeout: 15_000 },
    );

    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    const retried = await submit(page, page.getByTestId('retry-all'));
    assert.equal(retried.status(), 200);
    assert.equal(question, `Retry all ${failed.toLocaleString('en-US')} failed jobs?`);
    assert.match(await page.getByTestId('notice').innerText(), /Retrying all failed jobs/);
    await waitLive(page);

    const progress = page.getByTestId('retry-progress');
    await page.locator('[data-test-id="retry-progress"][data-finished="true"]').waitFor({ timeout: 30_000 });
    assert.equal(Number(await progress.getAttribute('data-done')), failed);
    assert.equal(Number(await progress.getAttribute('data-total')), failed);
    assert.match(await progress.innerText(), new RegExp(`Retried ${failed.toLocaleString('en-US')} failed jobs`));
    // The notice that said it started goes: the progress line says how it ended.
    await page.getByTestId('notice').waitFor({ state: 'detached', timeout: 10_000 });

    const seen = await page.evaluate(() => window.__progress);
    t.diagnostic(`retry-all progress seen: ${seen.map((p) => `${p.done}/${p.total}${p.finished === 'true' ? ' finished' : ''}`).join(', ')}`);
    assert.ok(seen.length > 0, 'the progress element was shown');
    for (let i = 1; i < seen.length; i += 1) {
      assert.ok(seen[i].done >= seen[i - 1].done, `progress went backwards: ${JSON.stringify(seen)}`);
    }
    for (const value of seen) {
      assert.ok(value.done <= value.total || value.total === 0, `done above total: ${JSON.stringify(seen)}`);
    }
    assert.deepEqual(seen[seen.length - 1], { done: failed, total: failed, finished: 'true' });

    await page.waitForFunction(
      () => {
        const tab = document.querySelector('[data-test-id="tab-failed"]');
        return tab && Number(tab.textContent.replace(/[^0-9]/g, '')) === 0;
      },
      null,
      { timeout: 15_000 },
    );
    await page.getByTestId('empty-jobs').waitFor();
    const after = await counts(server, queue);
    assert.equal(after.failed, 0);
    assert.equal(after.retriedTotal - start.retriedTotal, failed);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(queue);
    await context.close();
  }
});

test('the job page of a failed job shows its state, attempts and escaped data', async () => {
  const queue = 'emails';
  const message = 'job page boom <script>window.__xss=4</script>';
  const payload = { to: 'e2e@example.com', note: '<img src=x onerror="window.__xss=4">' };
  const id = await enqueueFailing(server, queue, message, payload);
  await jobInState(server, queue, id, 'failed');
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(`${server.url}/queues/${queue}?state=failed`);
    await waitLive(page);
    const row = page.getByTestId(`job-row-${id}`);
    await row.waitFor();
    await Promise.all([
      page.waitForURL(`${server.url}/queues/${queue}/jobs/${id}`),
      row.getByRole('link', { name: id, exact: true }).click(),
    ]);

    assert.equal(await page.title(), `Job ${id} · ${queue} · Switchyard`);
    assert.equal((await page.getByTestId('job-state').innerText()).trim(), 'failed');
    assert.match(await page.getByTestId('job-summary').innerText(), /Attempts 1\/1/);
    assert.equal((await page.getByTestId('job-error').innerText()).includes(message), true);
    const history = page.getByTestId('job-history');
    await history.waitFor();
    assert.ok((await history.innerText()).includes(message), 'the attempt shows its error');
    const data = page.getByTestId('job-data');
    assert.deepEqual(JSON.parse(await data.innerText()), { ...payload, fail: message });
    assert.equal(await page.locator('main script, main img').count(), 0, 'job data became markup');
    await page.getByTestId('retry-job').waitFor();
    await waitLive(page);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'job data ran as a script');
    await page.screenshot({ path: join(artifacts, 'job.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('without JavaScript, Pause and Resume still work on the queues table and the queue page', async () => {
  const queue = 'reports';
  const { context, page } = await newSignedInPage(browser, server, { javaScriptEnabled: false });
  try {
    await page.goto(server.url + '/queues');
    const row = page.getByTestId(`queue-row-${queue}`);
    await row.waitFor();
    assert.equal(await page.getByTestId('live-state').innerText(), 'static');
    assert.match(await row.getByTestId('queue-state').innerText(), /Running/);

    let landed = await submit(page, row.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/queues');
    assert.match(await row.getByTestId('queue-state').innerText(), /Paused/);
    await row.getByTestId('resume-queue').waitFor();
    assert.equal((await counts(server, queue)).paused, true);

    landed = await submit(page, row.getByTestId('resume-queue'));
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/queues');
    assert.match(await row.getByTestId('queue-state').innerText(), /Running/);
    await row.getByTestId('pause-queue').waitFor();
    assert.equal((await counts(server, queue)).paused, false);

    // The queue's own page: the header form, with its badge and notice.
    await page.goto(`${server.url}/queues/${queue}`);
    assert.equal(await page.getByTestId('paused-badge').count(), 0);
    landed = await submit(page, page.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).pathname, `/queues/${queue}`);
    await page.getByTestId('paused-badge').waitFor();
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Queue ${queue} is paused`));

    landed = await submit(page, page.getByTestId('resume-queue'));
    assert.equal(landed.status(), 200);
    assert.equal(await page.getByTestId('paused-badge').count(), 0);
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Queue ${queue} is running again`));
    assert.equal((await counts(server, queue)).paused, false);
  } finally {
    await resume(queue);
    await context.close();
  }
});

test('a pause from the queues table is confirmed there, and its notice does not follow to the next page', async () => {
  // A queue of its own that no demo worker serves.
  const queue = 'e2e-notice';
  await api(server, `/api/queues/${queue}/jobs`, { method: 'POST', body: { name: 'idle', data: {} } });
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/queues');
    const row = page.getByTestId(`queue-row-${queue}`);
    await row.waitFor();
    const landed = await submit(page, row.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    await row.getByTestId('resume-queue').waitFor();

    const problems = [];
    if ((await page.getByTestId('notice').count()) === 0) {
      problems.push('/queues does not show the notice of the pause just made there');
    }
    await page.goto(`${server.url}/queues/${queue}?state=waiting`);
    const stale = page.getByTestId('notice');
    if ((await stale.count()) > 0) {
      problems.push(`the next page shows a stale notice: ${JSON.stringify(await stale.innerText())}`);
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(queue);
    await context.close();
  }
});

test('unknown pages answer 404 and bad parameters 400, with a readable message', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    let response = await page.goto(server.url + '/queues/does-not-exist');
    assert.equal(response.status(), 404);
    assert.match(await page.title(), /^404 Not Found/);
    assert.equal(await page.getByTestId('error-title').innerText(), '404 Not Found');
    assert.match(await page.getByTestId('error-message').innerText(), /queue does-not-exist not found/);

    response = await page.goto(server.url + '/no/such/page');
    assert.equal(response.status(), 404);
    assert.match(await page.getByTestId('error-message').innerText(), /no page at \/no\/such\/page/);

    response = await page.goto(server.url + '/queues/emails?state=bogus');
    assert.equal(response.status(), 400);
    assert.equal(await page.getByTestId('error-title').innerText(), '400 Bad Request');
    const reason = await page.getByTestId('error-message').innerText();
    assert.match(reason, /"bogus"/);
    for (const state of STATES) assert.match(reason, new RegExp(state));

    // Input quoted in an error stays text.
    const evil = '<script>window.__xss=6</script>';
    response = await page.goto(`${server.url}/queues/emails?state=${encodeURIComponent(evil)}`);
    assert.equal(response.status(), 400);
    assert.ok((await page.getByTestId('error-message').innerText()).includes(evil));
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // The JSON API answers JSON errors.
    const api404 = await fetch(server.url + '/api/queues/does-not-exist', { headers: await authHeaders(server) });
    assert.equal(api404.status, 404);
    assert.match(api404.headers.get('content-type'), /application\/json/);
    assert.match(JSON.stringify(await api404.json()), /not found/i);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
