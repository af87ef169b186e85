// Sign-in sessions on the Users page, in a real browser against
// `switchyard demo`: an operator signs in in one browser; the admin, in
// another, finds that session on the Users page (marked with its browser,
// never its cookie), revokes it with the keyboard alone, and the
// operator's next page view is the sign-in page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  openPage,
  newSignedInPage,
  signIn,
  addUser,
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

test('the admin revokes an operator session from the Users page by keyboard, and that browser is signed out', async () => {
  const ops = await addUser(server, 'sess-ops', 'operator', 'sess-ops-password-0123');
  const victim = await openPage(browser);
  const admin = await newSignedInPage(browser, server);
  try {
    await signIn(victim.page, server, ops);
    const cookie = (await victim.context.cookies()).find((c) => c.name === 'switchyard_session');
    assert.ok(cookie, 'the operator has a session cookie');

    const { page } = admin;
    let response = await page.goto(`${server.url}/users`);
    assert.equal(response.status(), 200);
    const rows = page.locator('[data-test-id="session-row"][data-user="sess-ops"]');
    assert.equal(await rows.count(), 1, 'the operator has one session');
    const row = rows.first();
    assert.match(await row.innerText(), /Chrome/, 'the browser is named');
    assert.ok(!(await page.content()).includes(cookie.value), 'the cookie never shows on the page');
    const handle = await row.getAttribute('data-handle');
    assert.match(handle, /^[0-9a-f]{16}$/);
    // Their own session is marked, and is another one.
    const mine = page.locator('[data-test-id="session-row"][data-current="true"]');
    assert.equal(await mine.count(), 1);
    assert.equal(await mine.getAttribute('data-user'), server.admin.user);
    await page.screenshot({ path: join(artifacts, 'users-sessions.png'), fullPage: true });

    // Keyboard only: focus the row's Revoke button, press Enter.
    const revoke = row.getByTestId('session-revoke');
    await revoke.focus();
    assert.equal(await revoke.evaluate((el) => el === document.activeElement), true);
    const navigated = page.waitForNavigation({ waitUntil: 'load' });
    await page.keyboard.press('Enter');
    response = await navigated;
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/users');
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Session ${handle} of sess-ops is revoked`));
    assert.equal(await page.locator('[data-test-id="session-row"][data-user="sess-ops"]').count(), 0);
    assert.equal(await page.locator('[data-test-id="session-row"][data-current="true"]').count(), 1, 'the admin is still signed in');

    // The operator's next page view asks them to sign in.
    response = await victim.page.goto(`${server.url}/queues`);
    assert.equal(response.status(), 200);
    assert.equal(new URL(victim.page.url()).pathname, '/login');
    await victim.page.getByTestId('login-username').waitFor();
    assert.deepEqual(admin.errors, [], 'the page script threw');
  } finally {
    await victim.context.close();
    await admin.context.close();
  }
});
