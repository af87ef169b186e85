// BullMQ job schedulers for Switchyard's tests, made by BullMQ itself so
// the dashboard's listing, run now and remove are checked against it.
//
//   node scheduler.mjs <redisUrl> <prefix> <queue> upsert <id> '<repeat-json>' '<template-json>'
//   node scheduler.mjs <redisUrl> <prefix> <queue> repeatable <name> '<repeat-json>' '<data-json>'
//   node scheduler.mjs <redisUrl> <prefix> <queue> list
//
// `upsert` calls Queue.upsertJobScheduler (BullMQ 5), `repeatable` the
// legacy Queue.add(name, data, { repeat }); each prints what BullMQ made
// as one JSON line. `list` prints {"schedulers": getJobSchedulers() ids}.
import { Queue } from 'bullmq';
import { connectionFromUrl, emit, parseArgs, usage } from './common.mjs';

const { positional } = parseArgs();
const [redisUrl, prefix, queueName, verb, ...rest] = positional;
const queue = new Queue(queueName, { prefix, connection: connectionFromUrl(redisUrl) });

if (verb === 'upsert' && rest.length === 3) {
  const [id, repeat, template] = rest;
  const job = await queue.upsertJobScheduler(id, JSON.parse(repeat), JSON.parse(template));
  emit({ id: job?.id ?? null });
} else if (verb === 'repeatable' && rest.length === 3) {
  const [name, repeat, data] = rest;
  const job = await queue.add(name, JSON.parse(data), { repeat: JSON.parse(repeat) });
  emit({ id: job.id, key: job.repeatJobKey ?? null });
} else if (verb === 'list' && rest.length === 0) {
  const schedulers = await queue.getJobSchedulers();
  emit({ schedulers: schedulers.map((s) => s.key ?? s.id) });
} else {
  usage('node scheduler.mjs <redisUrl> <prefix> <queue> upsert|repeatable|list …');
}
await queue.close();
