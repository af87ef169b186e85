// BullMQ flows in a real browser, against real BullMQ: a parent with three
// children in two queues added by BullMQ's own FlowProducer, children run
// by real BullMQ workers in this process, and Switchyard (`serve
// --bullmq`) showing the tree on the job pages and what each parent waits
// for on the waiting-children tab.
//
// The flow is added before the server starts, so its first discovery finds
// the queues (and follows their events, which the live job page needs).
// Every key under the run's prefix is deleted when the file ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, Worker } from 'bullmq';
import { connectionFromUrl } from '../bullmq/common.mjs';
import {
  startServer,
  launchBrowser,
  artifacts,
  newSignedInPage,
  waitLive,
  markWindow,
  stillMarked,
  submit,
  poll,
} from './support.mjs';

const REDIS_URL = process.env.E2E_BULLMQ_REDIS || 'redis://127.0.0.1:6379';
const prefix = `e2e-flow-${randomBytes(4).toString('hex')}`;
const connection = connectionFromUrl(REDIS_URL);

let server;
let browser;
let tree;

before(async () => {
  const flows = new FlowProducer({ prefix, connection });
  tree = await flows.add({
    name: 'report',
    queueName: 'reports',
    children: [
      { name: 'send', queueName: 'mail', data: { to: 'ada' } },
      { name: 'send', queueName: 'mail', data: { to: 'bob' } },
      { name: 'resize', queueName: 'thumbs' },
    ],
  });
  await flows.close();
  server = await startServer('serve', ['--bullmq', REDIS_URL, '--bullmq-prefix', prefix]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  const queue = new Queue('reports', { prefix, connection });
  try {
    const client = await queue.client;
    for await (const keys of client.scanStream({ match: `${prefix}:*`, count: 500 })) {
      if (keys.length) await client.del(...keys);
    }
  } finally {
    await queue.close();
  }
});

test('a flow shows as a tree on its job pages, and the parent page follows its children live', async () => {
  const parent = tree.job.id;
  const thumb = tree.children.find((c) => c.job.queueName === 'thumbs').job.id;
  const { context, page, errors } = await newSignedInPage(browser, server);
  const workers = [];
  try {
    // The waiting-children tab: the parent and what it waits for.
    let response = await page.goto(`${server.url}/bullmq/reports?state=waiting-children`);
    assert.equal(response.status(), 200);
    const row = page.locator('#bull-jobs').getByTestId(`job-row-${parent}`);
    assert.equal((await row.getByTestId('children').innerText()).trim(), '3 of 3 children pending');

    // The parent's page: waiting for three children, each linked.
    response = await submit(page, row.getByTestId('job-link'));
    assert.equal(response.status(), 200);
    const flow = page.getByTestId('job-flow');
    assert.equal((await flow.getByTestId('flow-waiting').innerText()).trim(), 'Waiting for 3 of 3 children.');
    const pending = flow.getByTestId('flow-pending');
    assert.equal(await pending.getByTestId('flow-child').count(), 3);
    assert.equal(await flow.getByTestId('flow-parent').count(), 0, 'a root has no parent');

    // A child's page links back to its parent, with the parent's state.
    response = await submit(page, pending.locator(`a[href="/bullmq/thumbs/jobs/${thumb}"]`));
    assert.equal(response.status(), 200);
    const up = page.getByTestId('job-flow').getByTestId('flow-parent');
    assert.equal((await up.getByTestId('flow-state').innerText()).trim(), 'Waiting children');
    assert.match(await up.getByTestId('flow-on-failure').innerText(), /waits until it is retried/);

    // Back on the parent, live; workers run the children.
    response = await submit(page, up.getByTestId('flow-link'));
    assert.equal(new URL(page.url()).pathname, `/bullmq/reports/jobs/${parent}`);
    await waitLive(page);
    await markWindow(page);
    for (const queue of ['mail', 'thumbs']) {
      workers.push(new Worker(queue, async (job) => ({ done: job.id }), { prefix, connection, drainDelay: 1 }));
    }
    // Once the last child completes the parent is ready: the page says so
    // without a reload, its children all processed.
    await page.waitForFunction(
      () => document.querySelector('[data-test-id="job-state"]')?.textContent.trim() === 'Waiting',
      null,
      { timeout: 20_000 },
    );
    const processed = page.getByTestId('job-flow').getByTestId('flow-processed');
    await poll('three processed children', async () => (await processed.getByTestId('flow-child').count()) === 3);
    assert.equal(await page.getByTestId('flow-waiting').count(), 0);
    assert.equal(await page.getByTestId('flow-pending').count(), 0);
    assert.ok(await stillMarked(page), 'the parent page updated itself without a reload');
    await page.screenshot({ path: join(artifacts, 'bullmq-flow.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page script threw');
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await context.close();
  }
});
