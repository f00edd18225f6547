#!/usr/bin/node
// Enqueue cancellations for cancelqd and consume their outcomes (node-redis 4,
// Debian's node-redis; with a Node.js not from Debian set
// NODE_PATH=/usr/share/nodejs).
//
//   node cancel_subscriptions.js [HOST:PORT [PREFIX]]
//
// Environment: CQ_REDIS (HOST:PORT, default 127.0.0.1:6379), CQ_PREFIX
// (default cancelq), CQ_GROUP (consumer group, default billing-node), CQ_RUN
// (names this run's job ids and idempotency keys; the same value resumes a
// run), CQ_NO_ENQUEUE=1 (only consume), CQ_CRASH_BEFORE_ACK=1 (exit 3 after
// the first read, before XACK: the next run re-reads it).
//
// Job and outcome formats: README.md "For billing engineers", schemas/.
'use strict';
const crypto = require('crypto');
const { createClient } = require('redis');

const LANG = 'node';
// README's status table: the first three mean the subscription is cancelled;
// the others left a dead letter that someone has to look at.
const CANCELLED = ['succeeded', 'already_done', 'duplicate'];
const NEEDS_ATTENTION = ['failed', 'exhausted', 'expired', 'invalid', 'conflict'];
const EXPECTED = 'succeeded=1 already_done=1 duplicate=1 invalid=1';

// One job that succeeds, the same intent again (same idempotency key:
// duplicate), a subscription the provider already stopped (the sandbox's
// activeplatform:1/7000, marked by tests/examples/run.sh) and a job with a
// bad parameter (invalid).
function demoJobs(run) {
  const service = { serviceid: crypto.randomInt(1, 2 ** 31), type: 'End of Billing Period' };
  return [
    { id: `${run}-1`, idempotency_key: `${run}:service`, provider: 'keliweb',
      action: 'cancel_service', params: service, meta: { customer: 42 } },
    { id: `${run}-2`, idempotency_key: `${run}:service`, provider: 'keliweb',
      action: 'cancel_service', params: service },
    { id: `${run}-3`, idempotency_key: `${run}:sub:7000`, provider: 'activeplatform',
      action: 'stop_subscription',
      params: { reseller_id: 1, subscription_id: 7000, reason: 'customer request', comment: 'ticket 88' } },
    { id: `${run}-4`, idempotency_key: `${run}:partner`, provider: 'intronis',
      action: 'cancel_partner', params: { username: 'acme', reason_id: 'one', reason_note: '' } },
  ];
}

// Push one job; cancelqd takes jobs from the other end (FIFO).
async function enqueue(redis, prefix, job) {
  await redis.lPush(`{${prefix}}:jobs`, JSON.stringify(job));
}

// Create the consumer group once, before the first job, so that no outcome
// is missed; MKSTREAM: the stream may not exist yet.
async function ensureGroup(redis, stream, group) {
  try {
    await redis.xGroupCreate(stream, group, '$', { MKSTREAM: true });
  } catch (e) {
    if (!String(e.message).includes('BUSYGROUP')) throw e;
  }
}

// What billing does with an outcome.  A real system writes it to its
// database (idempotently: after a crash it may see it again) before XACK.
function record(outcome) {
  const { status, id } = outcome;
  if (status === 'duplicate') {
    console.log(`  ${id}: cancelled earlier by job ${outcome.original_id} (${outcome.original_status})`);
  } else if (CANCELLED.includes(status)) {
    console.log(`  ${id}: cancelled (${status})`);
  } else if (NEEDS_ATTENTION.includes(status)) {
    // also in the dead-letter queue: cancelqctl dlq show / requeue
    console.log(`  ${id}: needs attention: ${status} ${outcome.error}: ${outcome.message}`);
  } else {
    console.log(`  ${id}: unknown status '${status}', kept for a human`);
  }
}

// Read outcomes until every job id in want is in seen (id -> status).  First
// this consumer's pending entries (read before a crash, never acknowledged:
// ID 0), then new ones ('>').  Each is recorded, then acked.  The blocking
// read holds the connection: this client does nothing else meanwhile.
// (node-redis 4.5 cannot parse a pending entry that the stream's trimming
// removed: keep consumers running, the stream keeps ~1,000,000 outcomes.)
async function consume(redis, stream, group, consumer, want, seen, timeoutMs = 30000) {
  let start = '0';
  const deadline = Date.now() + timeoutMs;
  while ([...want].some((id) => !seen.has(id)) && Date.now() < deadline) {
    const reply = await redis.xReadGroup(group, consumer, { key: stream, id: start },
                                         { COUNT: 100, BLOCK: 1000 });
    const entries = reply ? reply[0].messages : [];
    if (start === '0') {
      if (entries.length === 0) {
        start = '>';
        continue;
      }
      console.log(`  re-read ${entries.length} pending outcome(s) first`);
    }
    if (entries.length > 0 && process.env.CQ_CRASH_BEFORE_ACK === '1') {
      console.log(`  exiting after reading ${entries.length} outcome(s), before XACK`);
      process.exit(3);
    }
    for (const { id: entryId, message: outcome } of entries) {
      if (want.has(outcome.id)) {
        record(outcome);
        seen.set(outcome.id, outcome.status);
      }
      await redis.xAck(stream, group, entryId);
    }
  }
}

async function main() {
  const addr = process.argv[2] || process.env.CQ_REDIS || '127.0.0.1:6379';
  const prefix = process.argv[3] || process.env.CQ_PREFIX || 'cancelq';
  const group = process.env.CQ_GROUP || `billing-${LANG}`;
  const run = process.env.CQ_RUN || `${LANG}-${Date.now()}`;
  const i = addr.lastIndexOf(':');
  const redis = createClient({ socket: { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) } });
  redis.on('error', (e) => console.error(`redis: ${e.message}`));
  await redis.connect();
  const stream = `{${prefix}}:results`;

  await ensureGroup(redis, stream, group);
  const jobs = demoJobs(run);
  let enqueued = 0;
  if (process.env.CQ_NO_ENQUEUE !== '1') {
    for (const job of jobs) {
      await enqueue(redis, prefix, job);
      enqueued++;
    }
  }
  const seen = new Map();
  await consume(redis, stream, group, `${LANG}-1`, new Set(jobs.map((j) => j.id)), seen);
  await redis.quit();

  const counts = [...CANCELLED, ...NEEDS_ATTENTION]
    .map((s) => [s, [...seen.values()].filter((v) => v === s).length])
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s}=${n}`)
    .join(' ');
  console.log(`${LANG}: enqueued ${enqueued}, outcomes ${seen.size}: ${counts}`);
  return counts === EXPECTED ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`${LANG}: ${e.stack || e}`);
  process.exit(1);
});
