// Adds jobs to BullMQ queues with BullMQ itself.
//
//   node produce.mjs <redisUrl> <prefix> <queue> <n>
//        [--name send] [--delay ms] [--priority p] [--attempts k] [--backoff ms]
//        [--id-prefix x]
//   node produce.mjs <redisUrl> <prefix> <queue> '<plan>'
//   node produce.mjs <redisUrl> <prefix> <queue> <n> --flow-parent <parentQueue>
//        [--child-opts '<json>']
//
// where <plan> is a JSON array of groups {"queue"?, "n", "delay"?,
// "priority"?, "attempts"?, "backoff"?} added in order (one process for several
// groups keeps tests fast). Prints one JSON line: {"ids": [...]} with the
// ids in the order added. With --flow-parent, one parent job is added to
// <parentQueue> with n children in <queue> (BullMQ's FlowProducer, each
// child with --child-opts), and the line also holds {"parent": id}.
import { FlowProducer, Queue } from 'bullmq';
import { connectionFromUrl, emit, parseArgs, usage } from './common.mjs';

const { positional, options } = parseArgs();
if (positional.length !== 4) {
  usage('produce.mjs <redisUrl> <prefix> <queue> <n|plan-json> [--name n] [--delay ms] [--priority p] [--attempts k] [--id-prefix x]');
}
const [redisUrl, prefix, defaultQueue, countOrPlan] = positional;
const plan = countOrPlan.startsWith('[')
  ? JSON.parse(countOrPlan)
  : [{ n: Number(countOrPlan), delay: options.delay, priority: options.priority, attempts: options.attempts, backoff: options.backoff }];

const connection = connectionFromUrl(redisUrl);
if (options['flow-parent']) {
  const flow = new FlowProducer({ prefix, connection });
  const childOpts = JSON.parse(options['child-opts'] || '{}');
  const tree = await flow.add({
    name: 'parent',
    queueName: options['flow-parent'],
    data: {},
    children: Array.from({ length: Number(countOrPlan) }, (_, n) => ({
      name: options.name || 'job',
      queueName: defaultQueue,
      data: { n },
      opts: childOpts,
    })),
  });
  emit({ ids: tree.children.map((child) => child.job.id), parent: tree.job.id });
  await flow.close();
  process.exit(0);
}
const queues = new Map();
const queueFor = (name) => {
  if (!queues.has(name)) queues.set(name, new Queue(name, { prefix, connection }));
  return queues.get(name);
};
const ids = [];
let i = 0;
for (const group of plan) {
  const queue = queueFor(group.queue || defaultQueue);
  for (let k = 0; k < Number(group.n); k++, i++) {
    const opts = {};
    if (group.delay) opts.delay = Number(group.delay);
    if (group.priority) opts.priority = Number(group.priority);
    if (group.attempts) opts.attempts = Number(group.attempts);
    if (group.backoff) opts.backoff = { type: 'fixed', delay: Number(group.backoff) };
    if (options['id-prefix']) opts.jobId = `${options['id-prefix']}${i}`;
    const job = await queue.add(options.name || 'job', { n: i }, opts);
    ids.push(job.id);
  }
}
emit({ ids });
await Promise.all([...queues.values()].map((queue) => queue.close()));
process.exit(0);
