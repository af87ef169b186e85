// The BullMQ pages in a real browser, against real BullMQ: jobs are added
// and processed by the `bullmq` package itself (Queue and Worker in this
// process), and Switchyard (`serve --bullmq`) watches and operates the
// same Redis under a key prefix of its own for this run.
//
// Switchyard discovers BullMQ queues when it starts (then every 30 s), so
// both queues of the file get their first job before the server starts.
// `e2e-failing` is for the failed tab and Retry all failed, `e2e-pausing`
// for Pause and Resume, `e2e-grouped` for error groups. Every key under the run's prefix is deleted when
// the file ends, pass or fail. Workers wait on BullMQ's marker with a
// drain delay of 30 s, so a job only runs promptly if whoever made it
// ready woke them the way BullMQ does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { connectionFromUrl } from '../bullmq/common.mjs';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  poll,
  waitLive,
  markWindow,
  stillMarked,
  submit,
  number,
} from './support.mjs';

const REDIS_URL = process.env.E2E_BULLMQ_REDIS || 'redis://127.0.0.1:6379';
const prefix = `e2e-bull-${randomBytes(4).toString('hex')}`;
const connection = connectionFromUrl(REDIS_URL);
const FAILING = 'e2e-failing';
const PAUSING = 'e2e-pausing';
const GROUPED = 'e2e-grouped';

let server;
let browser;
/** BullMQ's own view of the two queues (producers and counts). */
const queues = {};

before(async () => {
  queues[FAILING] = new Queue(FAILING, { prefix, connection });
  queues[PAUSING] = new Queue(PAUSING, { prefix, connection });
  queues[GROUPED] = new Queue(GROUPED, { prefix, connection });
  // Their first jobs create the queues, so the server's first discovery
  // finds them.
  await queues[FAILING].addBulk([1, 2, 3].map((n) => ({ name: 'flaky', data: { n } })));
  await queues[PAUSING].add('seed', { n: 0 });
  await queues[GROUPED].addBulk([1, 2, 3].map((n) => ({ name: 'charge', data: { n } })));
  server = await startServer('serve', ['--bullmq', REDIS_URL, '--bullmq-prefix', prefix]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  const any = Object.values(queues)[0];
  try {
    for (const queue of Object.values(queues)) {
      await queue.obliterate({ force: true });
    }
    // Whatever obliterate leaves (the events stream, meta) goes too.
    const client = await any.client;
    for await (const keys of client.scanStream({ match: `${prefix}:*`, count: 500 })) {
      if (keys.length) await client.del(...keys);
    }
  } finally {
    await Promise.all(Object.values(queues).map((queue) => queue.close()));
  }
});

/**
 * A real BullMQ worker of `queue` in this process; `fail` makes every job
 * throw `boom <id>` (or what `reason(id)` says). `finished` lists `{ event, id, reason }` in order.
 */
function startWorker(queue, { fail = false, reason = (id) => `boom ${id}` } = {}) {
  const finished = [];
  const worker = new Worker(
    queue,
    async (job) => {
      if (fail) throw new Error(reason(job.id));
      return { done: job.id };
    },
    { prefix, connection, drainDelay: 30 },
  );
  worker.on('completed', (job) => finished.push({ event: 'completed', id: job.id, at: Date.now() }));
  worker.on('failed', (job, err) => finished.push({ event: 'failed', id: job?.id, reason: err.message, at: Date.now() }));
  worker.on('error', (err) => console.error(`worker of ${queue}: ${err.message}`));
  return { worker, finished };
}

/** Waits until `finished` holds `n` events of kind `event`; returns them. */
function finishedJobs(finished, event, n, timeout = 15_000) {
  return poll(
    `${n} ${event} jobs`,
    () => {
      const seen = finished.filter((f) => f.event === event);
      return seen.length >= n ? seen : false;
    },
    { timeout, interval: 100 },
  );
}

/** The count a state tab of the open queue page shows. */
async function tabCount(page, state) {
  return number(await page.getByTestId(`tab-${state}`).innerText());
}

/** Waits until the state tab shows `n`, without reloading the page. */
function tabShows(page, state, n, timeout = 15_000) {
  return page.waitForFunction(
    ({ state, n }) => {
      const tab = document.querySelector(`[data-test-id="tab-${state}"]`);
      return tab && Number(tab.textContent.replace(/[^0-9]/g, '')) === n;
    },
    { state, n },
    { timeout },
  );
}

test('jobs a BullMQ worker failed show with their reasons, and Retry all failed reruns them', async (t) => {
  const queue = queues[FAILING];
  const failing = startWorker(FAILING, { fail: true });
  let succeeding = null;
  const { context, page, errors } = await newSignedInPage(browser, server);
  const observer = await newSignedInPage(browser, server);
  try {
    const failedEvents = await finishedJobs(failing.finished, 'failed', 3);
    await failing.worker.close();
    const ids = failedEvents.map((f) => f.id).sort();
    assert.deepEqual(ids, ['1', '2', '3']);
    const bullCounts = await queue.getJobCounts();
    assert.equal(bullCounts.failed, 3, `BullMQ's counts: ${JSON.stringify(bullCounts)}`);

    // The list of queues shows it, with its failed count.
    let response = await page.goto(`${server.url}/bullmq`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const row = page.locator('#bull-queues').getByTestId(`queue-row-${FAILING}`);
    await row.waitFor();
    await poll('the queues table to count 3 failed jobs', async () =>
      number(await row.getByTestId('count-failed').innerText()) === 3);

    // Its page, then its Failed tab: one row per job, with its reason.
    response = await submit(page, row.getByTestId('queue-name'));
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, `/bullmq/${FAILING}`);
    await page.locator('#bull-header').getByTestId('tab-failed').waitFor();
    response = await submit(page, page.getByTestId('tab-failed'));
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'failed');
    await waitLive(page);
    const jobs = page.locator('#bull-jobs');
    for (const id of ids) {
      const jobRow = jobs.getByTestId(`job-row-${id}`);
      await jobRow.waitFor();
      assert.equal((await jobRow.getByTestId('failed-reason').innerText()).trim(), `boom ${id}`);
      await jobRow.getByTestId('retry-job').waitFor();
      await jobRow.getByTestId('remove-job').waitFor();
    }
    assert.equal(await jobs.locator('[data-test-id^="job-row-"]').count(), 3);
    assert.equal(await tabCount(page, 'failed'), bullCounts.failed, 'the Failed tab agrees with getJobCounts()');
    assert.equal(await tabCount(page, 'completed'), 0);
    await page.screenshot({ path: join(artifacts, 'bullmq.png'), fullPage: true });

    // A second page stays open on the failed tab, to see the retry live.
    const watcher = observer.page;
    await watcher.goto(`${server.url}/bullmq/${FAILING}?state=failed`);
    await waitLive(watcher);
    await tabShows(watcher, 'failed', 3);
    await markWindow(watcher);

    // A worker that succeeds, idle on BullMQ's marker with a 30 s drain delay.
    succeeding = startWorker(FAILING);
    await succeeding.worker.waitUntilReady();

    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    const retriedAt = Date.now();
    response = await submit(page, jobs.getByTestId('retry-all'));
    assert.equal(response.status(), 200);
    assert.equal(question, `Retry all 3 failed jobs of ${FAILING}?`);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'failed', 'Retry all comes back to the failed tab');
    assert.match(await page.getByTestId('notice').innerText(), /Retried 3 failed jobs/);

    const completed = await finishedJobs(succeeding.finished, 'completed', 3, 20_000);
    t.diagnostic(`the worker completed the retried jobs ${Math.max(...completed.map((c) => c.at)) - retriedAt} ms after Retry all was clicked`);
    assert.deepEqual(completed.map((c) => c.id).sort(), ids);
    assert.equal(succeeding.finished.filter((f) => f.event === 'failed').length, 0);

    // The watching page follows without a reload: no failed job, 3 completed.
    await tabShows(watcher, 'failed', 0);
    await tabShows(watcher, 'completed', 3);
    await watcher.locator('#bull-jobs').getByTestId('empty-jobs').waitFor();
    assert.equal(await watcher.locator('#bull-jobs [data-test-id^="job-row-"]').count(), 0);
    assert.ok(await stillMarked(watcher), 'the watching page updated itself without a reload');
    await tabShows(page, 'failed', 0);
    await tabShows(page, 'completed', 3);

    const after = await queue.getJobCounts();
    assert.equal(after.failed, 0, JSON.stringify(after));
    assert.equal(after.completed, 3, JSON.stringify(after));
    assert.deepEqual(errors, [], 'the page script threw');
    assert.deepEqual(observer.errors, [], 'the watching page script threw');
  } finally {
    await failing.worker.close();
    await succeeding?.worker.close();
    await context.close();
    await observer.context.close();
  }
});

test('Pause from the page stops a BullMQ worker taking jobs, and Resume lets it finish them', async (t) => {
  const queue = queues[PAUSING];
  const running = startWorker(PAUSING);
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await running.worker.waitUntilReady();
    // The seed job that created the queue runs first.
    await finishedJobs(running.finished, 'completed', 1);

    const response = await page.goto(`${server.url}/bullmq/${PAUSING}`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    const header = page.locator('#bull-header');
    await tabShows(page, 'completed', 1);
    assert.equal(await header.getByTestId('paused-badge').count(), 0);

    let landed = await submit(page, header.getByTestId('pause-queue'));
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).pathname, `/bullmq/${PAUSING}`);
    assert.match(await page.getByTestId('notice').innerText(), /paused/);
    await header.getByTestId('paused-badge').waitFor();
    await header.getByTestId('resume-queue').waitFor();
    assert.equal(await queue.isPaused(), true, "BullMQ's isPaused() after Pause");
    await waitLive(page);
    await markWindow(page);

    const added = await queue.addBulk([1, 2].map((n) => ({ name: 'held', data: { n } })));
    const heldIds = added.map((job) => job.id).sort();
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(running.finished.length, 1, `the worker took jobs of a paused queue: ${JSON.stringify(running.finished)}`);
    for (const id of heldIds) {
      const state = await queue.getJobState(id);
      assert.ok(['waiting', 'paused'].includes(state), `job ${id} is ${state} while the queue is paused`);
    }
    assert.equal(await queue.isPaused(), true);
    // The page counts the held jobs, live.
    await page.waitForFunction(
      () => ['waiting', 'paused']
        .map((s) => Number(document.querySelector(`[data-test-id="tab-${s}"]`)?.textContent.replace(/[^0-9]/g, '') || 0))
        .reduce((a, b) => a + b, 0) === 2,
      null,
      { timeout: 15_000 },
    );
    assert.ok(await stillMarked(page), 'the held jobs showed without a reload');

    const resumedAt = Date.now();
    landed = await submit(page, page.locator('#bull-header').getByTestId('resume-queue'));
    assert.equal(landed.status(), 200);
    assert.match(await page.getByTestId('notice').innerText(), /running again/);
    await page.locator('#bull-header').getByTestId('pause-queue').waitFor();
    assert.equal(await page.locator('#bull-header').getByTestId('paused-badge').count(), 0);
    assert.equal(await queue.isPaused(), false, "BullMQ's isPaused() after Resume");

    const completed = await finishedJobs(running.finished, 'completed', 3, 20_000);
    t.diagnostic(`the worker completed the held jobs ${Math.max(...completed.map((c) => c.at)) - resumedAt} ms after Resume was clicked`);
    assert.deepEqual(completed.slice(1).map((c) => c.id).sort(), heldIds);
    await waitLive(page);
    await markWindow(page);
    await tabShows(page, 'completed', 3);
    await tabShows(page, 'waiting', 0);
    await tabShows(page, 'paused', 0);
    assert.ok(await stillMarked(page));
    const counts = await queue.getJobCounts();
    assert.equal(counts.completed, 3, JSON.stringify(counts));
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await running.worker.close();
    await context.close();
  }
});

test("a BullMQ queue's failures are grouped by reason, live, and Retry group reruns exactly the group", async () => {
  const reason = (id) => `card declined for order ${id}0000`;
  const failing = startWorker(GROUPED, { fail: true, reason });
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await finishedJobs(failing.finished, 'failed', 3);
    let response = await page.goto(`${server.url}/bullmq/${GROUPED}?state=failed`);
    assert.equal(response.status(), 200);
    response = await submit(page, page.getByTestId('errors-link'));
    assert.equal(new URL(page.url()).pathname, `/bullmq/${GROUPED}/errors`);
    await waitLive(page);
    const group = page.locator('#error-groups').getByTestId('error-group');
    await poll('one group of 3 failed jobs', async () =>
      (await group.count()) === 1 && (await group.getAttribute('data-failed')) === '3');
    assert.equal(await group.getByTestId('error-group-reason').innerText(), 'card declined for order #');
    assert.equal(await page.getByTestId('errors-coverage').count(), 0, 'the groups cover every failed job');
    await markWindow(page);

    // Retry group: the still-failing worker fails them again; the page
    // follows without a reload and the count stays exact.
    let question = null;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    response = await submit(page, group.getByTestId('error-group-retry'));
    assert.equal(response.status(), 200);
    assert.equal(question, 'Retry the 3 failed jobs of this group?');
    assert.match(await page.getByTestId('notice').innerText(), /Retried 3 of the group's 3 failed jobs/);
    await finishedJobs(failing.finished, 'failed', 6, 20_000);
    await waitLive(page);
    await markWindow(page);
    await poll('the group back at 3 after failing again', async () =>
      (await group.count()) === 1 && (await group.getAttribute('data-failed')) === '3');
    const counts = await queues[GROUPED].getJobCounts();
    assert.equal(counts.failed, 3, JSON.stringify(counts));
    await page.screenshot({ path: join(artifacts, 'bullmq-errors.png'), fullPage: true });
    const groupId = await group.getAttribute('data-group');

    // A job that fails with attempts left waits out its backoff on the
    // Retrying view; the failed tab says the others used every attempt.
    const backing = await queues[GROUPED].add('charge', { n: 9 }, {
      attempts: 3,
      backoff: { type: 'fixed', delay: 600_000 },
    });
    await finishedJobs(failing.finished, 'failed', 7, 20_000);
    await page.goto(`${server.url}/bullmq/${GROUPED}`);
    await submit(page, page.getByTestId('retrying-link'));
    assert.equal(new URL(page.url()).pathname, `/bullmq/${GROUPED}/retrying`);
    const retrying = page.getByTestId(`job-row-${backing.id}`);
    await retrying.waitFor();
    assert.equal(await retrying.getByTestId('attempts-left').innerText(), '1/3 · 2 left');
    assert.equal(await retrying.getByTestId('last-error').innerText(), reason(backing.id));
    assert.equal(await retrying.getByTestId('stop-retrying').count(), 0, 'BullMQ has no such move');
    await page.goto(`${server.url}/bullmq/${GROUPED}?state=failed`);
    const kinds = await page.locator('#bull-jobs').getByTestId('failure-kind').allInnerTexts();
    assert.deepEqual(kinds, ['retries exhausted', 'retries exhausted', 'retries exhausted']);

    // Every queue's errors page lists it as a BullMQ queue's.
    await page.goto(`${server.url}/errors`);
    const queueLink = page.getByTestId('error-group-queue').filter({ hasText: GROUPED });
    await queueLink.waitFor();
    assert.equal(await queueLink.getAttribute('href'), `/bullmq/${GROUPED}/errors#group-${groupId}`);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await failing.worker.close();
    await context.close();
  }
});

test('BullMQ job schedulers on the schedules page: run now with the keyboard, then remove', async () => {
  const SCHEDULED = 'e2e-scheduled';
  queues[SCHEDULED] = new Queue(SCHEDULED, { prefix, connection });
  // BullMQ runs an `every` scheduler's first iteration at once.
  await queues[SCHEDULED].upsertJobScheduler('e2e-hourly', { every: 3_600_000 }, { name: 'tick', data: { n: 1 } });
  const scheduled = startWorker(SCHEDULED);
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await finishedJobs(scheduled.finished, 'completed', 1);
    await page.goto(`${server.url}/schedules?bull=${SCHEDULED}`);
    const row = page.locator('[data-test-id="bull-scheduler-row"][data-id="e2e-hourly"]');
    await row.waitFor();
    assert.equal((await row.getByTestId('bull-scheduler-kind').innerText()).trim(), 'scheduler');
    assert.match(await row.getByTestId('bull-scheduler-repeat').innerText(), /every 1 h/);
    assert.match(await row.getByTestId('bull-scheduler-template').innerText(), /"n":1/);
    await page.screenshot({ path: join(artifacts, 'bull-schedulers.png'), fullPage: true });

    // Run now from the keyboard: the worker takes the job, and the
    // scheduler's next run stays an hour away.
    const next = await queues[SCHEDULED].getJobScheduler('e2e-hourly');
    await row.getByTestId('bull-scheduler-run').focus();
    const ran = page.waitForNavigation({ waitUntil: 'load' });
    await page.keyboard.press('Enter');
    await ran;
    assert.match(await page.getByTestId('notice').innerText(), /Added job \d+ to BullMQ queue e2e-scheduled from e2e-hourly/);
    await finishedJobs(scheduled.finished, 'completed', 2);
    assert.equal((await queues[SCHEDULED].getJobScheduler('e2e-hourly')).next, next.next);

    // Remove asks first; BullMQ itself then lists no scheduler.
    let question;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    await submit(page, page.locator('[data-test-id="bull-scheduler-row"][data-id="e2e-hourly"]').getByTestId('bull-scheduler-remove'));
    assert.match(question, /Remove BullMQ scheduler e2e-hourly\?/);
    assert.match(await page.getByTestId('notice').innerText(), /Removed e2e-hourly/);
    assert.deepEqual(await queues[SCHEDULED].getJobSchedulers(), []);
    assert.equal(await page.getByTestId('bull-schedulers-empty').count(), 1);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await scheduled.worker.close();
    await context.close();
  }
});
