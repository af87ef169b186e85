// The BullMQ 5 peer of switchyard-bench: the same three measurements on the
// same Redis, printed in the same JSON-line shape (one object per
// measurement on stdout; progress on stderr).
//
//   node bench.mjs [--jobs 20000] [--concurrency 50] [--runs 3]
//                  [--batch 1000] [--redis redis://127.0.0.1:6379]
//
// - enqueue_single: `concurrency` producers, each awaiting one Queue.add at
//   a time until `jobs` jobs are in;
// - enqueue_bulk: `jobs` jobs through Queue.addBulk in batches of `batch`;
// - process: with `jobs` jobs waiting, one Worker with `concurrency` slots
//   and a no-op processor, timed from worker.run() until its 'completed'
//   event has fired `jobs` times (checked against getJobCounts afterwards).
//
// Jobs are kept after they finish (removeOnComplete / removeOnFail false),
// as Switchyard keeps them by default. Every run uses its own key prefix,
// and everything under it is deleted afterwards.

import { Queue, Worker } from "bullmq";

const SYSTEM = "bullmq";
const BACKEND = "redis";
const NO_PROGRESS_LIMIT_MS = 60_000;

function parseArgs(argv) {
  const args = {
    jobs: 20000,
    concurrency: 50,
    runs: 3,
    batch: 1000,
    redis: "redis://127.0.0.1:6379",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const [name, inline] = flag.startsWith("--") ? flag.slice(2).split("=", 2) : [null];
    if (!name || !(name in args)) {
      throw new Error(`unknown argument ${flag}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined) {
      throw new Error(`${flag} needs a value`);
    }
    if (name === "redis") {
      args.redis = value;
    } else {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) {
        throw new Error(`--${name} must be a positive integer (got ${value})`);
      }
      args[name] = n;
    }
  }
  return args;
}

function connectionOptions(url) {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`unsupported Redis URL ${url}`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
    tls: u.protocol === "rediss:" ? {} : undefined,
    // Required by BullMQ workers (blocking commands must not give up).
    maxRetriesPerRequest: null,
  };
}

function measurement(measure, run, jobs, concurrency, seconds) {
  return {
    system: SYSTEM,
    backend: BACKEND,
    measure,
    run,
    jobs,
    concurrency,
    seconds,
    jobs_per_sec: seconds > 0 ? jobs / seconds : 0,
  };
}

const now = () => performance.now();

function batchOf(from, to) {
  const jobs = [];
  for (let i = from; i < to; i++) {
    jobs.push({ name: "noop", data: { i } });
  }
  return jobs;
}

async function addInBatches(queue, jobs, batch) {
  for (let i = 0; i < jobs; i += batch) {
    const end = Math.min(i + batch, jobs);
    const added = await queue.addBulk(batchOf(i, end));
    if (added.length !== end - i) {
      throw new Error(`addBulk returned ${added.length} jobs for ${end - i}`);
    }
  }
}

async function expectWaiting(queue, jobs, what) {
  const waiting = await queue.getWaitingCount();
  if (waiting !== jobs) {
    throw new Error(`${what} left ${waiting} waiting jobs, expected ${jobs}`);
  }
}

async function enqueueSingle(queue, jobs, producers) {
  let next = 0;
  const started = now();
  const producer = async () => {
    for (;;) {
      const i = next++;
      if (i >= jobs) return;
      await queue.add("noop", { i });
    }
  };
  await Promise.all(Array.from({ length: producers }, producer));
  return (now() - started) / 1000;
}

async function enqueueBulk(queue, jobs, batch) {
  const started = now();
  await addInBatches(queue, jobs, batch);
  return (now() - started) / 1000;
}

async function processAll(queue, connection, prefix, jobs, concurrency, batch) {
  await addInBatches(queue, jobs, batch);
  await expectWaiting(queue, jobs, "prefill");
  const worker = new Worker(queue.name, async () => null, {
    connection,
    prefix,
    concurrency,
    autorun: false,
  });
  let failedJob = null;
  worker.on("failed", (_job, err) => {
    failedJob = err;
  });
  worker.on("error", (err) => {
    console.error(`# bullmq worker error: ${err.message}`);
  });
  await worker.waitUntilReady();
  let completed = 0;
  let seconds;
  let watchdog;
  try {
    seconds = await new Promise((resolve, reject) => {
      let started;
      let last = 0;
      let lastProgress = now();
      watchdog = setInterval(() => {
        if (failedJob) {
          reject(new Error(`a job failed: ${failedJob.message}`));
        } else if (completed > last) {
          last = completed;
          lastProgress = now();
        } else if (now() - lastProgress > NO_PROGRESS_LIMIT_MS) {
          reject(new Error(`no job completed for 60 s (${completed} of ${jobs} done)`));
        }
      }, 1000);
      worker.on("completed", () => {
        completed += 1;
        if (completed === jobs) {
          resolve((now() - started) / 1000);
        }
      });
      started = now();
      worker.run().catch(reject);
    });
  } finally {
    clearInterval(watchdog);
    await worker.close();
  }
  const counts = await queue.getJobCounts("completed", "failed");
  if (counts.completed !== jobs || counts.failed !== 0) {
    throw new Error(
      `after processing: ${counts.completed} completed, ${counts.failed} failed, expected ${jobs} completed`,
    );
  }
  return seconds;
}

/// Deletes every key under `prefix:` (after obliterate, which leaves none
/// of the queues' own keys; this also catches anything else BullMQ wrote).
async function deletePrefix(queue, prefix) {
  const client = await queue.client;
  let cursor = "0";
  let removed = 0;
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    if (keys.length > 0) {
      removed += await client.del(...keys);
    }
    cursor = next;
  } while (cursor !== "0");
  // Let any lazy freeing finish before the next run starts.
  const settle = Date.now() + 10_000;
  while (Date.now() < settle) {
    const info = await client.info("memory");
    const pending = Number(/lazyfree_pending_objects:(\d+)/.exec(info)?.[1] ?? 0);
    if (pending === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return removed;
}

async function runOnce(args, run) {
  const connection = connectionOptions(args.redis);
  const prefix = `bullbench-${process.pid}-${Date.now()}-${run}`;
  const defaultJobOptions = { removeOnComplete: false, removeOnFail: false };
  const open = (name) => new Queue(name, { connection, prefix, defaultJobOptions });
  const queues = [open("bench-single"), open("bench-bulk"), open("bench-process")];
  const [single, bulk, proc] = queues;
  const results = [];
  const record = (measure, concurrency, seconds) => {
    const m = measurement(measure, run, args.jobs, concurrency, seconds);
    console.error(
      `# bullmq redis run ${run}/${args.runs}: ${measure} ${m.jobs_per_sec.toFixed(0)} jobs/s (${seconds.toFixed(3)} s)`,
    );
    console.log(JSON.stringify(m));
    results.push(m);
  };
  try {
    await Promise.all(queues.map((q) => q.waitUntilReady()));

    record("enqueue_single", args.concurrency, await enqueueSingle(single, args.jobs, args.concurrency));
    await expectWaiting(single, args.jobs, "single enqueue");

    record("enqueue_bulk", args.batch, await enqueueBulk(bulk, args.jobs, args.batch));
    await expectWaiting(bulk, args.jobs, "bulk enqueue");

    record(
      "process",
      args.concurrency,
      await processAll(proc, connection, prefix, args.jobs, args.concurrency, args.batch),
    );
  } finally {
    for (const q of queues) {
      await q.obliterate({ force: true }).catch((e) => {
        console.error(`# obliterate ${q.name}: ${e.message}`);
      });
    }
    const left = await deletePrefix(single, prefix);
    console.error(`# cleanup: obliterated 3 queues, deleted ${left} remaining keys under ${prefix}:`);
    await Promise.all(queues.map((q) => q.close()));
  }
  return results;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return 0;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const all = [];
  for (let run = 1; run <= args.runs; run++) {
    all.push(...(await runOnce(args, run)));
  }
  console.log("");
  console.log("| measure | system | backend | jobs | conc. | median jobs/s | runs (jobs/s) |");
  console.log("|---|---|---|---:|---:|---:|---|");
  for (const measure of ["enqueue_single", "enqueue_bulk", "process"]) {
    const runs = all.filter((m) => m.measure === measure);
    const rates = runs.map((m) => m.jobs_per_sec);
    console.log(
      `| ${measure} | ${SYSTEM} | ${BACKEND} | ${args.jobs} | ${runs[0].concurrency} | ${median(rates).toFixed(0)} | ${rates.map((r) => r.toFixed(0)).join(", ")} |`,
    );
  }
}

main().catch((err) => {
  console.error(`bullmq bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
