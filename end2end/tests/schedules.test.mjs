// The Schedules page in a real browser, against `switchyard demo`, which
// keeps three schedules (one every 30 s, a nightly cron in Europe/Berlin, a
// paused one) and fires them itself: the page lists them with their next
// five runs and fills in each fire live; an operator pauses, resumes and
// runs one now with the keyboard alone; an admin creates one through the
// form (a refused save keeps what was typed), edits and removes it; a
// viewer sees the schedules but no buttons. Every action is audited.
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

const row = (page, id) => page.getByTestId(`schedule-row-${id}`);

/** Presses Enter on a focused button and waits for the page it leads to. */
async function pressOn(page, button) {
  await button.focus();
  const navigated = page.waitForNavigation({ waitUntil: 'load' });
  await page.keyboard.press('Enter');
  return navigated;
}

test('the schedules page lists the demo schedules with their next runs, and fires show live', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/schedules');
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Schedules · Switchyard');
    await waitLive(page);
    await markWindow(page);
    const digest = row(page, 'emails-digest');
    assert.equal((await digest.getByTestId('schedule-status').innerText()).trim(), 'active');
    assert.match(await digest.getByTestId('schedule-repeat').innerText(), /every 30 s/);
    // The next run in words, then four more.
    assert.match(await digest.getByTestId('schedule-next-first').innerText(), /in \d+ s|due now/);
    assert.equal(await digest.getByTestId('schedule-next-list').locator('li').count(), 4);
    const nightly = row(page, 'reports-nightly');
    assert.match(await nightly.getByTestId('schedule-repeat').innerText(), /cron 0 2 \* \* \* · Europe\/Berlin/);
    assert.equal((await row(page, 'webhooks-sweep').getByTestId('schedule-status').innerText()).trim(), 'paused');
    assert.match(await page.getByTestId('schedule-counts').innerText(), /2 active · 1 paused · 0 finished/);
    // The dashboard fires the digest every 30 s; its last job shows up
    // without a reload, linking to the job.
    const lastJob = digest.getByTestId('schedule-last-job');
    await lastJob.waitFor({ timeout: 40_000 });
    assert.match(await lastJob.innerText(), /^emails-digest:\d+$/);
    assert.ok(await stillMarked(page), 'the row filled in without a reload');
    const href = await lastJob.getAttribute('href');
    assert.match(href, /^\/queues\/emails\/jobs\/emails-digest(:|%3A)\d+$/);
    await page.screenshot({ path: join(artifacts, 'schedules.png'), fullPage: true });
    const job = await page.goto(server.url + href);
    assert.equal(job.status(), 200);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('an operator pauses, resumes and runs a schedule now from the keyboard', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/schedules');
    await waitLive(page);
    await pressOn(page, row(page, 'emails-digest').getByTestId('schedule-pause'));
    assert.match(await page.getByTestId('notice').innerText(), /Paused emails-digest/);
    assert.equal((await row(page, 'emails-digest').getByTestId('schedule-status').innerText()).trim(), 'paused');
    assert.equal((await api(server, '/api/schedules/emails-digest')).status, 'paused');

    await pressOn(page, row(page, 'emails-digest').getByTestId('schedule-resume'));
    assert.match(await page.getByTestId('notice').innerText(), /Resumed emails-digest: it next fires at/);
    assert.equal((await api(server, '/api/schedules/emails-digest')).status, 'active');

    const before = await api(server, '/api/schedules/reports-nightly');
    await pressOn(page, row(page, 'reports-nightly').getByTestId('schedule-run'));
    const notice = await page.getByTestId('notice').innerText();
    const id = notice.match(/Enqueued job (reports-nightly:now-\d+)/)?.[1];
    assert.ok(id, notice);
    const job = await api(server, `/api/queues/reports/jobs/${encodeURIComponent(id)}`);
    assert.equal(job.name, 'build');
    // A manual run moves neither the next run nor the count of runs.
    const after = await api(server, '/api/schedules/reports-nightly');
    assert.equal(after.nextRunAt, before.nextRunAt);
    assert.equal(after.runs, before.runs);
    assert.equal(after.lastJobId, id);

    const audit = await api(server, '/api/audit?target=emails-digest');
    const actions = audit.entries.map((e) => e.action);
    for (const action of ['schedule.pause', 'schedule.resume']) {
      assert.ok(actions.includes(action), `${action} in ${actions}`);
    }
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('an admin creates, edits and removes a schedule; a refused save keeps what was typed', async () => {
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/schedules');
    await pressOn(page, page.getByTestId('schedule-new'));
    assert.equal(await page.title(), 'New schedule · Schedules · Switchyard');
    await page.getByTestId('schedule-form-id').fill('e2e-hourly');
    await page.getByTestId('schedule-form-queue').fill('reports');
    await page.getByTestId('schedule-form-job-name').fill('hourly');
    await page.getByTestId('schedule-form-expression').fill('0 */1 * * * * * *');
    await page.getByTestId('schedule-form-time-zone').fill('Europe/Berlin');
    await page.getByTestId('schedule-form-data').fill('{"kind":"hourly"}');
    const refused = await pressOn(page, page.getByTestId('schedule-save'));
    assert.equal(refused.status(), 400);
    assert.match(await page.getByTestId('schedule-form-error').innerText(), /cron/);
    // Nothing typed is lost.
    assert.equal(await page.getByTestId('schedule-form-id').inputValue(), 'e2e-hourly');
    assert.equal(await page.getByTestId('schedule-form-data').inputValue(), '{"kind":"hourly"}');
    await page.getByTestId('schedule-form-expression').fill('0 * * * *');
    await pressOn(page, page.getByTestId('schedule-save'));
    assert.match(await page.getByTestId('notice').innerText(), /Created e2e-hourly/);
    const created = row(page, 'e2e-hourly');
    assert.match(await created.getByTestId('schedule-repeat').innerText(), /cron 0 \* \* \* \* · Europe\/Berlin/);

    await pressOn(page, created.getByTestId('schedule-edit'));
    assert.equal(await page.getByTestId('schedule-form-expression').inputValue(), '0 * * * *');
    await page.getByTestId('schedule-form-kind').selectOption('every');
    await page.getByTestId('schedule-form-every').fill('10m');
    await pressOn(page, page.getByTestId('schedule-save'));
    assert.match(await page.getByTestId('notice').innerText(), /Saved e2e-hourly/);
    assert.match(await row(page, 'e2e-hourly').getByTestId('schedule-repeat').innerText(), /every 10 min/);
    assert.deepEqual((await api(server, '/api/schedules/e2e-hourly')).schedule.repeat, {
      type: 'every',
      everyMs: 600000,
    });

    let question;
    page.once('dialog', async (dialog) => {
      question = dialog.message();
      await dialog.accept();
    });
    await pressOn(page, row(page, 'e2e-hourly').getByTestId('schedule-remove'));
    assert.match(question, /Remove schedule e2e-hourly\?/);
    assert.match(await page.getByTestId('notice').innerText(), /Removed e2e-hourly/);
    assert.equal(await row(page, 'e2e-hourly').count(), 0);
    await api(server, '/api/schedules/e2e-hourly', { expect: [404] });

    const audit = await api(server, '/api/audit?target=e2e-hourly');
    const actions = audit.entries.map((e) => `${e.action}:${e.outcome}`);
    for (const action of ['schedule.create:refused', 'schedule.create:ok', 'schedule.update:ok', 'schedule.remove:ok']) {
      assert.ok(actions.includes(action), `${action} in ${actions}`);
    }
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a viewer sees the schedules but no buttons', async () => {
  const viewer = await addUser(server, 'e2e-schedules-viewer', 'viewer', 'viewer-password-0123');
  const { context, page, errors } = await newSignedInPage(browser, server, { as: viewer });
  try {
    await page.goto(`${server.url}/schedules`);
    const digest = row(page, 'emails-digest');
    await digest.waitFor();
    for (const action of ['schedule-pause', 'schedule-run', 'schedule-edit', 'schedule-remove']) {
      const button = digest.getByTestId(action);
      if ((await button.count()) > 0) {
        assert.equal(await button.isVisible(), false, `${action} is hidden from a viewer`);
      }
    }
    assert.equal(await page.getByTestId('schedule-new').isVisible(), false);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
