// Error groups and acting on the right jobs, in a real browser against
// `switchyard demo`: failures folded into one group on the Errors page
// (live, escaped), the failed tab filtered to that group with "Retry N
// matching", and a name filter whose buttons act on exactly its matches.
//
// The tests use `reports`, paused while they act so no demo worker picks
// up a retried job, with reasons and names of their own, so the demo's own
// random failures cannot confuse them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  api,
  enqueueFailing,
  jobInState,
  poll,
  waitLive,
  markWindow,
  stillMarked,
  submit,
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

async function resume(queue) {
  try {
    await api(server, `/api/queues/${queue}/resume`, { method: 'POST' });
  } catch (err) {
    console.error(`could not resume ${queue}: ${err.message}`);
  }
}

/** The state of each job, through the API. */
async function states(ids) {
  const out = [];
  for (const id of ids) {
    out.push((await api(server, `/api/queues/${QUEUE}/jobs/${id}`)).state);
  }
  return out;
}

test('failures fold into one group that shows up live and is retried as a whole from the filtered failed tab', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(`${server.url}/queues/${QUEUE}/errors?sort=recent`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    await markWindow(page);

    const ids = [];
    for (const order of [88121, 99230, 77342]) {
      ids.push(await enqueueFailing(server, QUEUE, `e2e <b>card</b> declined for order ${order}`));
    }
    await poll('the three jobs to fail', async () => (await states(ids)).every((s) => s === 'failed'));
    // Digits inside a word fold too: `e2e` reads `e#e` in the group.
    const row = page.locator('[data-test-id="error-group"]', { hasText: 'e#e <b>card</b> declined for order #' });
    await row.waitFor({ timeout: 20_000 });
    await poll('the group to count three jobs', async () => (await row.getAttribute('data-failed')) === '3');
    assert.ok(await stillMarked(page), 'the group arrived without a reload');
    assert.equal(await row.locator('b').count(), 0, 'the reason became markup');
    await page.screenshot({ path: join(artifacts, 'errors.png'), fullPage: true });

    // View its jobs: the failed tab filtered to the group, with its buttons.
    let landed = await submit(page, row.getByTestId('error-group-jobs'));
    assert.equal(landed.status(), 200);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('state'), 'failed');
    assert.match(url.searchParams.get('group'), /^[0-9a-f]{16}$/);
    await page.getByTestId('filter-group').waitFor();
    assert.equal(await page.locator('[data-test-id^="job-row-"]').count(), 3);
    assert.equal((await page.getByTestId('retry-matching').innerText()).trim(), 'Retry 3 matching');
    assert.equal(await page.getByTestId('retry-all').count(), 0);

    landed = await submit(page, page.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    await page.getByTestId('paused-badge').waitFor();
    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    landed = await submit(page, page.getByTestId('retry-matching'));
    assert.equal(landed.status(), 200);
    assert.equal(question, 'Retry the 3 failed jobs of this error group?');
    await poll('the group to be retried', async () => (await states(ids)).every((s) => s === 'waiting'));
    await page.locator('[data-test-id="retry-progress"][data-finished="true"]').waitFor({ timeout: 20_000 });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(QUEUE);
    await context.close();
  }
});

test('a name filter keeps across tabs and its buttons act on its matches only', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await api(server, `/api/queues/${QUEUE}/pause`, { method: 'POST' });
    const mine = [];
    for (let i = 0; i < 4; i += 1) {
      mine.push(await enqueueFailingNamed('e2e-welcome', `SMTP 421 for e2e ${i}`));
    }
    const other = await enqueueFailingNamed('e2e-invoice', 'SMTP 421 for e2e other');
    // Paused, the demo workers take nothing: run these jobs' failures by
    // resuming just long enough.
    await resume(QUEUE);
    await poll('the jobs to fail', async () => (await states([...mine, other])).every((s) => s === 'failed'));
    await api(server, `/api/queues/${QUEUE}/pause`, { method: 'POST' });

    const response = await page.goto(`${server.url}/queues/${QUEUE}?state=failed&name=e2e-welcome`);
    assert.equal(response.status(), 200);
    assert.equal((await page.getByTestId('retry-matching').innerText()).trim(), 'Retry 4 matching');
    assert.equal(await page.getByTestId('retry-all').count(), 0, 'no "retry all" while filtered');
    const waitingTab = await page.getByTestId('tab-waiting').getAttribute('href');
    assert.match(waitingTab, /name=e2e-welcome/, 'the filter travels with the tabs');

    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    const landed = await submit(page, page.getByTestId('retry-matching'));
    assert.equal(landed.status(), 200);
    assert.equal(question, 'Retry the 4 failed jobs matching the filter?');
    assert.match(await page.getByTestId('notice').innerText(), /Retrying the 4 matching jobs/);
    await poll('the matches to be retried', async () => (await states(mine)).every((s) => s === 'waiting'));
    assert.deepEqual(await states([other]), ['failed'], 'a job outside the filter was retried');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(QUEUE);
    await context.close();
  }
});

test('ticks are kept by job id when new failures would push the ticked row off the page', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const first = [];
    for (let i = 0; i < 3; i += 1) first.push(await enqueueFailingNamed('e2e-tick', `tick ${i}`));
    await poll('the jobs to fail', async () => (await states(first)).every((s) => s === 'failed'));

    // Three to a page, newest first: the first job is on the last row.
    const response = await page.goto(`${server.url}/queues/${QUEUE}?state=failed&limit=3&name=e2e-tick`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const oldest = page.getByTestId(`job-row-${first[0]}`);
    await oldest.getByTestId('select-job').check();
    const count = page.getByTestId('selection-count');
    assert.equal(await count.innerText(), '1 selected');

    // Two new failures: the table holds still and announces them.
    const later = [];
    for (let i = 0; i < 2; i += 1) later.push(await enqueueFailingNamed('e2e-tick', `tick later ${i}`));
    await poll('the new jobs to fail', async () => (await states(later)).every((s) => s === 'failed'));
    const show = page.getByTestId('show-new');
    await poll('the new rows to be announced', async () => (await show.count()) === 1
      && (await show.innerText()) === '2 new — show');
    assert.ok(await oldest.getByTestId('select-job').isChecked(), 'the ticked row lost its tick');
    await api(server, `/api/queues/${QUEUE}/pause`, { method: 'POST' });

    // Shown, the ticked row is on page 2 and still counted.
    await show.click();
    await page.getByTestId(`job-row-${later[1]}`).waitFor();
    assert.equal(await oldest.count(), 0, 'the ticked row should have moved to page 2');
    assert.equal(await count.innerText(), '1 selected (1 not shown)');
    assert.equal(await page.getByTestId('show-new').count(), 0);
    await page.getByTestId(`job-row-${later[1]}`).getByTestId('select-job').check();
    assert.equal(await count.innerText(), '2 selected (1 not shown)');

    const landed = await submit(page, page.getByTestId('retry-selected'));
    assert.equal(landed.status(), 200);
    assert.match(await page.getByTestId('notice').innerText(), /Retried 2 jobs/);
    assert.deepEqual(await states([first[0], later[1]]), ['waiting', 'waiting']);
    assert.deepEqual(await states([first[1], first[2], later[0]]), ['failed', 'failed', 'failed']);
    assert.equal(await page.getByTestId('selection-bar').isVisible(), false, 'a posted selection is forgotten');

    // Clear forgets every tick.
    await page.getByTestId(`job-row-${first[1]}`).getByTestId('select-job').check();
    assert.equal(await count.innerText(), '1 selected');
    await page.getByTestId('selection-clear').click();
    assert.equal(await page.getByTestId('selection-bar').isVisible(), false);
    assert.equal(await page.getByTestId(`job-row-${first[1]}`).getByTestId('select-job').isChecked(), false);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(QUEUE);
    await context.close();
  }
});

/** A job named `name` the demo workers fail at once with `message`. */
async function enqueueFailingNamed(name, message) {
  const { id } = await api(server, `/api/queues/${QUEUE}/jobs`, {
    method: 'POST',
    body: { name, data: { fail: message }, options: { attempts: 1 } },
  });
  return id;
}

test("a job backing off after a failure is on the Retrying view, and Stop retrying fails it as the operator's", async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    // A demo worker fails it once; it then waits ten minutes to retry.
    const { id } = await api(server, `/api/queues/${QUEUE}/jobs`, {
      method: 'POST',
      body: {
        name: 'e2e-backoff',
        data: { flaky: 'ledger locked by batch 77120' },
        options: { attempts: 5, backoff: { type: 'fixed', delayMs: 600000 } },
      },
    });
    await jobInState(server, QUEUE, id, 'delayed');
    let response = await page.goto(`${server.url}/queues/${QUEUE}`);
    assert.equal(response.status(), 200);
    response = await submit(page, page.getByTestId('retrying-link'));
    assert.equal(new URL(page.url()).pathname, `/queues/${QUEUE}/retrying`);
    const row = page.getByTestId(`job-row-${id}`);
    await row.waitFor();
    assert.equal(await row.getByTestId('last-error').innerText(), 'ledger locked by batch 77120');
    assert.equal(await row.getByTestId('attempts-left').innerText(), '1/5 · 4 left');

    // By keyboard: focus the row's Stop retrying and press Enter.
    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    const navigated = page.waitForNavigation({ waitUntil: 'load' });
    await row.getByTestId('stop-retrying').focus();
    await page.keyboard.press('Enter');
    await navigated;
    assert.equal(question, `Stop retrying job ${id}? It moves to the failed set now.`);
    assert.match(await page.getByTestId('notice').innerText(), /will not be retried/);
    assert.equal(await page.getByTestId(`job-row-${id}`).count(), 0, 'gone from the Retrying view');

    const job = await api(server, `/api/queues/${QUEUE}/jobs/${id}`);
    assert.equal(job.state, 'failed');
    assert.equal(job.failure, 'stopped by an operator');
    await page.goto(`${server.url}/queues/${QUEUE}/jobs/${id}`);
    assert.equal(await page.getByTestId('failure-kind').innerText(), 'stopped by an operator');
    assert.equal(await page.getByTestId('stop-retrying').count(), 0);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
