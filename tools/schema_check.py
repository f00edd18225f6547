#!/usr/bin/python3
"""schema_check.py - check jobs, outcomes and dead letters against schemas/.

  schema_check.py DUMP_DIR            what the integration tests dumped
  schema_check.py --job FILE...       job files ('-': stdin), as cancelqd would

DUMP_DIR holds one directory per test script (tests/integration/lib.sh,
schema_dump): redis.json (every *:results stream entry and every *:dead and
*:jobs list entry of the script's redis-server), prefixes (those a cancelqd
ran on) and pushed.bin (the jobs the script pushed, NUL-separated).

Only what cancelqd wrote is judged: outcomes on a prefix a daemon ran on,
and dead letters that belong to one of those outcomes (same status and
worker, failed_at = finished_at, or the same job id); tests also seed
entries by hand, garbage included, and those are counted as skipped.
A job is judged against what the daemon did with it: a job whose outcome
is anything but invalid must pass the schema, and a job the daemon called
invalid must fail it -- unless the reason depends on the deployment's config
(an unknown provider instance), which no schema can know.  So the schema is
checked to be exactly as strict as cancelqd, from both sides.  A job without
an outcome (never taken, or its redis was gone) must pass the schema; one
the schema refuses is skipped then, having nothing to be compared with.

Prints 'schemas: N outcomes, M dead letters, K jobs validated, F failed' and
exits 1 when anything failed.  Uses Debian's python3-jsonschema (draft
2020-12).
"""
import datetime
import json
import os
import re
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "schemas")

JOB_MAX_BYTES = 64 * 1024  # CQ_JOB_MAX_BYTES
JOB_MAX_DEPTH = 8  # CQ_JOB_MAX_DEPTH (the top-level object is level 1)
# String limits cancelqd counts in bytes (the schema counts characters).
BYTE_LIMITS = {
    ("idempotency_key",): 200,
    ("params", "username"): 128,
    ("params", "reason_note"): 2000,
    ("params", "reason"): 2000,  # Keliweb; ActivePlatform: 1000 (below)
    ("params", "comment"): 1000,
}
AP_TEXT_MAX = 1000
# invalid outcomes whose reason depends on the config, not on the job text
CONFIG_ERRORS = {"unknown_provider", "unknown_action"}
DEAD_STATUSES = {"failed", "exhausted", "expired", "invalid", "conflict"}
MAX_SHOWN = 15


def load_validators():
    store, validators = {}, {}
    for name in ("job", "outcome", "dead_letter"):
        with open(os.path.join(SCHEMAS, name + ".schema.json"), encoding="utf-8") as f:
            schema = json.load(f)
        store[schema["$id"]] = schema
        validators[name] = schema
    out = {}
    for name, schema in validators.items():
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        # no FormatChecker: "format" is an annotation here (whether it checks
        # depends on optional modules); the patterns say what cancelqd takes
        out[name] = cls(schema, resolver=resolver)
    return out


def schema_error(validator, instance):
    """None, or the most relevant error as 'path: message'."""
    err = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if err is None:
        return None
    path = ".".join(str(p) for p in err.absolute_path) or "(top)"
    return "%s: %s" % (path, err.message[:200])


# --- jobs ---------------------------------------------------------------------


class JobError(ValueError):
    pass


def _no_dups(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise JobError("%s: duplicate field" % k)
        seen.add(k)
    return dict(pairs)


def _no_constants(name):
    raise JobError("%s is not JSON" % name)


def _depth(v):
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$")


def _calendar_ok(text):
    """A real date, after 1970-01-01T00:00:00Z (the pattern checked the shape)."""
    m = RFC3339.match(text)
    try:
        sec = min(int(m.group(6)), 59)  # 60: a leap second
        t = datetime.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)),
                              int(m.group(4)), int(m.group(5)), sec, tzinfo=datetime.timezone.utc)
    except (ValueError, AttributeError):
        return False
    if m.group(9):
        off = datetime.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        t = t - off if m.group(9) == "+" else t + off
    frac = float(m.group(7)) if m.group(7) else 0.0
    return t.timestamp() + frac >= 0.001


def job_verdict(raw, validator):
    """None when cancelqd would accept the job text (bytes), else why not."""
    if len(raw) > JOB_MAX_BYTES:
        return "job is %d bytes, the limit is %d" % (len(raw), JOB_MAX_BYTES)
    if b"\0" in raw:
        return "NUL byte"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        job = json.loads(text, object_pairs_hook=_no_dups, parse_constant=_no_constants)
    except JobError as e:
        return str(e)
    except ValueError as e:
        return "not JSON (%s)" % e
    if _depth(job) > JOB_MAX_DEPTH:
        return "nesting deeper than %d levels" % JOB_MAX_DEPTH
    err = schema_error(validator, job)
    if err is not None:
        return err
    for path, limit in BYTE_LIMITS.items():
        v = job
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if path[-1] == "reason" and job.get("action") == "stop_subscription":
            limit = AP_TEXT_MAX
        if isinstance(v, str) and len(v.encode("utf-8")) > limit:
            return "%s: more than %d bytes" % (".".join(path), limit)
    for key in ("deadline", "enqueued_at"):
        if key in job and not _calendar_ok(job[key]):
            return "%s: not a valid date after 1970-01-01T00:00:00Z" % key
    return None


def _first(pairs):
    out = {}
    for k, val in pairs:
        out.setdefault(k, val)  # cJSON's lookup finds the first
    return out


def job_id(raw):
    """The id cancelqd would put in the job's outcome: '' when it could not
    read one (text too large, not UTF-8, not JSON, too deep; id bad)."""
    if len(raw) > JOB_MAX_BYTES or b"\0" in raw:
        return ""
    try:
        job = json.loads(raw.decode("utf-8"), object_pairs_hook=_first,
                         parse_constant=_no_constants)
    except (ValueError, JobError):
        return ""
    if _depth(job) > JOB_MAX_DEPTH:
        return ""
    v = job.get("id") if isinstance(job, dict) else None
    return v if isinstance(v, str) and re.fullmatch(r"[ -~]{1,128}", v) else ""


def unwrap(item):
    """A queue item is a job or cancelqd's envelope around one (envelope.h)."""
    try:
        v = json.loads(item.decode("utf-8", "surrogateescape"))
    except ValueError:
        return item
    if isinstance(v, dict) and "_cq" in v and isinstance(v.get("job"), str):
        return v["job"].encode("utf-8", "surrogateescape")
    return item


# --- one test script's dump ---------------------------------------------------


class Tally:
    def __init__(self):
        self.outcomes = self.dead = self.jobs = 0
        self.skipped = 0  # seeded by tests, or nothing to compare with
        self.failures = []

    def fail(self, where, what):
        self.failures.append("%s: %s" % (where, what))


def prefix_of(key, suffix):
    m = re.fullmatch(r"\{(.*)\}:" + suffix, key)
    return m.group(1) if m else None


def check_dump(d, v, t):
    name = os.path.basename(d)
    try:
        with open(os.path.join(d, "redis.json"), "rb") as f:
            data = json.loads(f.read().decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        data = {"streams": {}, "lists": {}}  # the script's redis was gone
    prefixes = set()
    if os.path.exists(os.path.join(d, "prefixes")):
        with open(os.path.join(d, "prefixes"), encoding="utf-8") as f:
            prefixes = {line.strip() for line in f if line.strip()}
    streams = data.get("streams") or {}
    lists = data.get("lists") or {}

    by_id, by_end = {}, set()
    for key, entries in sorted(streams.items()):
        if prefix_of(key, "results") not in prefixes:
            t.skipped += len(entries or [])
            continue
        for e in entries or []:
            o = e.get("fields") or {}
            err = schema_error(v["outcome"], o)
            if err is None and "meta" in o:
                try:
                    if not isinstance(json.loads(o["meta"]), dict):
                        err = "meta: not a JSON object"
                except ValueError:
                    err = "meta: not JSON text"
            t.outcomes += 1
            if err is not None:
                t.fail("%s %s outcome %s (id %r)" % (name, key, e.get("id"), o.get("id")), err)
            by_id.setdefault(o.get("id", ""), []).append((o.get("status"), o.get("error")))
            by_end.add((o.get("status"), o.get("worker"), o.get("finished_at")))
            by_end.add((o.get("status"), o.get("worker"), "id:" + str(o.get("id"))))

    for key, items in sorted(lists.items()):
        if prefix_of(key, "dead") in prefixes:
            for i, item in enumerate(items or []):
                try:
                    dl = json.loads(item)
                except ValueError:
                    dl = None
                if not isinstance(dl, dict):
                    t.skipped += 1
                    continue
                job = dl.get("job")
                jid = job.get("id") if isinstance(job, dict) else None
                end = (dl.get("status"), dl.get("worker"))
                if end + (dl.get("failed_at"),) not in by_end and end + ("id:" + str(jid),) not in by_end:
                    t.skipped += 1  # seeded by the test, not written by cancelqd
                    continue
                t.dead += 1
                err = schema_error(v["dead_letter"], dl)
                if err is not None:
                    t.fail("%s %s[%d]" % (name, key, i), err)

    jobs = []
    if os.path.exists(os.path.join(d, "pushed.bin")):
        with open(os.path.join(d, "pushed.bin"), "rb") as f:
            jobs = [j for j in f.read().split(b"\0") if j]
    for key, items in sorted(lists.items()):
        if prefix_of(key, "jobs") in prefixes:
            jobs += [unwrap(i.encode("utf-8", "surrogateescape")) for i in items or []]
    for raw in jobs:
        why = job_verdict(raw, v["job"])
        ends = by_id.get(job_id(raw), [])
        daemon_ok = not ends or any(s != "invalid" for s, _ in ends)
        daemon_bad = any(s == "invalid" and e not in CONFIG_ERRORS for s, e in ends)
        config_bad = any(s == "invalid" and e in CONFIG_ERRORS for s, e in ends)
        shown = raw[:120].decode("utf-8", "replace")
        if why is not None and not ends:
            t.skipped += 1  # refused, but no outcome to compare with (redis gone?)
            continue
        t.jobs += 1
        if why is None and not (daemon_ok or config_bad):
            t.fail("%s job %s" % (name, shown), "the schema accepts a job cancelqd called invalid (%s)"
                   % ", ".join(e for s, e in ends if s == "invalid"))
        elif why is not None and not (daemon_bad or config_bad):
            t.fail("%s job %s" % (name, shown), "the schema refuses a job cancelqd accepted: " + why)


def main(argv):
    v = load_validators()
    if len(argv) >= 2 and argv[0] == "--job":
        bad = 0
        for path in argv[1:]:
            if path == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
            why = job_verdict(raw.rstrip(b"\n"), v["job"])
            print("%s: %s" % (path, "ok" if why is None else why))
            bad += why is not None
        return 1 if bad else 0
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: schema_check.py DUMP_DIR | --job FILE...\n")
        return 2
    t = Tally()
    for name in sorted(os.listdir(argv[0])):
        d = os.path.join(argv[0], name)
        if os.path.isdir(d):
            check_dump(d, v, t)
    for f in t.failures[:MAX_SHOWN]:
        print("  FAIL " + f)
    if len(t.failures) > MAX_SHOWN:
        print("  ... and %d more" % (len(t.failures) - MAX_SHOWN))
    if t.skipped:
        print("   (skipped: %d entries not written by cancelqd (seeded by tests), or jobs"
              " without an outcome to compare with)" % t.skipped)
    print("schemas: %d outcomes, %d dead letters, %d jobs validated, %d failed"
          % (t.outcomes, t.dead, t.jobs, len(t.failures)))
    return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
