<?php
// Enqueue cancellations for cancelqd and consume their outcomes (phpredis).
//
//   php cancel_subscriptions.php [HOST:PORT [PREFIX]]
//
// Environment: CQ_REDIS (HOST:PORT, default 127.0.0.1:6379), CQ_PREFIX
// (default cancelq), CQ_GROUP (consumer group, default billing-php), CQ_RUN
// (names this run's job ids and idempotency keys; the same value resumes a
// run), CQ_NO_ENQUEUE=1 (only consume), CQ_CRASH_BEFORE_ACK=1 (exit 3 after
// the first read, before XACK: the next run re-reads it).
//
// Job and outcome formats: README.md "For billing engineers", schemas/.
declare(strict_types=1);

const LANG = 'php';
// README's status table: the first three mean the subscription is cancelled;
// the others left a dead letter that someone has to look at.
const CANCELLED = ['succeeded', 'already_done', 'duplicate'];
const NEEDS_ATTENTION = ['failed', 'exhausted', 'expired', 'invalid', 'conflict'];
const EXPECTED = ['succeeded' => 1, 'already_done' => 1, 'duplicate' => 1, 'invalid' => 1];

// One job that succeeds, the same intent again (same idempotency key:
// duplicate), a subscription the provider already stopped (the sandbox's
// activeplatform:1/7000, marked by tests/examples/run.sh) and a job with a
// bad parameter (invalid).
function demo_jobs(string $run): array
{
    $service = ['serviceid' => random_int(1, 2 ** 31 - 1), 'type' => 'End of Billing Period'];
    return [
        ['id' => "$run-1", 'idempotency_key' => "$run:service", 'provider' => 'keliweb',
         'action' => 'cancel_service', 'params' => $service, 'meta' => ['customer' => 42]],
        ['id' => "$run-2", 'idempotency_key' => "$run:service", 'provider' => 'keliweb',
         'action' => 'cancel_service', 'params' => $service],
        ['id' => "$run-3", 'idempotency_key' => "$run:sub:7000", 'provider' => 'activeplatform',
         'action' => 'stop_subscription',
         'params' => ['reseller_id' => 1, 'subscription_id' => 7000,
                      'reason' => 'customer request', 'comment' => 'ticket 88']],
        ['id' => "$run-4", 'idempotency_key' => "$run:partner", 'provider' => 'intronis',
         'action' => 'cancel_partner',
         'params' => ['username' => 'acme', 'reason_id' => 'one', 'reason_note' => '']],
    ];
}

// Push one job; cancelqd takes jobs from the other end (FIFO).
function enqueue(Redis $redis, string $prefix, array $job): void
{
    $text = json_encode($job, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    if ($redis->lPush("{{$prefix}}:jobs", $text) === false) {
        throw new RuntimeException('LPUSH failed: ' . $redis->getLastError());
    }
}

// Create the consumer group once, before the first job, so that no outcome
// is missed; MKSTREAM: the stream may not exist yet.  phpredis reports
// error replies by returning false.
function ensure_group(Redis $redis, string $stream, string $group): void
{
    if ($redis->xGroup('CREATE', $stream, $group, '$', true) === false
        && strpos((string)$redis->getLastError(), 'BUSYGROUP') === false) {
        throw new RuntimeException('XGROUP CREATE failed: ' . $redis->getLastError());
    }
    $redis->clearLastError();
}

// What billing does with an outcome.  A real system writes it to its
// database (idempotently: after a crash it may see it again) before XACK.
function record(array $outcome): void
{
    $status = $outcome['status'];
    $job = $outcome['id'];
    if ($status === 'duplicate') {
        echo "  $job: cancelled earlier by job {$outcome['original_id']} ({$outcome['original_status']})\n";
    } elseif (in_array($status, CANCELLED, true)) {
        echo "  $job: cancelled ($status)\n";
    } elseif (in_array($status, NEEDS_ATTENTION, true)) {
        // also in the dead-letter queue: cancelqctl dlq show / requeue
        echo "  $job: needs attention: $status {$outcome['error']}: {$outcome['message']}\n";
    } else {
        echo "  $job: unknown status '$status', kept for a human\n";
    }
}

// Read outcomes until every job id in $want is in $seen (id => status).
// First this consumer's pending entries (read before a crash, never
// acknowledged: ID 0), then new ones ('>').  Each is recorded, then acked.
function consume(Redis $redis, string $stream, string $group, string $consumer,
                 array $want, array &$seen, int $timeout = 30): void
{
    $start = '0';
    $deadline = time() + $timeout;
    while (array_diff($want, array_keys($seen)) && time() < $deadline) {
        $reply = $redis->xReadGroup($group, $consumer, [$stream => $start], 100, 1000);
        $entries = $reply[$stream] ?? [];
        if ($start === '0') {
            if (!$entries) {
                $start = '>';
                continue;
            }
            echo '  re-read ' . count($entries) . " pending outcome(s) first\n";
        }
        if ($entries && getenv('CQ_CRASH_BEFORE_ACK') === '1') {
            echo '  exiting after reading ' . count($entries) . " outcome(s), before XACK\n";
            exit(3);
        }
        foreach ($entries as $entryId => $outcome) {
            // a trimmed entry comes back empty
            if ($outcome && in_array($outcome['id'] ?? null, $want, true)) {
                record($outcome);
                $seen[$outcome['id']] = $outcome['status'];
            }
            $redis->xAck($stream, $group, [(string)$entryId]);
        }
    }
}

$addr = $argv[1] ?? (getenv('CQ_REDIS') ?: '127.0.0.1:6379');
$prefix = $argv[2] ?? (getenv('CQ_PREFIX') ?: 'cancelq');
$group = getenv('CQ_GROUP') ?: 'billing-' . LANG;
$run = getenv('CQ_RUN') ?: LANG . '-' . (int)(microtime(true) * 1000);
[$host, $port] = [substr($addr, 0, strrpos($addr, ':')), (int)substr($addr, strrpos($addr, ':') + 1)];
$redis = new Redis();
$redis->connect($host, $port);
$stream = "{{$prefix}}:results";

ensure_group($redis, $stream, $group);
$jobs = demo_jobs($run);
$enqueued = 0;
if (getenv('CQ_NO_ENQUEUE') !== '1') {
    foreach ($jobs as $job) {
        enqueue($redis, $prefix, $job);
        $enqueued++;
    }
}
$seen = [];
consume($redis, $stream, $group, LANG . '-1', array_column($jobs, 'id'), $seen);

$counts = [];
foreach (array_merge(CANCELLED, NEEDS_ATTENTION) as $s) {
    $n = count(array_keys($seen, $s, true));
    if ($n) {
        $counts[$s] = $n;
    }
}
$parts = [];
foreach ($counts as $s => $n) {
    $parts[] = "$s=$n";
}
echo LANG . ": enqueued $enqueued, outcomes " . count($seen) . ': ' . implode(' ', $parts) . "\n";
exit($counts == EXPECTED ? 0 : 1); // same pairs, any order
