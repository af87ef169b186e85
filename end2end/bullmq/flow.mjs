// BullMQ flows (FlowProducer) for Switchyard's tests, so a flow read is
// compared with what BullMQ itself made and reports.
//
//   node flow.mjs <redisUrl> <prefix> add '<flow-json>'
//   node flow.mjs <redisUrl> <prefix> deps <queue> <jobId>
//
// `add` hands the JSON (BullMQ's FlowJob: name, queueName, data?, opts?,
// children?) to FlowProducer.add and prints the tree it made as one JSON
// line: {"queue", "id", "children": [...]}, children in the order given.
// `deps` prints BullMQ's view of one job: {"state": getState(),
// "counts": getDependenciesCount(), "parentKey", "parent"}.
import { FlowProducer, Queue } from 'bullmq';
import { connectionFromUrl, emit, parseArgs, usage } from './common.mjs';

const { positional } = parseArgs();
const [redisUrl, prefix, verb, ...rest] = positional;
const connection = connectionFromUrl(redisUrl);

/** The tree FlowProducer.add answers, as queue names and ids. */
function shape(node) {
  return {
    queue: node.job.queueName,
    id: node.job.id,
    children: (node.children || []).map(shape),
  };
}

if (verb === 'add' && rest.length === 1) {
  const flow = new FlowProducer({ prefix, connection });
  const tree = await flow.add(JSON.parse(rest[0]));
  emit(shape(tree));
  await flow.close();
} else if (verb === 'deps' && rest.length === 2) {
  const [queueName, jobId] = rest;
  const queue = new Queue(queueName, { prefix, connection });
  const job = await queue.getJob(jobId);
  emit({
    state: job ? await job.getState() : null,
    counts: job ? await job.getDependenciesCount() : null,
    parentKey: job ? job.parentKey || null : null,
    parent: job ? job.parent || null : null,
  });
  await queue.close();
} else {
  usage("flow.mjs <redisUrl> <prefix> add '<flow-json>' | deps <queue> <jobId>");
}
process.exit(0);
