// BullMQ 5's side of the retry-all benchmark (switchyard-retry-bench):
//
//   node retry.mjs fill  <redisUrl> <prefix> <queue> <n>
//   node retry.mjs retry <redisUrl> <prefix> <queue>
//
// `fill` adds n jobs (one attempt each, addBulk in batches of 1000) and
// fails every one with a real Worker whose processor throws, until
// getJobCounts reports n failed. `retry` times BullMQ's own
// `queue.retryJobs({ state: 'failed' })` (its default batch of 1000) and
// checks that every job left `failed`. Each prints one JSON line.
import { Queue, Worker } from "bullmq";

const [mode, redisUrl, prefix, name, count] = process.argv.slice(2);
if (!["fill", "retry"].includes(mode) || !redisUrl || !prefix || !name) {
  console.error("usage: node retry.mjs fill|retry <redisUrl> <prefix> <queue> [n]");
  process.exit(2);
}
const url = new URL(redisUrl);
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  maxRetriesPerRequest: null,
};
const queue = new Queue(name, { prefix, connection });

if (mode === "fill") {
  const n = Number(count);
  const started = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) {
      jobs.push({
        name: "send-email",
        data: { to: `customer${k}@example.com`, template: "welcome" },
        opts: { attempts: 1, removeOnComplete: false, removeOnFail: false },
      });
    }
    await queue.addBulk(jobs);
  }
  const worker = new Worker(
    name,
    async (job) => {
      throw new Error(`SMTP 550 5.1.1 <${job.data.to}>: recipient address rejected`);
    },
    { prefix, connection, concurrency: 200 },
  );
  let failed = 0;
  let lastProgress = performance.now();
  while (failed < n) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const counts = await queue.getJobCounts("failed");
    if (counts.failed > failed) lastProgress = performance.now();
    failed = counts.failed;
    if (performance.now() - lastProgress > 60_000) {
      throw new Error(`no job failed for 60 s (${failed} of ${n})`);
    }
  }
  await worker.close();
  console.log(JSON.stringify({ failed, seconds: (performance.now() - started) / 1000 }));
} else {
  const before = await queue.getJobCounts("failed", "wait");
  const started = performance.now();
  await queue.retryJobs({ state: "failed" });
  const seconds = (performance.now() - started) / 1000;
  const after = await queue.getJobCounts("failed", "wait");
  if (after.failed !== 0 || after.wait !== before.wait + before.failed) {
    throw new Error(`retryJobs left ${JSON.stringify(after)} from ${JSON.stringify(before)}`);
  }
  console.log(JSON.stringify({ retried: before.failed, seconds }));
}
await queue.close();
