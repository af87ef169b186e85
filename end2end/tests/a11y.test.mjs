// Every page as people use it: axe-core finds no violation in light and
// dark, no page scrolls sideways on a 390 px phone, and a screenshot of
// each page in light, dark and phone is saved (end2end/test-results/pages/)
// for review and the README.
//
// axe-core comes from npm and is served to the page from its own origin by
// Playwright's request routing (`/__e2e/axe.min.js` never reaches the
// server), so the page's shipped Content-Security-Policy
// (`script-src 'self'`) stays in force and is never weakened.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  openPage,
  api,
  jobInState,
  poll,
  waitLive,
} from './support.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_PATH = '/__e2e/axe.min.js';
const shots = join(artifacts, 'pages');

const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };

let server;
let browser;
const pages = [];

before(async () => {
  server = await startServer('demo');
  browser = await launchBrowser();
  mkdirSync(shots, { recursive: true });
  // A failed job of our own, so the failed tab, its job page and the
  // error groups have something to show.
  const { id } = await api(server, '/api/queues/reports/jobs', {
    method: 'POST',
    body: { name: 'e2e-a11y', data: { fail: 'a11y: the printer is on fire' }, options: { attempts: 1 } },
  });
  await jobInState(server, 'reports', id, 'failed');
  await troubles();
  pages.push(
    ['overview', '/'],
    ['queues', '/queues'],
    ['queue-failed', '/queues/reports?state=failed'],
    ['queue-waiting', '/queues/reports?state=waiting'],
    ['job', `/queues/reports/jobs/${id}`],
    ['errors', '/errors'],
    ['queue-errors', '/queues/reports/errors'],
    ['retrying', '/queues/reports/retrying'],
    ['search', '/search?q=name%3Ae2e-a11y'],
    ['bullmq', '/bullmq'],
    ['channels', '/channels'],
    ['instances', '/instances'],
    ['ratelimits', '/ratelimits'],
    ['redis', '/redis'],
    ['cache', '/cache'],
    ['cache-namespace', '/cache?ns=search-params'],
    ['workers', '/workers'],
    ['schedules', '/schedules'],
    ['schedule-form', '/schedules/new'],
    ['alerts', '/alerts'],
    ['audit', '/audit'],
    ['users', '/users'],
    ['config', '/config'],
    ['not-found', '/no-such-page'],
  );
});

/**
 * Puts on every page what an operator sees on a bad day, so its colours
 * are checked too: three alerts firing on a backlog no worker takes
 * (critical, warning acknowledged, one silenced) and the Warning badge
 * `reports` gets from a burst of failures.
 */
async function troubles() {
  // A backlog nobody works on keeps its alerts firing for the whole file.
  for (let i = 0; i < 5; i += 1) {
    await api(server, '/api/queues/a11y-backlog/jobs', { method: 'POST', body: { name: 'e2e-a11y-wait', data: {} } });
  }
  const rules = [['a11y-critical', 'critical', 1], ['a11y-acked', 'warning', 2], ['a11y-silenced', 'critical', 3]];
  for (const [name, severity, threshold] of rules) {
    await api(server, '/api/alerts/rules', {
      method: 'POST',
      body: { name, kind: 'queue_backlog', target: 'a11y-backlog', threshold, windowSecs: 60, forSecs: 0, severity },
    });
  }
  for (let i = 0; i < 20; i += 1) {
    await api(server, '/api/queues/reports/jobs', {
      method: 'POST',
      body: { name: 'e2e-a11y-burst', data: { fail: `a11y burst ${i}` }, options: { attempts: 1 } },
    });
  }
  const firing = await poll('the three alerts to fire', async () => {
    const { active } = await api(server, '/api/alerts');
    const ours = active.filter((a) => a.rule.startsWith('a11y-') && a.status === 'firing');
    return ours.length === 3 && ours;
  }, { timeout: 30_000 });
  const fingerprint = (rule) => firing.find((a) => a.rule === rule).fingerprint;
  await api(server, `/api/alerts/${fingerprint('a11y-acked')}/ack`, { method: 'POST' });
  await api(server, `/api/alerts/${fingerprint('a11y-silenced')}/silence`, { method: 'POST', body: { forSecs: 3600 } });
}

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Runs axe-core on the page; resolves to its violations, summarised. */
async function axe(page) {
  await page.route(`${server.url}${AXE_PATH}`, (route) => route.fulfill({
    status: 200,
    contentType: 'application/javascript',
    body: AXE,
  }));
  await page.addScriptTag({ url: AXE_PATH });
  const violations = await page.evaluate(async () => {
    // The live pill pulses: its colour mid-animation is not its colour.
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary.split('\n').slice(1, 2).join('')}`),
      more: Math.max(0, v.nodes.length - 5),
    }));
  });
  return violations;
}

/** Opens `path` signed in, waits for it to be live if it is; resolves to the page. */
async function visit(path, options) {
  const opened = await newSignedInPage(browser, server, options);
  const response = await opened.page.goto(`${server.url}${path}`);
  assert.ok(response.status() === 200 || path === '/no-such-page', `${path} answered ${response.status()}`);
  if (await opened.page.evaluate(() => !!document.body.dataset.live)) await waitLive(opened.page);
  return opened;
}

for (const scheme of ['light', 'dark']) {
  test(`axe-core finds no violation on any page (${scheme})`, async () => {
    const found = [];
    for (const [name, path] of pages) {
      const { context, page, errors } = await visit(path, { viewport: DESKTOP, colorScheme: scheme });
      try {
        await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
        const violations = await axe(page);
        if (violations.length) found.push({ page: path, violations });
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        if (width > DESKTOP.width) found.push({ page: path, scrollsSideways: width });
        assert.deepEqual(errors, [], `the page script threw on ${path}`);
      } finally {
        await context.close();
      }
    }
    assert.deepEqual(found, [], JSON.stringify(found, null, 1));
  });
}

test('the banner lists what needs someone: a silenced alert is one link, an acknowledged one a line, and the tab title counts both loud ones', async () => {
  const { context, page } = await visit('/queues', { viewport: DESKTOP });
  try {
    const banner = page.getByTestId('alert-banner');
    assert.equal(await banner.getAttribute('data-firing'), '2');
    assert.match(await page.title(), /^\(2\) /);
    assert.equal(await page.getByTestId('banner-silenced').innerText(), '1 silenced alert');
    const lines = banner.getByTestId('banner-alert');
    assert.equal(await lines.count(), 2);
    const acked = banner.locator('.alert-line.acked');
    assert.match(await acked.innerText(), /acknowledged by e2e-admin/);
    const { height } = await acked.boundingBox();
    assert.ok(height < 30, `an acknowledged alert takes one line (${height} px)`);
  } finally {
    await context.close();
  }
});

test('no page scrolls sideways on a 390 px phone', async () => {
  const wide = [];
  for (const [name, path] of pages) {
    const { context, page } = await visit(path, { viewport: PHONE, isMobile: true, hasTouch: true });
    try {
      await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > PHONE.width) {
        const culprits = await page.evaluate((max) => Array.from(document.querySelectorAll('body *'))
          .filter((el) => el.getBoundingClientRect().right > max + 1)
          .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= max + 1)
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}${el.className ? `.${String(el.className).split(' ').join('.')}` : ''} (${Math.round(el.getBoundingClientRect().right)} px)`), PHONE.width);
        wide.push({ page: path, width, culprits });
      }
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(wide, [], JSON.stringify(wide, null, 1));
});

test('on a phone the sections fold behind Menu, filters fold away, and the first failed job is on the first screen', async () => {
  const { context, page } = await visit('/queues/reports?state=failed', { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const menu = page.getByTestId('nav-toggle');
    const sections = page.locator('nav#sections');
    assert.equal(await sections.isVisible(), false);
    // By keyboard: Menu opens the sections, Escape closes them again.
    await menu.focus();
    await page.keyboard.press('Enter');
    assert.equal(await menu.getAttribute('aria-expanded'), 'true');
    assert.ok(await sections.isVisible());
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.closest('nav')?.id), 'sections');
    await page.keyboard.press('Escape');
    assert.equal(await sections.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), 'nav-toggle');
    // The filters wait behind their summary; the jobs come first.
    assert.equal(await page.getByTestId('filter-form').isVisible(), false);
    const top = await page.locator('[data-test-id^="job-row-"]').first().boundingBox();
    assert.ok(top && top.y + top.height <= PHONE.height, `the first job is below the first screen (${JSON.stringify(top)})`);
    await page.locator('[data-test-id="search-toggle"] > summary').click();
    assert.ok(await page.getByTestId('filter-form').isVisible());
  } finally {
    await context.close();
  }
});

test('the sign-in page has no violation and fits a phone', async () => {
  for (const [scheme, viewport] of [['light', DESKTOP], ['dark', DESKTOP], ['light', PHONE]]) {
    const { context, page } = await openPage(browser, { viewport, colorScheme: scheme });
    try {
      await page.goto(`${server.url}/login`);
      const suffix = viewport === PHONE ? 'phone' : scheme;
      await page.screenshot({ path: join(shots, `login-${suffix}.png`), fullPage: true });
      assert.deepEqual(await axe(page), [], `sign-in page, ${suffix}`);
      assert.ok(await page.evaluate((max) => document.documentElement.scrollWidth <= max, viewport.width));
    } finally {
      await context.close();
    }
  }
});
