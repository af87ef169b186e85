// Starts a real Switchyard server and a headless Debian Chromium for the
// browser tests, and the small helpers the tests share. Nothing is mocked:
// the server runs on the embedded default with its own temporary SQLite
// file.
//
// Every page needs sign-in. Each server starts with the admin `ADMIN`
// (from SWITCHYARD_ADMIN_USER / SWITCHYARD_ADMIN_PASSWORD); more users are
// made with `addUser`, which runs `switchyard user add` on the server's
// database. Browsers sign in through the real form (`signIn`), once per
// server and user: `newSignedInPage` hands each test a fresh context
// carrying that sign-in's cookie, so the server's limit of 10 sign-ins per
// minute and address is never approached. The JSON API helper (`api`)
// signs in once per server too, and sends the session's CSRF token.
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

/** The first admin every test server creates on its start. */
export const ADMIN = Object.freeze({ user: 'e2e-admin', password: 'e2e-admin-password-0123' });

/**
 * Runs `switchyard <command>` on a free port and resolves once it prints the
 * address it serves on. The server creates `ADMIN` on its start; its
 * database (`databaseUrl`) is the one `addUser` adds users to.
 */
export async function startServer(command = 'demo', extraArgs = [], { after } = {}) {
  // `after`: a server this one replaces (stopped with `kill`), on its
  // address and database, as a restart would be.
  const dir = after ? after.dir : mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const databaseUrl = `sqlite://${join(dir, 'e2e.db')}?mode=rwc`;
  const listen = after ? new URL(after.url).host : '127.0.0.1:0';
  const args = [command, '--listen', listen, '--database-url', databaseUrl, ...extraArgs];
  const child = spawn(binary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SWITCHYARD_LOG: 'warn',
      SWITCHYARD_ADMIN_USER: ADMIN.user,
      SWITCHYARD_ADMIN_PASSWORD: ADMIN.password,
    },
  });
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
    /** The server's SQL database (users, sessions, audit log). */
    databaseUrl,
    /** Its temporary directory (removed by `stop`). */
    dir,
    /** The first admin's credentials. */
    admin: ADMIN,
    /** Browser sign-ins per user name (see `newSignedInPage`). */
    signIns: new Map(),
    /** The JSON API's session (see `api`). */
    apiSession: null,
    /** Everything the server printed so far (for failure messages). */
    output: () => output,
    async stop() {
      await this.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    /**
     * Ends the process (at once by default, as a crash would) and keeps its
     * database, for a server started `after` it.
     */
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      }
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

/**
 * Adds a user to the server's database with `switchyard user add` (the
 * password goes in on stdin, as the command wants). `role`: viewer,
 * operator or admin. Resolves to `{ user, password }` for `signIn`.
 */
export async function addUser(server, name, role, password) {
  const args = ['user', 'add', name, '--role', role, '--database-url', server.databaseUrl];
  const child = spawn(binary(), args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SWITCHYARD_LOG: 'warn' } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
    child.stdin.end(`${password}\n`);
  });
  if (code !== 0) {
    throw new Error(`switchyard ${args.join(' ')} exited with ${code}: ${output}`);
  }
  return { user: name, password };
}

/**
 * Fills the sign-in form the page shows and submits it; resolves to the
 * response of the page it lands on (the form again, on a refusal).
 */
export async function submitSignIn(page, { user, password }) {
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(password);
  const navigated = page.waitForNavigation({ waitUntil: 'load' });
  await page.getByTestId('login-submit').click();
  return navigated;
}

/**
 * Signs the page's context in through the real form at `/login` (as the
 * admin unless told otherwise) and waits for the page it goes on to; fails
 * with the page's explanation if it stays on the sign-in page.
 */
export async function signIn(page, server, { user, password } = server.admin) {
  await page.goto(`${server.url}/login`);
  const response = await submitSignIn(page, { user, password });
  if (new URL(page.url()).pathname === '/login' || !response || response.status() !== 200) {
    const error = page.getByTestId('login-error');
    const why = (await error.count()) ? await error.innerText() : await page.locator('body').innerText();
    throw new Error(`signing in as ${user} failed (${response?.status()} at ${page.url()}): ${why}`);
  }
  return response;
}

/**
 * The cookies of a sign-in as `credentials`: the first call per server and
 * user signs in through the form in a context of its own; later calls
 * reuse its cookies (a session serves any number of contexts).
 */
function signedInState(browser, server, credentials) {
  let state = server.signIns.get(credentials.user);
  if (!state) {
    state = (async () => {
      const context = await browser.newContext({ viewport });
      context.setDefaultTimeout(15_000);
      try {
        await signIn(await context.newPage(), server, credentials);
        return await context.storageState();
      } finally {
        await context.close();
      }
    })();
    state.catch(() => server.signIns.delete(credentials.user));
    server.signIns.set(credentials.user, state);
  }
  return state;
}

/**
 * As `openPage`, but the fresh context is signed in (as the admin, or as
 * `as: { user, password }`): it starts with the cookie of a sign-in made
 * through the real form, and no other cookie, so one test's notice still
 * never shows in another's. `options` are the context's.
 */
export async function newSignedInPage(browser, server, { as = server.admin, ...options } = {}) {
  const storageState = await signedInState(browser, server, as);
  return openPage(browser, { ...options, storageState });
}

/**
 * The session the JSON API helpers use: the admin signed in once per server
 * (a form post from node), with its CSRF token for state-changing calls.
 */
function apiSession(server) {
  if (!server.apiSession) {
    server.apiSession = (async () => {
      const response = await fetch(`${server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: server.admin.user, password: server.admin.password, next: '/' }),
      });
      const cookie = response.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .find((c) => c.startsWith('switchyard_session='));
      if (response.status !== 303 || !cookie) {
        throw new Error(`the API sign-in answered ${response.status}: ${await response.text()}`);
      }
      const session = await fetch(`${server.url}/api/session`, { headers: { cookie } });
      if (session.status !== 200) {
        throw new Error(`GET /api/session answered ${session.status}: ${await session.text()}`);
      }
      const { csrf_token: csrf } = await session.json();
      return { cookie, 'x-csrf-token': csrf };
    })();
    server.apiSession.catch(() => (server.apiSession = null));
  }
  return server.apiSession;
}

/** Headers that sign a node `fetch` in as the admin (cookie and CSRF token). */
export async function authHeaders(server) {
  return { ...(await apiSession(server)) };
}

/**
 * Calls the server's JSON API from node, signed in as the admin; throws
 * unless `expect` answers.
 */
export async function api(server, path, { method = 'GET', body, expect = [200, 201] } = {}) {
  const headers = await authHeaders(server);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(server.url + path, {
    method,
    headers,
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

/**
 * Counts, in the page, every live swap and the ones that landed on the
 * region holding keyboard focus (`window.__swaps`, `window.__focusedSwaps`);
 * `target` is a page or a whole context. An init script wraps the stream's
 * listeners; it runs outside the page's CSP, which stays as shipped.
 */
export async function countSwaps(target) {
  await target.addInitScript(() => {
    window.__swaps = 0;
    window.__focusedSwaps = 0;
    const add = EventSource.prototype.addEventListener;
    EventSource.prototype.addEventListener = function wrapped(type, listener, options) {
      if (type !== 'swap') return add.call(this, type, listener, options);
      return add.call(this, type, (event) => {
        const id = (event.data.match(/^\s*<[a-z]+[^>]*\sid="([^"]+)"/) || [])[1];
        const region = id && document.getElementById(id);
        const focused = !!region && region.contains(document.activeElement);
        listener(event);
        window.__swaps += 1;
        if (focused) window.__focusedSwaps += 1;
      }, options);
    };
  });
}
