// The Redis page in a real browser: the dashboard in front of the test
// Redis (`demo --redis`, under a key prefix of its own) lists the node
// with its memory, clients and replication, the slow log shows a slow
// command made here, and the key space is sampled by prefix, said to be a
// sample; the embedded demo says no Redis is configured.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startServer, launchBrowser, artifacts, newSignedInPage, waitLive, api, poll } from './support.mjs';

const REDIS_URL = process.env.E2E_REDIS || 'redis://127.0.0.1:6379';
const prefix = `e2e-redis-${randomBytes(4).toString('hex')}`;

let server;
let browser;
let redis;

before(async () => {
  redis = new Redis(REDIS_URL);
  server = await startServer('demo', ['--redis', REDIS_URL, '--redis-prefix', prefix]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 })) {
      if (keys.length) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
});

test('the Redis page shows the node, a slow command and memory by prefix, live', async () => {
  // A command slower than the threshold (10 ms), logged by name.
  const previous = await redis.config('GET', 'slowlog-log-slower-than');
  await redis.config('SET', 'slowlog-log-slower-than', '10000');
  await redis.client('SETNAME', 'e2e-slow-client');
  // A busy Lua loop: the shared Redis refuses DEBUG SLEEP.
  await redis.eval('local i = 0 while i < 5000000 do i = i + 1 end return i', 0);
  await redis.config('SET', 'slowlog-log-slower-than', previous[1]);
  const { context, page, errors } = await newSignedInPage(browser, server);
  try {
    const response = await page.goto(server.url + '/redis');
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Redis · Switchyard');
    await waitLive(page);
    const node = page.getByTestId('redis-node').first();
    await node.waitFor({ timeout: 15_000 });
    assert.equal((await node.getByTestId('redis-role').innerText()).trim(), 'master');
    assert.match(await node.getByTestId('redis-memory').innerText(), /B/);
    // The slow command, with the client that sent it.
    const slow = page.getByTestId('slowlog-row').filter({ hasText: 'e2e-slow-client' });
    await slow.first().waitFor({ timeout: 15_000 });
    assert.match(await slow.first().getByTestId('slowlog-command').innerText(), /EVAL/);
    // The demo's keys are under its prefix, which the sample finds.
    await page.getByTestId('keyspace-sample').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('keyspace-sample').innerText(), /A sample of [\d,]+ of [\d,]+ keys/);
    assert.ok(await page.locator(`[data-test-id="keyspace-prefix"][data-id="${prefix}"]`).count() === 1);
    await page.screenshot({ path: join(artifacts, 'redis.png'), fullPage: true });
    // The API says the same, and the health check answers.
    const body = await api(server, '/api/redis');
    assert.equal(body.report.status, 'ok');
    const health = await api(server, '/api/redis/health');
    assert.equal(health.nodes[0].reachable, true);
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await context.close();
  }
});

test('without Redis the page says none is configured', async () => {
  const embedded = await startServer('demo');
  const { context, page } = await newSignedInPage(browser, embedded);
  try {
    await page.goto(embedded.url + '/redis');
    assert.match(await page.getByTestId('redis-off').innerText(), /No Redis is configured/);
    await api(embedded, '/api/redis/health', { expect: [404] });
  } finally {
    await context.close();
    await embedded.stop();
  }
});
