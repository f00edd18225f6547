// Enqueue cancellations for cancelqd and consume their outcomes (redigo).
//
//	cancel_subscriptions [HOST:PORT [PREFIX]]
//
// Build offline against Debian's golang-github-gomodule-redigo-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build cancel_subscriptions.go
//
// Environment: CQ_REDIS (HOST:PORT, default 127.0.0.1:6379), CQ_PREFIX
// (default cancelq), CQ_GROUP (consumer group, default billing-go), CQ_RUN
// (names this run's job ids and idempotency keys; the same value resumes a
// run), CQ_NO_ENQUEUE=1 (only consume), CQ_CRASH_BEFORE_ACK=1 (exit 3 after
// the first read, before XACK: the next run re-reads it).
//
// Job and outcome formats: README.md "For billing engineers", schemas/.
package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

const lang = "go"

// README's status table: the first three mean the subscription is
// cancelled; the others left a dead letter that someone has to look at.
var (
	cancelled      = []string{"succeeded", "already_done", "duplicate"}
	needsAttention = []string{"failed", "exhausted", "expired", "invalid", "conflict"}
)

const expected = "succeeded=1 already_done=1 duplicate=1 invalid=1"

// Job is what billing pushes (schemas/job.schema.json).
type Job struct {
	ID             string                 `json:"id"`
	IdempotencyKey string                 `json:"idempotency_key,omitempty"`
	Provider       string                 `json:"provider"`
	Action         string                 `json:"action"`
	Params         map[string]interface{} `json:"params"`
	Meta           map[string]interface{} `json:"meta,omitempty"`
}

// entry is one outcome read from the stream: its stream ID and its fields
// (schemas/outcome.schema.json: every value a string).
type entry struct {
	id     string
	fields map[string]string
}

// demoJobs: one job that succeeds, the same intent again (same idempotency
// key: duplicate), a subscription the provider already stopped (the
// sandbox's activeplatform:1/7000, marked by tests/examples/run.sh) and a
// job with a bad parameter (invalid).
func demoJobs(run string) []Job {
	service := map[string]interface{}{"serviceid": 1 + rand.Int63n(1<<31-1), "type": "End of Billing Period"}
	return []Job{
		{ID: run + "-1", IdempotencyKey: run + ":service", Provider: "keliweb", Action: "cancel_service",
			Params: service, Meta: map[string]interface{}{"customer": 42}},
		{ID: run + "-2", IdempotencyKey: run + ":service", Provider: "keliweb", Action: "cancel_service",
			Params: service},
		{ID: run + "-3", IdempotencyKey: run + ":sub:7000", Provider: "activeplatform", Action: "stop_subscription",
			Params: map[string]interface{}{"reseller_id": 1, "subscription_id": 7000,
				"reason": "customer request", "comment": "ticket 88"}},
		{ID: run + "-4", IdempotencyKey: run + ":partner", Provider: "intronis", Action: "cancel_partner",
			Params: map[string]interface{}{"username": "acme", "reason_id": "one", "reason_note": ""}},
	}
}

// enqueue pushes one job; cancelqd takes jobs from the other end (FIFO).
func enqueue(c redis.Conn, prefix string, job Job) error {
	text, err := json.Marshal(job)
	if err != nil {
		return err
	}
	_, err = c.Do("LPUSH", "{"+prefix+"}:jobs", text)
	return err
}

// ensureGroup creates the consumer group once, before the first job, so
// that no outcome is missed; MKSTREAM: the stream may not exist yet.
func ensureGroup(c redis.Conn, stream, group string) error {
	_, err := c.Do("XGROUP", "CREATE", stream, group, "$", "MKSTREAM")
	if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil
	}
	return err
}

// readGroup runs XREADGROUP on one stream and returns its entries (none
// when BLOCK timed out).  Reply: [[stream, [[id, [field, value, ...]], ...]]].
func readGroup(c redis.Conn, stream, group, consumer, start string) ([]entry, error) {
	reply, err := redis.Values(c.Do("XREADGROUP", "GROUP", group, consumer,
		"COUNT", 100, "BLOCK", 1000, "STREAMS", stream, start))
	if err == redis.ErrNil {
		return nil, nil
	}
	if err != nil || len(reply) == 0 {
		return nil, err
	}
	streamReply, err := redis.Values(reply[0], nil)
	if err != nil || len(streamReply) != 2 {
		return nil, fmt.Errorf("unexpected XREADGROUP reply: %v", err)
	}
	raw, err := redis.Values(streamReply[1], nil)
	if err != nil {
		return nil, err
	}
	entries := make([]entry, 0, len(raw))
	for _, r := range raw {
		pair, err := redis.Values(r, nil)
		if err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("unexpected stream entry: %v", err)
		}
		id, err := redis.String(pair[0], nil)
		if err != nil {
			return nil, err
		}
		fields, err := redis.StringMap(pair[1], nil)
		if err != nil && err != redis.ErrNil { // a trimmed entry has no fields
			return nil, err
		}
		entries = append(entries, entry{id: id, fields: fields})
	}
	return entries, nil
}

// record is what billing does with an outcome.  A real system writes it to
// its database (idempotently: after a crash it may see it again) before XACK.
func record(o map[string]string) {
	status, id := o["status"], o["id"]
	switch {
	case status == "duplicate":
		fmt.Printf("  %s: cancelled earlier by job %s (%s)\n", id, o["original_id"], o["original_status"])
	case contains(cancelled, status):
		fmt.Printf("  %s: cancelled (%s)\n", id, status)
	case contains(needsAttention, status):
		// also in the dead-letter queue: cancelqctl dlq show / requeue
		fmt.Printf("  %s: needs attention: %s %s: %s\n", id, status, o["error"], o["message"])
	default:
		fmt.Printf("  %s: unknown status %q, kept for a human\n", id, status)
	}
}

// consume reads outcomes until every job id in want is in seen (id ->
// status).  First this consumer's pending entries (read before a crash,
// never acknowledged: ID 0), then new ones (">").  Each is recorded, then
// acked.
func consume(c redis.Conn, stream, group, consumer string, want map[string]bool,
	seen map[string]string, timeout time.Duration) error {
	start, deadline := "0", time.Now().Add(timeout)
	for len(seen) < len(want) && time.Now().Before(deadline) {
		entries, err := readGroup(c, stream, group, consumer, start)
		if err != nil {
			return err
		}
		if start == "0" {
			if len(entries) == 0 {
				start = ">"
				continue
			}
			fmt.Printf("  re-read %d pending outcome(s) first\n", len(entries))
		}
		if len(entries) > 0 && os.Getenv("CQ_CRASH_BEFORE_ACK") == "1" {
			fmt.Printf("  exiting after reading %d outcome(s), before XACK\n", len(entries))
			os.Exit(3)
		}
		for _, e := range entries {
			if want[e.fields["id"]] {
				record(e.fields)
				seen[e.fields["id"]] = e.fields["status"]
			}
			if _, err := c.Do("XACK", stream, group, e.id); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run() error {
	addr, prefix := getenv("CQ_REDIS", "127.0.0.1:6379"), getenv("CQ_PREFIX", "cancelq")
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if len(os.Args) > 2 {
		prefix = os.Args[2]
	}
	group := getenv("CQ_GROUP", "billing-"+lang)
	runID := getenv("CQ_RUN", fmt.Sprintf("%s-%d", lang, time.Now().UnixMilli()))
	c, err := redis.Dial("tcp", addr, redis.DialReadTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	stream := "{" + prefix + "}:results"

	if err := ensureGroup(c, stream, group); err != nil {
		return err
	}
	jobs := demoJobs(runID)
	want := map[string]bool{}
	enqueued := 0
	for _, job := range jobs {
		want[job.ID] = true
		if os.Getenv("CQ_NO_ENQUEUE") != "1" {
			if err := enqueue(c, prefix, job); err != nil {
				return err
			}
			enqueued++
		}
	}
	seen := map[string]string{}
	if err := consume(c, stream, group, lang+"-1", want, seen, 30*time.Second); err != nil {
		return err
	}

	var counts []string
	for _, s := range append(append([]string{}, cancelled...), needsAttention...) {
		n := 0
		for _, v := range seen {
			if v == s {
				n++
			}
		}
		if n > 0 {
			counts = append(counts, fmt.Sprintf("%s=%d", s, n))
		}
	}
	summary := strings.Join(counts, " ")
	fmt.Printf("%s: enqueued %d, outcomes %d: %s\n", lang, enqueued, len(seen), summary)
	if summary != expected {
		return fmt.Errorf("expected %s", expected)
	}
	return nil
}

func main() {
	rand.Seed(time.Now().UnixNano())
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", lang, err)
		os.Exit(1)
	}
}
