#!/usr/bin/python3
"""Enqueue cancellations for cancelqd and consume their outcomes (redis-py).

    cancel_subscriptions.py [HOST:PORT [PREFIX]]

Environment: CQ_REDIS (HOST:PORT, default 127.0.0.1:6379), CQ_PREFIX
(default cancelq), CQ_GROUP (consumer group, default billing-python),
CQ_RUN (names this run's job ids and idempotency keys; the same value
resumes a run), CQ_NO_ENQUEUE=1 (only consume), CQ_CRASH_BEFORE_ACK=1
(exit 3 after the first read, before XACK: the next run re-reads it).

Job and outcome formats: README.md "For billing engineers", schemas/.
"""
import json
import os
import random
import sys
import time

import redis

LANG = "python"
# README's status table: the first three mean the subscription is cancelled;
# the others left a dead letter that someone has to look at.
CANCELLED = ("succeeded", "already_done", "duplicate")
NEEDS_ATTENTION = ("failed", "exhausted", "expired", "invalid", "conflict")
EXPECTED = {"succeeded": 1, "already_done": 1, "duplicate": 1, "invalid": 1}


def demo_jobs(run):
    """One job that succeeds, the same intent again (same idempotency key:
    duplicate), a subscription the provider already stopped (the sandbox's
    activeplatform:1/7000, marked by tests/examples/run.sh) and a job with a
    bad parameter (invalid)."""
    service = {"serviceid": random.randint(1, 2**31 - 1), "type": "End of Billing Period"}
    return [
        {"id": run + "-1", "idempotency_key": run + ":service", "provider": "keliweb",
         "action": "cancel_service", "params": service, "meta": {"customer": 42}},
        {"id": run + "-2", "idempotency_key": run + ":service", "provider": "keliweb",
         "action": "cancel_service", "params": service},
        {"id": run + "-3", "idempotency_key": run + ":sub:7000", "provider": "activeplatform",
         "action": "stop_subscription",
         "params": {"reseller_id": 1, "subscription_id": 7000, "reason": "customer request",
                    "comment": "ticket 88"}},
        {"id": run + "-4", "idempotency_key": run + ":partner", "provider": "intronis",
         "action": "cancel_partner",
         "params": {"username": "acme", "reason_id": "one", "reason_note": ""}},
    ]


def enqueue(r, prefix, job):
    """Push one job; cancelqd takes jobs from the other end (FIFO)."""
    r.lpush("{%s}:jobs" % prefix, json.dumps(job))


def ensure_group(r, stream, group):
    """Create the consumer group once, before the first job, so that no
    outcome is missed; MKSTREAM: the stream may not exist yet."""
    try:
        r.xgroup_create(stream, group, id="$", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def record(outcome):
    """What billing does with an outcome.  A real system writes it to its
    database (idempotently: after a crash it may see it again) before XACK."""
    status, job = outcome["status"], outcome["id"]
    if status == "duplicate":
        print("  %s: cancelled earlier by job %s (%s)"
              % (job, outcome["original_id"], outcome["original_status"]))
    elif status in CANCELLED:
        print("  %s: cancelled (%s)" % (job, status))
    elif status in NEEDS_ATTENTION:
        # also in the dead-letter queue: cancelqctl dlq show / requeue
        print("  %s: needs attention: %s %s: %s"
              % (job, status, outcome["error"], outcome["message"]))
    else:
        print("  %s: unknown status %r, kept for a human" % (job, status))


def consume(r, stream, group, consumer, want, seen, timeout=30):
    """Read outcomes until every job id in want is in seen (id -> status).
    First this consumer's pending entries (read before a crash, never
    acknowledged: ID 0), then new ones ('>').  Each is recorded, then acked."""
    start, deadline = "0", time.time() + timeout
    while not want <= seen.keys() and time.time() < deadline:
        reply = r.xreadgroup(group, consumer, {stream: start}, count=100, block=1000)
        entries = reply[0][1] if reply else []
        if start == "0":
            if not entries:
                start = ">"
                continue
            print("  re-read %d pending outcome(s) first" % len(entries))
        if entries and os.environ.get("CQ_CRASH_BEFORE_ACK") == "1":
            print("  exiting after reading %d outcome(s), before XACK" % len(entries))
            sys.exit(3)
        for entry_id, outcome in entries:
            if outcome and outcome.get("id") in want:  # a trimmed entry comes back empty
                record(outcome)
                seen[outcome["id"]] = outcome["status"]
            r.xack(stream, group, entry_id)


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CQ_REDIS", "127.0.0.1:6379")
    prefix = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CQ_PREFIX", "cancelq")
    group = os.environ.get("CQ_GROUP", "billing-" + LANG)
    run = os.environ.get("CQ_RUN", "%s-%d" % (LANG, time.time() * 1000))
    host, port = addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), decode_responses=True)
    stream = "{%s}:results" % prefix

    ensure_group(r, stream, group)
    jobs = demo_jobs(run)
    enqueued = 0
    if os.environ.get("CQ_NO_ENQUEUE") != "1":
        for job in jobs:
            enqueue(r, prefix, job)
            enqueued += 1
    seen = {}
    consume(r, stream, group, LANG + "-1", {job["id"] for job in jobs}, seen)

    counts = {}
    for status in CANCELLED + NEEDS_ATTENTION:
        n = list(seen.values()).count(status)
        if n:
            counts[status] = n
    print("%s: enqueued %d, outcomes %d: %s" % (LANG, enqueued, len(seen), " ".join(
        "%s=%d" % kv for kv in counts.items())))
    return 0 if counts == EXPECTED else 1


if __name__ == "__main__":
    sys.exit(main())
