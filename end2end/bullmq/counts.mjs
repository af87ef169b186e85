// Prints what BullMQ itself reports for a queue, to compare with Switchyard:
//
//   node counts.mjs <redisUrl> <prefix> <queue> [jobId]
//
// One JSON line: {"counts": getJobCounts(), "isPaused": bool,
// "state": job.getState() or null, "job": job.toJSON() or null}.
import { Queue } from 'bullmq';
import { connectionFromUrl, emit, parseArgs, usage } from './common.mjs';

const { positional } = parseArgs();
if (positional.length < 3) usage('counts.mjs <redisUrl> <prefix> <queue> [jobId]');
const [redisUrl, prefix, queueName, jobId] = positional;
const queue = new Queue(queueName, { prefix, connection: connectionFromUrl(redisUrl) });
const counts = await queue.getJobCounts();
const isPaused = await queue.isPaused();
let state = null;
let job = null;
if (jobId) {
  state = await queue.getJobState(jobId);
  const found = await queue.getJob(jobId);
  job = found ? found.toJSON() : null;
}
emit({ counts, isPaused, state, job });
await queue.close();
process.exit(0);
