// The newcomer's first look: `switchyard demo` serves a page listing the
// demo queues with live counts, and some demo jobs end up failed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, artifacts } from './support.mjs';

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

test('the demo dashboard lists queues whose counts move', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const scripts = [];
  page.on('console', (msg) => scripts.push(msg.text()));
  await page.goto(server.url + '/');
  assert.equal(await page.title(), 'Switchyard');

  const rows = page.locator('[data-test-id^="queue-row-"]');
  // The demo producers start with the server; give them a moment to create
  // their queues, reloading as an operator would.
  const deadline = Date.now() + 20_000;
  let failedSeen = 0;
  let completedSeen = 0;
  while (Date.now() < deadline) {
    if ((await rows.count()) > 0) {
      const failed = await page.locator('[data-test-id="count-failed"]').allInnerTexts();
      const completed = await page.locator('[data-test-id="count-completed"]').allInnerTexts();
      failedSeen = failed.map((t) => Number(t.replace(/[^0-9]/g, ''))).reduce((a, b) => a + b, 0);
      completedSeen = completed.map((t) => Number(t.replace(/[^0-9]/g, ''))).reduce((a, b) => a + b, 0);
      if (failedSeen > 0 && completedSeen > 0) break;
    }
    await page.waitForTimeout(500);
    await page.reload();
  }
  assert.ok((await rows.count()) >= 3, 'the demo creates several queues');
  assert.ok(completedSeen > 0, 'demo workers complete jobs');
  assert.ok(failedSeen > 0, 'some demo jobs fail for good, so the failed set has something to show');
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
});

test('an unknown page answers 404 with a readable message', async () => {
  const page = await browser.newPage();
  const response = await page.goto(server.url + '/api/queues/does-not-exist');
  assert.equal(response.status(), 404);
  assert.match(await page.content(), /not found/i);
});
