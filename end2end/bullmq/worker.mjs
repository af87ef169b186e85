// A real BullMQ worker for Switchyard's tests.
//
//   node worker.mjs <redisUrl> <prefix> <queue>
//        [--fail] [--count n] [--timeout ms] [--drain-delay s] [--work ms]
//        [--reasons 'a {id}|b'] [--unrecoverable]
//
// Prints {"event":"ready"} once it is listening, then one JSON line per
// finished job: {"event":"completed"|"failed","id","name","attemptsMade",
// "failedReason"}. Exits after `count` finished jobs (default 1) or after
// `timeout` ms (default 10000, printing {"event":"timeout"}). `--fail`
// makes every job throw `boom <id>`; with `--reasons`, the message is the
// template at (numeric id mod their count), `{id}` replaced by the id;
// `--unrecoverable` throws BullMQ's UnrecoverableError instead (no retry
// whatever attempts are left). `--drain-delay` is how long (s) an
// idle worker sleeps on the marker before polling again (default 30, so a
// job only runs promptly if whoever made it ready woke the worker).
import { UnrecoverableError, Worker } from 'bullmq';
import { connectionFromUrl, emit, parseArgs, usage } from './common.mjs';

const { positional, options } = parseArgs();
if (positional.length !== 3) {
  usage('worker.mjs <redisUrl> <prefix> <queue> [--fail] [--count n] [--timeout ms] [--drain-delay s] [--work ms] [--reasons a|b] [--unrecoverable]');
}
const [redisUrl, prefix, queueName] = positional;
const wanted = Number(options.count || 1);
const timeout = Number(options.timeout || 10000);
const work = Number(options.work || 0);

const worker = new Worker(
  queueName,
  async (job) => {
    if (work > 0) await new Promise((resolve) => setTimeout(resolve, work));
    if (options.fail) {
      const reasons = options.reasons ? String(options.reasons).split('|') : null;
      const message = reasons
        ? reasons[Number(job.id) % reasons.length].replaceAll('{id}', job.id)
        : `boom ${job.id}`;
      throw options.unrecoverable ? new UnrecoverableError(message) : new Error(message);
    }
    return { done: job.id };
  },
  {
    prefix,
    connection: connectionFromUrl(redisUrl),
    drainDelay: Number(options['drain-delay'] || 30),
    autorun: true,
  },
);

let finished = 0;
let closing = false;
async function stop(code) {
  if (closing) return;
  closing = true;
  clearTimeout(timer);
  await worker.close();
  process.exit(code);
}
function record(event, job, err) {
  emit({
    event,
    id: job.id,
    name: job.name,
    attemptsMade: job.attemptsMade,
    failedReason: err ? err.message : null,
  });
  finished += 1;
  if (finished >= wanted) stop(0);
}
worker.on('completed', (job) => record('completed', job));
worker.on('failed', (job, err) => record('failed', job, err));
worker.on('error', (err) => process.stderr.write(`worker error: ${err}\n`));
const timer = setTimeout(() => {
  emit({ event: 'timeout', finished });
  stop(0);
}, timeout);

await worker.waitUntilReady();
emit({ event: 'ready' });
