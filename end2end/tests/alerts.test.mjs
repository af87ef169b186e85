// Alerting in a real browser, against `switchyard demo` with a real webhook
// receiver: a failure-rate rule on a demo queue fires when the test makes
// that queue's jobs fail, the banner appears on the open page without a
// reload, the receiver gets the Alertmanager message; raising the rule's
// threshold on the Alerts page resolves it, and the receiver hears that too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  api,
  enqueueFailing,
  poll,
  waitLive,
  markWindow,
  stillMarked,
  submit,
} from './support.mjs';

const RULE = 'e2e-webhooks-failing';
const QUEUE = 'webhooks';

let server;
let browser;
let receiver;
const received = [];

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      try {
        received.push({ path: req.url, body: JSON.parse(body) });
      } catch {
        received.push({ path: req.url, body: null });
      }
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${receiver.address().port}/am`;
  server = await startServer('demo', ['--alert-interval', '1', '--alert-webhook', hook]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** The Alertmanager messages about the test's rule with `status`. */
function messages(status) {
  return received.filter(
    (m) =>
      m.path === '/am' &&
      m.body?.status === status &&
      m.body.alerts?.some((a) => a.labels?.alertname === RULE),
  );
}

test('a failure-rate alert fires live with a webhook, and resolves from the Alerts page', async () => {
  await api(server, '/api/alerts/rules', {
    method: 'POST',
    body: { name: RULE, kind: 'failure_rate', target: QUEUE, threshold: 25, windowSecs: 120, forSecs: 0, severity: 'critical' },
  });
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    await page.goto(server.url + '/queues');
    await waitLive(page);
    await markWindow(page);
    for (let i = 0; i < 40; i++) {
      await enqueueFailing(server, QUEUE, `e2e alert ${i}`);
    }
    // The banner of the open page shows it, without a reload.
    const line = page.locator('[data-test-id="banner-alert"]', { hasText: QUEUE });
    await line.waitFor({ timeout: 30_000 });
    assert.equal(await line.getAttribute('data-severity'), 'critical');
    assert.ok(await stillMarked(page), 'the banner arrived without a reload');
    const firing = await poll('the firing webhook message', () => messages('firing')[0], { timeout: 20_000 });
    const alert = firing.body.alerts.find((a) => a.labels.alertname === RULE);
    assert.equal(firing.body.version, '4');
    assert.equal(alert.labels.queue, QUEUE);
    assert.equal(alert.endsAt, '0001-01-01T00:00:00Z');

    // The Alerts page lists it; raising the threshold resolves it.
    await page.goto(server.url + '/alerts');
    await waitLive(page);
    const row = page.locator(`[data-test-id="alert-row"][data-rule="${RULE}"]`);
    assert.equal(await row.getAttribute('data-status'), 'firing');
    await page.screenshot({ path: join(artifacts, 'alerts.png'), fullPage: true });
    const rule = page.locator(`[data-test-id="rule-row"][data-rule="${RULE}"]`);
    await rule.getByTestId('rule-threshold').fill('100');
    const landed = await submit(page, rule.getByTestId('rule-save'));
    assert.equal(landed.status(), 200);
    assert.match(await page.getByTestId('notice').innerText(), new RegExp(`Rule ${RULE} saved`));
    await page
      .locator(`[data-test-id="alert-row"][data-rule="${RULE}"]`)
      .waitFor({ state: 'detached', timeout: 20_000 });
    const resolved = await poll('the resolved webhook message', () => messages('resolved')[0], { timeout: 20_000 });
    assert.notEqual(resolved.body.alerts[0].endsAt, '0001-01-01T00:00:00Z');
    // The demo's workers keep finishing jobs, so the rate may cross the
    // threshold more than once (fire, resolve, fire): each firing must
    // still be told exactly once.
    const starts = messages('firing').map((m) => m.body.alerts.find((a) => a.labels.alertname === RULE).startsAt);
    assert.equal(new Set(starts).size, starts.length, `each firing was told once: ${starts}`);
    assert.equal(await page.locator('[data-test-id="banner-alert"]', { hasText: RULE }).count(), 0);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});
