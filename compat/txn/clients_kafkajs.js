// Transactions with kafkajs's transactional producer against one broker:
// commit, abort, an open transaction that read_committed does not see until
// it ends, a zombie fenced by a new producer of the same transactional id,
// and sendOffsets (offsets of a group committed in the transaction). Each
// scenario prints `PASS name`, `FAIL name: why` or `SKIP name`, and
// `OBSERVE name key = value` lines that must be the same on every broker
// (crates/cli/tests/cli/txn_clients.rs compares pubsub with Apache Kafka).
//
// Usage: node clients_kafkajs.js BOOTSTRAP [--skip a,b]   (kafkajs 2 on NODE_PATH
// or in ./node_modules). Exit status 1 when a scenario failed.

const { Kafka, logLevel } = require("kafkajs");
const crypto = require("crypto");

const [bootstrap, ...rest] = process.argv.slice(2);
const skip = new Set(rest[0] === "--skip" ? rest[1].split(",") : []);
const run = crypto.randomBytes(4).toString("hex");
const kafka = new Kafka({
  clientId: "txn-kafkajs",
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 5, initialRetryTime: 100 },
});
const admin = kafka.admin();
let scenario = "";

class Failed extends Error {}

function observe(key, value) {
  console.log(`OBSERVE ${scenario} ${key} = ${JSON.stringify(value)}`);
}

function equal(expected, actual, what) {
  const [e, a] = [JSON.stringify(expected), JSON.stringify(actual)];
  if (e !== a) throw new Failed(`${what}: expected ${e}, got ${a}`);
}

function name(suffix) {
  return `${scenario.replace(/\./g, "-")}-${suffix}-${run}`;
}

async function eventually(what, predicate) {
  const deadline = Date.now() + 60000;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Failed(`gave up after 60 s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function topic(suffix, partitions) {
  const t = name(suffix);
  await admin.createTopics({ topics: [{ topic: t, numPartitions: partitions }], waitForLeaders: true });
  return t;
}

// Each partition's last stable offset (kafkajs lists offsets read_committed).
async function stable(t) {
  const offsets = await admin.fetchTopicOffsets(t);
  return offsets.sort((a, b) => a.partition - b.partition).map((o) => Number(o.high));
}

// Waits until the last stable offsets are `expected`: Kafka answers EndTxn
// before it writes the markers.
async function settle(t, expected) {
  let last;
  await eventually(`last stable offsets ${expected}`, async () => {
    last = await stable(t);
    return JSON.stringify(last) === JSON.stringify(expected);
  });
}

async function transactional(txnId) {
  const p = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  return p;
}

function records(t, partitions, prefix, perPartition) {
  const messages = [];
  for (let part = 0; part < partitions; part++) {
    for (let i = 0; i < perPartition; i++) messages.push({ partition: part, key: "k", value: `${prefix}-${part}-${i}` });
  }
  return { topic: t, messages };
}

// `count` records of `t` read in a new group with the isolation level,
// as "partition/offset:value" sorted by partition then offset.
async function read(t, count, readUncommitted) {
  const c = kafka.consumer({ groupId: name(`reader-${readUncommitted ? "ru" : "rc"}-${crypto.randomBytes(3).toString("hex")}`), readUncommitted });
  await c.connect();
  await c.subscribe({ topic: t, fromBeginning: true });
  const got = [];
  let done;
  const finished = new Promise((r) => (done = r));
  await c.run({
    eachMessage: async ({ partition, message }) => {
      got.push([partition, Number(message.offset), message.value.toString()]);
      if (got.length >= count) done();
    },
  });
  const timer = setTimeout(done, 60000);
  await finished;
  clearTimeout(timer);
  await c.disconnect();
  got.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out = got.map(([p, o, v]) => `${p}/${o}:${v}`);
  equal(count, out.length, `records read (${readUncommitted ? "read_uncommitted" : "read_committed"}) ${out}`);
  return out;
}

const scenarios = {
  "txn.commit": async () => {
    const t = await topic("t", 2);
    const p = await transactional(name("tx"));
    const txn = await p.transaction();
    await txn.send(records(t, 2, "c", 3));
    await txn.commit();
    await settle(t, [4, 4]);
    const committed = await read(t, 6, false);
    equal(["0/0:c-0-0", "0/1:c-0-1", "0/2:c-0-2", "1/0:c-1-0", "1/1:c-1-1", "1/2:c-1-2"], committed, "read_committed");
    await p.disconnect();
    observe("read-committed", committed);
  },

  "txn.abort": async () => {
    const t = await topic("t", 1);
    const p = await transactional(name("tx"));
    let txn = await p.transaction();
    await txn.send(records(t, 1, "first", 2));
    await txn.commit();
    txn = await p.transaction();
    await txn.send(records(t, 1, "aborted", 2));
    await txn.abort();
    txn = await p.transaction();
    await txn.send(records(t, 1, "third", 1));
    await txn.commit();
    await settle(t, [8]);
    const committed = await read(t, 3, false);
    equal(["0/0:first-0-0", "0/1:first-0-1", "0/6:third-0-0"], committed, "read_committed");
    const uncommitted = await read(t, 5, true);
    equal(["0/0:first-0-0", "0/1:first-0-1", "0/3:aborted-0-0", "0/4:aborted-0-1", "0/6:third-0-0"], uncommitted,
      "read_uncommitted");
    await p.disconnect();
    observe("read-committed", committed);
    observe("read-uncommitted", uncommitted);
  },

  "txn.open-invisible-to-read-committed": async () => {
    const t = await topic("t", 1);
    const p = await transactional(name("tx"));
    const txn = await p.transaction();
    await txn.send(records(t, 1, "open", 2));
    const uncommitted = await read(t, 2, true);
    equal(["0/0:open-0-0", "0/1:open-0-1"], uncommitted, "read_uncommitted while open");
    const whileOpen = await stable(t);
    equal([0], whileOpen, "last stable offset while the transaction is open");
    await txn.commit();
    await settle(t, [3]);
    const committed = await read(t, 2, false);
    equal(uncommitted, committed, "read_committed after the commit");
    await p.disconnect();
    observe("stable-while-open", whileOpen);
    observe("read-committed", committed);
  },

  "txn.zombie-fenced": async () => {
    const t = await topic("t", 2);
    const txnId = name("tx");
    const zombie = await transactional(txnId);
    const ztxn = await zombie.transaction();
    await ztxn.send(records(t, 2, "zombie", 1));
    const fresh = await transactional(txnId);
    // kafkajs asks for its producer id (InitProducerId, which fences the
    // zombie and aborts its transaction) when the first transaction begins.
    const txn = await fresh.transaction();
    let refusal = "none";
    try {
      await ztxn.commit();
    } catch (e) {
      refusal = e.type || e.name;
    }
    await txn.send(records(t, 2, "fresh", 1));
    await txn.commit();
    await settle(t, [4, 4]);
    const committed = await read(t, 2, false);
    equal(["0/2:fresh-0-0", "1/2:fresh-1-0"], committed, "read_committed");
    const uncommitted = await read(t, 4, true);
    equal(["0/0:zombie-0-0", "0/2:fresh-0-0", "1/0:zombie-1-0", "1/2:fresh-1-0"], uncommitted, "read_uncommitted");
    if (refusal === "none") throw new Failed("the zombie's commit succeeded");
    await Promise.allSettled([zombie.disconnect(), fresh.disconnect()]);
    observe("zombie-commit", refusal);
    observe("read-committed", committed);
  },

  "txn.send-offsets": async () => {
    const input = await topic("in", 1);
    const out = await topic("out", 1);
    const group = name("g");
    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic: input, messages: [...Array(10).keys()].map((i) => ({ value: `v-${i}` })) });
    await plain.disconnect();
    const p = await transactional(name("tx"));
    const committedOffset = async () => {
      const [o] = await admin.fetchOffsets({ groupId: group, topics: [input] });
      return Number(o.partitions[0].offset);
    };
    const step = async (from, to, commit) => {
      const txn = await p.transaction();
      const messages = [];
      for (let i = from; i < to; i++) messages.push({ partition: 0, value: `V-${i}` });
      await txn.send({ topic: out, messages });
      await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition: 0, offset: String(to) }] }] });
      await (commit ? txn.commit() : txn.abort());
    };
    await step(0, 5, true);
    await step(5, 10, false);
    await settle(out, [12]);
    await eventually("the group's offset at 5", async () => (await committedOffset()) === 5);
    await step(5, 10, true);
    await settle(out, [18]);
    await eventually("the group's offset at 10", async () => (await committedOffset()) === 10);
    const output = (await read(out, 10, false)).map((r) => r.slice(r.indexOf(":") + 1));
    equal([...Array(10).keys()].map((i) => `V-${i}`), output, "the output, read_committed");
    await p.disconnect();
    observe("output", output);
    observe("group-offset", await committedOffset());
  },
};

(async () => {
  await admin.connect();
  const failed = [];
  for (const [n, f] of Object.entries(scenarios)) {
    scenario = n;
    if (skip.has(n)) {
      console.log(`SKIP ${n}`);
      continue;
    }
    try {
      await f();
      console.log(`PASS ${n}`);
    } catch (e) {
      failed.push(n);
      console.log(`FAIL ${n}: ${e.name}: ${e.message}`.replace(/\n/g, " "));
    }
  }
  await admin.disconnect();
  console.log(failed.length ? `failed: ${failed.join(", ")}` : "all scenarios passed");
  process.exit(failed.length ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL ${scenario}: ${e.name}: ${e.message}`);
  process.exit(1);
});
