#!/usr/bin/env bash
# test_contrib.sh - contrib/: the Grafana dashboard and the Prometheus alert
# rules.
#   - the rules pass promtool check rules, and their unit tests
#     (contrib/prometheus/cancelq.rules.test.yml) pass promtool test rules;
#     every alert has a severity, a summary, a description and an action;
#   - the dashboard is valid JSON of the expected shape, and its queries
#     parse (promtool, as recording rules);
#   - every metric name and label the dashboard and the rules use is on a
#     real /metrics page, scraped from a cancelqd that has run jobs (the
#     names the lead is adding are allowed by an explicit list);
#   - a real Prometheus scraping that cancelqd loads the rules without an
#     evaluation error and answers every dashboard query with data.
source "$(dirname "$0")/lib.sh"

DASH=$ROOT/contrib/grafana/cancelq.json
RULES=$ROOT/contrib/prometheus/cancelq.rules.yml
RULES_TEST=$ROOT/contrib/prometheus/cancelq.rules.test.yml
# Series cancelqd does not export yet (the results consumer groups): allowed
# in the dashboard and the rules; take them out of this list once they are.
FUTURE=""

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 ||
    ! python3 -c 'import yaml' 2>/dev/null; then
    sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
fi
check "promtool, prometheus and python3-yaml are installed" \
    sh -c '{ command -v promtool && command -v prometheus && python3 -c "import yaml"; } >/dev/null'

echo "-- alert rules"
out=$(promtool check rules "$RULES" 2>&1)
check "promtool check rules: SUCCESS" grep -q 'SUCCESS: [0-9]* rules found' <<<"$out"
echo "$out" | sed -n 's/^ *\(SUCCESS.*\)/   \1/p'
# promtool test rules compares annotations too: test against a copy without
# them (same file name, as the test file names it), check them here instead.
python3 - "$RULES" "$T/cancelq.rules.yml" > "$T/annotations.txt" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for g in d["groups"]:
    for r in g["rules"]:
        a = r.pop("annotations", {})
        if "alert" in r:
            miss = [k for k in ("summary", "description", "action") if not a.get(k)]
            sev = r.get("labels", {}).get("severity")
            if miss or sev not in ("warning", "critical"):
                print(f"{r['alert']}: missing {miss}, severity {sev}")
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
PY
check_eq "every alert has severity, summary, description, action" "" "$(cat "$T/annotations.txt")"
cp "$RULES_TEST" "$T/cancelq.rules.test.yml"
out=$(cd "$T" && promtool test rules cancelq.rules.test.yml 2>&1)
check "promtool test rules cancelq.rules.test.yml: SUCCESS" grep -q '^  SUCCESS' <<<"$out"
grep -q '^  SUCCESS' <<<"$out" || echo "$out" | head -30
alerts=$(python3 -c 'import sys, yaml; print(" ".join(sorted(r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r)))' "$RULES")
tested=$(python3 -c 'import sys, yaml; print(" ".join(sorted({a["alertname"] for t in yaml.safe_load(open(sys.argv[1]))["tests"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")})))' "$RULES_TEST")
check_eq "every alert has a unit test in which it fires" "$alerts" "$tested"

echo "-- dashboard"
check "the dashboard is JSON" sh -c 'jq -e . "$1" >/dev/null' _ "$DASH"
python3 - "$DASH" > "$T/dash-check.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
for k in ("uid", "title", "panels", "templating", "schemaVersion"):
    if k not in d:
        bad.append(f"no {k}")
ids = [p["id"] for p in d["panels"]]
if len(ids) != len(set(ids)):
    bad.append("duplicate panel ids")
for p in d["panels"]:
    g = p.get("gridPos", {})
    if g.get("x", 0) + g.get("w", 0) > 24:
        bad.append(f"panel {p['title']}: wider than the grid")
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        bad.append(f"panel {p['title']}: datasource is not ${{datasource}}")
    if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
        bad.append(f"panel {p['title']}: no query")
names = {v["name"] for v in d["templating"]["list"]}
if names != {"datasource", "job", "provider"}:
    bad.append(f"variables {sorted(names)}")
print("\n".join(bad))
PY
check_eq "dashboard: ids, grid, data source variable, a query per panel" "" "$(cat "$T/dash-check.txt")"
# exprs FILE: every query of the dashboard with Grafana's variables filled
# in, one a line.
exprs() {
    jq -r '.panels[] | .targets[]? | .expr' "$DASH" |
        sed -e 's/\$__rate_interval/30s/g' -e 's/\$__interval/30s/g' \
            -e 's/\$job/cancelq/g' -e 's/\$provider/.*/g'
}
exprs > "$T/dash-exprs.txt"
check "the dashboard has queries" test -s "$T/dash-exprs.txt"
{
    echo "groups:"
    echo "  - name: dashboard"
    echo "    rules:"
    n=0
    while IFS= read -r e; do
        n=$((n + 1))
        printf '      - record: dashboard_query_%d\n        expr: %s\n' "$n" "$(jq -Rn --arg e "$e" '$e')"
    done < "$T/dash-exprs.txt"
} > "$T/dash-rules.yml"
out=$(promtool check rules "$T/dash-rules.yml" 2>&1)
check "every dashboard query parses (promtool)" grep -q SUCCESS <<<"$out"
grep -q SUCCESS <<<"$out" || echo "$out" | head -10

echo "-- docs/events.md"
# every cq_log(LEVEL, "event", ...) of src/, with its level when it is a
# constant (job_done and breaker_state choose theirs at run time)
EVENTS_DOC=$ROOT/docs/events.md
# (the level argument may be an expression: the event is the string right
# after its last CQ_LOG_*)
src_events=$(cat "$ROOT"/src/*.c | tr '\n' ' ' | grep -o 'CQ_LOG_[A-Z]*, *"[a-z_]*"' |
    sed 's/.*"\([a-z_]*\)"/\1/' | sort -u | tr '\n' ' ')
doc_events=$(sed -n 's/^### \([a-z_]*\)$/\1/p' "$EVENTS_DOC" | sort -u | tr '\n' ' ')
index_events=$(sed -n 's/^| \[`\([a-z_]*\)`\](#\1) |.*/\1/p' "$EVENTS_DOC" | sort -u | tr '\n' ' ')
check "src/ logs events (found $(echo "$src_events" | wc -w))" test "$(echo "$src_events" | wc -w)" -gt 30
# setdiff "A" "B": what differs, as "missing: ... extra: ..." (empty: none)
setdiff() {
    local m e
    m=$(comm -23 <(tr ' ' '\n' <<<"$1" | sed '/^$/d') <(tr ' ' '\n' <<<"$2" | sed '/^$/d') | tr '\n' ' ')
    e=$(comm -13 <(tr ' ' '\n' <<<"$1" | sed '/^$/d') <(tr ' ' '\n' <<<"$2" | sed '/^$/d') | tr '\n' ' ')
    [ -z "$m$e" ] || echo "missing: $m extra: $e"
}
check_eq "docs/events.md has a section for every event in src/, and no other" "" \
    "$(setdiff "$src_events" "$doc_events")"
check_eq "the index lists the same events" "" "$(setdiff "$src_events" "$index_events")"
# constant levels: the index's level column must agree with the source
lvl_src=$(cat "$ROOT"/src/*.c | tr '\n' ' ' | grep -o 'cq_log(CQ_LOG_[A-Z]*, *"[a-z_]*"' |
    sed 's/cq_log(CQ_LOG_\([A-Z]*\), *"\([a-z_]*\)"/\2 \1/' | tr 'A-Z' 'a-z' |
    sed 's/ err$/ error/' | sort -u)
bad=""
while read -r ev lv; do
    grep -q "^| \[\`$ev\`\](#$ev) | $lv |" "$EVENTS_DOC" || bad="$bad $ev($lv)"
done <<<"$lvl_src"
check_eq "the index gives each event the level the source logs it at" "" "$bad"

echo "-- names against a real /metrics page"
start_redis
start_sandbox --quiet
MPORT=$(free_port)
write_conf "$T/cq.conf" "metrics_listen = 127.0.0.1:$MPORT"
rraw XGROUP CREATE "{cq}:results" billing '$' MKSTREAM > /dev/null # a consumer group to report
start_daemon "$T/cq.conf"
sandbox_post state '{"target":"keliweb:3","state":"missing"}' # one dead letter
enqueue_many 12 m
check "12 jobs end" wait_results 12 20
sleep 1.2 # a heartbeat: the queue gauges are polled
curl -sf "http://127.0.0.1:$MPORT/metrics" > "$T/metrics.txt"
check "/metrics scraped" test -s "$T/metrics.txt"

python3 - "$T/metrics.txt" "$T/dash-exprs.txt" "$RULES" "$ROOT/src" "$FUTURE" > "$T/names.txt" <<'PY'
import glob, re, sys, yaml
page, dash, rules, src, future = sys.argv[1:6]
future = set(future.split())
labels = {}                                 # sample name -> label names on the page
for line in open(page):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
    labels.setdefault(m.group(1), set()).update(re.findall(r'([a-zA-Z_]\w*)="', m.group(3) or ""))
srcnames = set()
for f in glob.glob(src + "/*.c"):
    text = open(f).read()
    srcnames |= set(re.findall(r'"(cancelq_[a-z0-9_]+)"', text))
    for h in re.findall(r'cq_histogram_render\([^"]*"(cancelq_[a-z0-9_]+)"', text):
        srcnames |= {h + s for s in ("_bucket", "_sum", "_count")}
        srcnames.discard(h)  # a histogram's samples carry the suffixes only
queries = [("dashboard", e) for e in open(dash).read().splitlines()]
for g in yaml.safe_load(open(rules))["groups"]:
    for r in g["rules"]:
        queries.append((r.get("alert", r.get("record")), r["expr"]))
used, problems = set(), []
for where, e in queries:
    for name in re.findall(r"\b(cancelq_[a-z0-9_]+)\b", e):
        used.add(name)
        if name not in labels and name not in future:
            problems.append(f"{where}: {name} is not on the /metrics page")
        if name not in srcnames and name not in future:
            problems.append(f"{where}: {name} is not in src/")
    for name, sel in re.findall(r"\b(cancelq_[a-z0-9_]+)\s*\{([^}]*)\}", e):
        for l in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", sel):
            if name in labels and l not in labels[name] | {"job", "instance"}:
                problems.append(f"{where}: {name} has no label {l}")
    known = set().union(*labels.values()) | {"job", "instance", "group"}
    for grp in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", e):
        for l in re.split(r"\s*,\s*", grp.strip()):
            if l and l not in known:
                problems.append(f"{where}: grouping by unknown label {l}")
for p in problems:
    print("PROBLEM", p)
for name in sorted(srcnames - set(labels)):
    print("MISSING", name)
for name in sorted(future & set(labels)):
    print("NOTE", f"{name} is on the page now: take it out of FUTURE")
fams = {re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count")) and
        n.rsplit("_", 1)[0] + "_bucket" in labels else n for n in labels}
unused = sorted(f for f in fams if not any(u == f or u.startswith(f + "_") for u in used))
print("USED", len(used))
print("UNUSED", " ".join(unused))
PY
check_eq "dashboard and rules use only names and labels cancelqd exports" "" \
    "$(sed -n 's/^PROBLEM //p' "$T/names.txt")"
echo "   $(sed -n 's/^USED //p' "$T/names.txt") metric names used; on the page but not used: $(sed -n 's/^UNUSED //p' "$T/names.txt")"
sed -n 's/^NOTE /   note: /p' "$T/names.txt"
check_eq "the page has every name the C sources render" "" \
    "$(sed -n 's/^MISSING //p' "$T/names.txt" | tr '\n' ' ')"

echo "-- a real Prometheus: the rules evaluate, the dashboard's queries answer"
PPORT=$(free_port)
cp "$RULES" "$T/prom-rules.yml"
cat > "$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [prom-rules.yml]
scrape_configs:
  - job_name: cancelq
    static_configs:
      - targets: ["127.0.0.1:$MPORT"]
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$PPORT" --log.level=warn > "$T/prometheus.log" 2>&1 &
PIDS+=($!)
P="http://127.0.0.1:$PPORT"
check "prometheus is ready" wait_for curl -sf "$P/-/ready"
# pq QUERY: the result of an instant query, as JSON
pq() { curl -s --get "$P/api/v1/query" --data-urlencode "query=$1"; }
scraped() { [ "$(pq 'count_over_time(up{job="cancelq"}[1m])' | jq -r '.data.result[0].value[1] // 0')" -ge 4 ]; }
check "four scrapes of cancelqd" wait_for scraped
enqueue_many 6 p 100 # some traffic between the scrapes, for rate()
wait_results 18 20
sleep 2
check_eq "the scrape target is up" 1 "$(pq 'up{job="cancelq"}' | jq -r '.data.result[0].value[1]')"
rules_state=$(curl -s "$P/api/v1/rules" | jq -r '.data.groups[].rules[] | "\(.name) \(.health) \(.lastError // "")"')
check_eq "prometheus loaded every alert" "$(echo "$alerts" | wc -w)" "$(echo "$rules_state" | grep -c .)"
check_eq "every rule evaluates without error" "" "$(echo "$rules_state" | grep -v ' ok $')"
firing=$(curl -s "$P/api/v1/alerts" | jq -r '.data.alerts[] | select(.labels.alertname != null) | "\(.labels.alertname) \(.state)"')
check_eq "no alert on a healthy worker" "" "$firing"
empty="" failed=""
while IFS= read -r e; do
    r=$(pq "$e")
    [ "$(jq -r .status <<<"$r")" = success ] || { failed="$failed\n   $e: $(jq -r .error <<<"$r")"; continue; }
    [ "$(jq '.data.result | length' <<<"$r")" -gt 0 ] || empty="$empty\n   $e"
done < "$T/dash-exprs.txt"
check_eq "prometheus runs every dashboard query" "" "$(printf '%b' "$failed")"
check_eq "every dashboard query has data" "" "$(printf '%b' "$empty")"

finish
