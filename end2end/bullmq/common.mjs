// Shared by the BullMQ helper scripts that coord's tests (coord/tests/bullmq.rs)
// run to check Switchyard against the real BullMQ: argument parsing and a
// connection built from a redis:// or redis+cluster:// URL.

import { Cluster } from 'ioredis';

/** Positional arguments and `--flag [value]` options of this process. */
export function parseArgs(argv = process.argv.slice(2)) {
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const name = arg.slice(2);
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        options[name] = next;
        i++;
      } else {
        options[name] = true;
      }
    } else {
      positional.push(arg);
    }
  }
  return { positional, options };
}

/**
 * BullMQ's connection for a URL: ioredis options for redis://, an ioredis
 * Cluster for redis+cluster://h:p,h:p (BullMQ takes either).
 */
export function connectionFromUrl(redisUrl) {
  if (redisUrl.startsWith('redis+cluster://')) {
    const nodes = redisUrl
      .slice('redis+cluster://'.length)
      .replace(/\/$/, '')
      .split(',')
      .map((hostPort) => {
        const [host, port] = hostPort.split(':');
        return { host, port: Number(port) };
      });
    return new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
  }
  const url = new URL(redisUrl);
  const db = url.pathname && url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 6379),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db,
    // Workers need this; harmless for queues.
    maxRetriesPerRequest: null,
  };
}

/** Prints one JSON line on stdout. */
export function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** Fails with a usage message. */
export function usage(text) {
  process.stderr.write(`usage: ${text}\n`);
  process.exit(2);
}
