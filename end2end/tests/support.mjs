// Starts a real Switchyard server and a headless Debian Chromium for the
// browser tests, and the small helpers the tests share. Nothing is mocked:
// the server runs on the embedded default with its own temporary SQLite
// file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, selectors } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');
export const artifacts = join(repoRoot, 'end2end', 'test-results');

/** The viewport every page (and screenshot) uses. */
export const viewport = { width: 1280, height: 800 };

// Pages mark what tests look for with `data-test-id`, so `getByTestId`
// reads that attribute.
selectors.setTestIdAttribute('data-test-id');

/** Path of the server binary built by `cargo build -p server`. */
function binary() {
  const targetDir = process.env.CARGO_TARGET_DIR || join(repoRoot, 'target');
  return join(targetDir, 'debug', 'switchyard');
}

/**
 * Runs `switchyard <command>` on a free port and resolves once it prints the
 * address it serves on.
 */
export async function startServer(command = 'demo', extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const args = [command, '--listen', '127.0.0.1:0', '--database-url', `sqlite://${join(dir, 'e2e.db')}?mode=rwc`, ...extraArgs];
  const child = spawn(binary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWITCHYARD_LOG: 'warn' } });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s; output:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary()} (build it with \`cargo build -p server\`): ${err.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}; output:\n${output}`));
    });
  });
  return {
    url,
    /** Everything the server printed so far (for failure messages). */
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Launches Debian's Chromium headless, the way this machine allows. */
export async function launchBrowser() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh browser context (own cookies, so one test's notice never shows in
 * another's) with one page. `errors` collects uncaught page errors, so a
 * test can assert the page script never threw.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport, ...options });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, errors };
}

/** Calls the server's JSON API from node; throws unless `expect` answers. */
export async function api(server, path, { method = 'GET', body, expect = [200, 201] } = {}) {
  const response = await fetch(server.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!expect.includes(response.status)) {
    throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** A queue's counts from `GET /api/queues/{queue}`. */
export function counts(server, queue) {
  return api(server, `/api/queues/${queue}`);
}

/**
 * Enqueues a job the demo workers fail for good at once, with `message` as
 * its error; `data` adds fields to its payload. Resolves to the job's id.
 */
export async function enqueueFailing(server, queue, message, data = {}) {
  const { id } = await api(server, `/api/queues/${queue}/jobs`, {
    method: 'POST',
    body: { name: 'e2e-fail', data: { ...data, fail: message }, options: { attempts: 1 } },
  });
  return id;
}

/**
 * Polls `probe` until it returns a truthy value (which is returned), or
 * fails with `what` and the last value seen once `timeout` ms have passed.
 */
export async function poll(what, probe, { timeout = 20_000, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until the job reaches `state` (per the API) and returns the job. */
export function jobInState(server, queue, id, state, options) {
  return poll(`job ${id} of ${queue} to be ${state}`, async () => {
    const job = await api(server, `/api/queues/${queue}/jobs/${id}`);
    return job.state === state ? job : false;
  }, options);
}

/** Waits until the page's live indicator says it receives updates. */
export async function waitLive(page) {
  await page.waitForFunction(
    () => document.querySelector('[data-test-id="live-state"]')?.textContent.trim() === 'live',
    null,
    { timeout: 15_000 },
  );
}

/**
 * Marks the page's window so a test can prove later that it was never
 * reloaded (a reload forgets the marker).
 */
export async function markWindow(page) {
  await page.evaluate(() => {
    window.__marker = 1;
  });
}

/** True while the window marked by `markWindow` is still the one shown. */
export function stillMarked(page) {
  return page.evaluate(() => window.__marker === 1);
}

/**
 * Clicks a form's submit button and waits for the page it redirects to;
 * resolves to that page's response.
 */
export async function submit(page, button) {
  const navigated = page.waitForNavigation({ waitUntil: 'load' });
  await button.click();
  return navigated;
}

/** The integer in a count cell or tab ("Failed 1,234" → 1234). */
export function number(text) {
  const match = text.match(/(\d[\d,]*)\s*$/);
  if (!match) throw new Error(`no count in ${JSON.stringify(text)}`);
  return Number(match[1].replace(/,/g, ''));
}
