// Signing in, roles and CSRF in a real browser, against `switchyard demo`:
// a signed-out visit is sent to the sign-in page and back after signing
// in, signing out ends the session; a viewer reads but has no buttons and
// cannot act even by posting the form itself; an operator's click on a
// form a live update swapped in (whose CSRF field the server leaves empty)
// goes through, because the page fills the token in on submit.
//
// Users other than the admin are made with `switchyard user add` on the
// server's database. The file signs in five times (the API helper, the
// viewer, the operator, and a wrong and a right password), well under the
// server's 10 a minute per address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  openPage,
  newSignedInPage,
  submitSignIn,
  addUser,
  api,
  counts,
  enqueueFailing,
  jobInState,
  waitLive,
  markWindow,
  stillMarked,
  submit,
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

/** Resumes a queue through the API (cleanup: never hides a test's failure). */
async function resume(queue) {
  try {
    await api(server, `/api/queues/${queue}/resume`, { method: 'POST' });
  } catch (err) {
    console.error(`could not resume ${queue}: ${err.message}`);
  }
}

/** Asserts the page is the sign-in form, asked for on the way to `next`. */
async function assertSignInPage(page, next) {
  const url = new URL(page.url());
  assert.equal(url.pathname, '/login', `expected the sign-in page, got ${page.url()}`);
  if (next !== undefined) assert.equal(url.searchParams.get('next'), next);
  await page.getByTestId('login-username').waitFor();
  await page.getByTestId('login-password').waitFor();
  assert.equal(await page.getByTestId('user-name').count(), 0, 'nobody is shown as signed in');
}

test('signed out, /queues asks to sign in; a wrong password is refused, the right one goes on to /queues; sign out ends it', async () => {
  const { context, page, errors } = await openPage(browser);
  try {
    let response = await page.goto(server.url + '/queues');
    assert.equal(response.status(), 200);
    await assertSignInPage(page, '/queues');
    assert.equal(await page.title(), 'Sign in · Switchyard');

    response = await submitSignIn(page, { user: server.admin.user, password: 'wrong-password-123' });
    assert.equal(response.status(), 401);
    assert.equal((await page.getByTestId('login-error').innerText()).trim(), 'Wrong user name or password.');
    await assertSignInPage(page);
    assert.equal(await page.getByTestId('login-username').inputValue(), server.admin.user, 'the name tried is kept');
    assert.equal((await context.cookies()).filter((c) => c.name === 'switchyard_session').length, 0);

    response = await submitSignIn(page, server.admin);
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/queues', 'signing in goes on to the page asked for');
    assert.equal((await page.getByTestId('user-name').textContent()).trim(), server.admin.user);
    assert.equal((await page.getByTestId('user-role').textContent()).trim(), 'admin');
    assert.equal(await page.locator('body').getAttribute('data-role'), 'admin');
    await page.getByTestId('queue-row-emails').waitFor({ timeout: 20_000 });
    await waitLive(page);
    await page.screenshot({ path: join(artifacts, 'signed-in.png'), fullPage: true });

    response = await submit(page, page.getByTestId('sign-out'));
    assert.equal(response.status(), 200);
    await assertSignInPage(page);
    assert.match(await page.getByTestId('notice').innerText(), /You signed out\./);

    response = await page.goto(server.url + '/queues');
    assert.equal(response.status(), 200);
    await assertSignInPage(page, '/queues');
    const stream = await page.evaluate(async () => (await fetch('/events/queues')).status);
    assert.equal(stream, 401, 'the live stream refuses a signed-out browser');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('a viewer sees the failed jobs but no buttons, and a forged POST is refused', async () => {
  const queue = 'webhooks';
  const message = 'e2e viewer boom';
  const viewer = await addUser(server, 'e2e-viewer', 'viewer', 'viewer-password-0123');
  const id = await enqueueFailing(server, queue, message);
  await jobInState(server, queue, id, 'failed');
  const { context, page, errors } = await newSignedInPage(browser, server, { as: viewer });
  try {
    const response = await page.goto(`${server.url}/queues/${queue}?state=failed&q=${encodeURIComponent(message)}`);
    assert.equal(response.status(), 200);
    await waitLive(page);
    assert.equal((await page.getByTestId('user-name').textContent()).trim(), viewer.user);
    assert.equal((await page.getByTestId('user-role').textContent()).trim(), 'viewer');
    assert.equal(await page.locator('body').getAttribute('data-role'), 'viewer');

    const row = page.getByTestId(`job-row-${id}`);
    await row.waitFor();
    assert.equal((await row.getByTestId('failed-reason').innerText()).trim(), message);

    // The buttons are in the page (the markup is the same for everyone)
    // but hidden from a viewer.
    const buttons = {
      'Retry': row.getByTestId('retry-job'),
      'Remove': row.getByTestId('remove-job'),
      'Pause': page.getByTestId('pause-queue'),
      // Filtered, the bulk button acts on the matches only.
      'Retry matching': page.getByTestId('retry-matching'),
    };
    for (const [name, button] of Object.entries(buttons)) {
      assert.equal(await button.count(), 1, `${name} is in the markup`);
      assert.equal(await button.isVisible(), false, `${name} is visible to a viewer`);
    }
    await page.screenshot({ path: join(artifacts, 'viewer.png'), fullPage: true });

    // Posting the form from the page anyway is refused: without a token,
    // and with the page's own token too (the role, not only CSRF, says no).
    const forged = await page.evaluate((queue) =>
      fetch(`/queues/${queue}/pause`, { method: 'POST', body: new URLSearchParams({ back: '/queues' }) })
        .then((r) => r.status), queue);
    assert.equal(forged, 403);
    const withToken = await page.evaluate((queue) =>
      fetch(`/queues/${queue}/pause`, {
        method: 'POST',
        body: new URLSearchParams({
          back: '/queues',
          csrf_token: document.querySelector('meta[name="csrf-token"]').content,
        }),
      }).then((r) => r.status), queue);
    assert.equal(withToken, 403);
    assert.equal((await counts(server, queue)).paused, false, 'the queue was not paused');
    assert.equal((await api(server, `/api/queues/${queue}/jobs/${id}`)).state, 'failed');
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(queue);
    await context.close();
  }
});

test('an operator retries a failed job from a live-swapped jobs table (the page fills in the CSRF token)', async () => {
  const queue = 'emails';
  const message = 'e2e operator boom';
  const operator = await addUser(server, 'e2e-operator', 'operator', 'operator-password-0123');
  const id = await enqueueFailing(server, queue, message);
  await jobInState(server, queue, id, 'failed');
  // Paused, the demo workers take no job of the queue: the retried job
  // stays waiting, and no new failure pushes it off the table.
  await api(server, `/api/queues/${queue}/pause`, { method: 'POST' });
  const { context, page, errors } = await newSignedInPage(browser, server, { as: operator });
  try {
    const response = await page.goto(`${server.url}/queues/${queue}?state=failed`);
    assert.equal(response.status(), 200);
    assert.equal((await page.getByTestId('user-role').textContent()).trim(), 'operator');
    assert.equal(await page.locator('body').getAttribute('data-role'), 'operator');
    await markWindow(page);
    await waitLive(page);

    // The live stream has swapped the jobs table in: its forms carry an
    // empty CSRF field (the server sends one markup to every page).
    const row = page.getByTestId(`job-row-${id}`);
    await row.waitFor();
    await page.waitForFunction(
      (id) => {
        const field = document.querySelector(`[data-test-id="job-row-${id}"] form input[name="csrf_token"]`);
        return field && field.value === '';
      },
      id,
      { timeout: 15_000 },
    );
    assert.ok(await stillMarked(page), 'the table was swapped in without a reload');
    const retry = row.getByTestId('retry-job');
    assert.ok(await retry.isVisible(), 'an operator sees Retry');

    // The control: the form as swapped in, posted without the page's
    // submit handler, is refused for want of a token.
    const bare = await page.evaluate((id) => {
      const form = document.querySelector(`[data-test-id="job-row-${id}"] [data-test-id="retry-job"]`).form;
      return fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)) }).then((r) => r.status);
    }, id);
    assert.equal(bare, 403, 'a swapped form without its token is refused');
    assert.equal((await api(server, `/api/queues/${queue}/jobs/${id}`)).state, 'failed');

    const landed = await submit(page, retry);
    assert.equal(landed.status(), 200);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'failed', 'Retry comes back to the failed table');
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Job ${id} was retried`));
    assert.equal((await api(server, `/api/queues/${queue}/jobs/${id}`)).state, 'waiting');
    await page.getByTestId(`job-row-${id}`).waitFor({ state: 'detached' });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await resume(queue);
    await context.close();
  }
});
