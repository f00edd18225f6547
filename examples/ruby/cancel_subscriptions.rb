#!/usr/bin/ruby
# Enqueue cancellations for cancelqd and consume their outcomes (redis-rb).
#
#   cancel_subscriptions.rb [HOST:PORT [PREFIX]]
#
# Environment: CQ_REDIS (HOST:PORT, default 127.0.0.1:6379), CQ_PREFIX
# (default cancelq), CQ_GROUP (consumer group, default billing-ruby), CQ_RUN
# (names this run's job ids and idempotency keys; the same value resumes a
# run), CQ_NO_ENQUEUE=1 (only consume), CQ_CRASH_BEFORE_ACK=1 (exit 3 after
# the first read, before XACK: the next run re-reads it).
#
# Job and outcome formats: README.md "For billing engineers", schemas/.
require 'json'
require 'redis'

LANG = 'ruby'
# README's status table: the first three mean the subscription is cancelled;
# the others left a dead letter that someone has to look at.
CANCELLED = %w[succeeded already_done duplicate].freeze
NEEDS_ATTENTION = %w[failed exhausted expired invalid conflict].freeze
EXPECTED = { 'succeeded' => 1, 'already_done' => 1, 'duplicate' => 1, 'invalid' => 1 }.freeze

# One job that succeeds, the same intent again (same idempotency key:
# duplicate), a subscription the provider already stopped (the sandbox's
# activeplatform:1/7000, marked by tests/examples/run.sh) and a job with a
# bad parameter (invalid).
def demo_jobs(run)
  service = { serviceid: rand(1...2**31), type: 'End of Billing Period' }
  [
    { id: "#{run}-1", idempotency_key: "#{run}:service", provider: 'keliweb',
      action: 'cancel_service', params: service, meta: { customer: 42 } },
    { id: "#{run}-2", idempotency_key: "#{run}:service", provider: 'keliweb',
      action: 'cancel_service', params: service },
    { id: "#{run}-3", idempotency_key: "#{run}:sub:7000", provider: 'activeplatform',
      action: 'stop_subscription',
      params: { reseller_id: 1, subscription_id: 7000, reason: 'customer request', comment: 'ticket 88' } },
    { id: "#{run}-4", idempotency_key: "#{run}:partner", provider: 'intronis',
      action: 'cancel_partner', params: { username: 'acme', reason_id: 'one', reason_note: '' } }
  ]
end

# Push one job; cancelqd takes jobs from the other end (FIFO).
def enqueue(redis, prefix, job)
  redis.lpush("{#{prefix}}:jobs", JSON.generate(job))
end

# Create the consumer group once, before the first job, so that no outcome
# is missed; MKSTREAM: the stream may not exist yet.
def ensure_group(redis, stream, group)
  redis.xgroup(:create, stream, group, '$', mkstream: true)
rescue Redis::CommandError => e
  raise unless e.message.include?('BUSYGROUP')
end

# What billing does with an outcome.  A real system writes it to its
# database (idempotently: after a crash it may see it again) before XACK.
def record(outcome)
  status = outcome['status']
  job = outcome['id']
  if status == 'duplicate'
    puts "  #{job}: cancelled earlier by job #{outcome['original_id']} (#{outcome['original_status']})"
  elsif CANCELLED.include?(status)
    puts "  #{job}: cancelled (#{status})"
  elsif NEEDS_ATTENTION.include?(status)
    # also in the dead-letter queue: cancelqctl dlq show / requeue
    puts "  #{job}: needs attention: #{status} #{outcome['error']}: #{outcome['message']}"
  else
    puts "  #{job}: unknown status #{status.inspect}, kept for a human"
  end
end

# Read outcomes until every job id in want is in seen (id => status).  First
# this consumer's pending entries (read before a crash, never acknowledged:
# ID 0), then new ones ('>').  Each is recorded, then acked.
def consume(redis, stream, group, consumer, want, seen, timeout: 30)
  start = '0'
  deadline = Time.now + timeout
  until (want - seen.keys).empty? || Time.now > deadline
    reply = redis.xreadgroup(group, consumer, stream, start, count: 100, block: 1000)
    entries = reply.fetch(stream, [])
    if start == '0'
      if entries.empty?
        start = '>'
        next
      end
      puts "  re-read #{entries.size} pending outcome(s) first"
    end
    if !entries.empty? && ENV['CQ_CRASH_BEFORE_ACK'] == '1'
      puts "  exiting after reading #{entries.size} outcome(s), before XACK"
      exit 3
    end
    entries.each do |entry_id, outcome|
      if outcome && want.include?(outcome['id']) # a trimmed entry comes back empty
        record(outcome)
        seen[outcome['id']] = outcome['status']
      end
      redis.xack(stream, group, entry_id)
    end
  end
end

addr = ARGV[0] || ENV.fetch('CQ_REDIS', '127.0.0.1:6379')
prefix = ARGV[1] || ENV.fetch('CQ_PREFIX', 'cancelq')
group = ENV.fetch('CQ_GROUP', "billing-#{LANG}")
run = ENV.fetch('CQ_RUN', "#{LANG}-#{(Time.now.to_f * 1000).to_i}")
host, _, port = addr.rpartition(':')
redis = Redis.new(host: host, port: port.to_i)
stream = "{#{prefix}}:results"

ensure_group(redis, stream, group)
jobs = demo_jobs(run)
enqueued = 0
unless ENV['CQ_NO_ENQUEUE'] == '1'
  jobs.each { |job| enqueue(redis, prefix, job) }
  enqueued = jobs.size
end
seen = {}
consume(redis, stream, group, "#{LANG}-1", jobs.map { |j| j[:id] }, seen)

counts = (CANCELLED + NEEDS_ATTENTION).to_h { |s| [s, seen.values.count(s)] }.reject { |_, n| n.zero? }
puts "#{LANG}: enqueued #{enqueued}, outcomes #{seen.size}: #{counts.map { |s, n| "#{s}=#{n}" }.join(' ')}"
exit(counts == EXPECTED ? 0 : 1)
