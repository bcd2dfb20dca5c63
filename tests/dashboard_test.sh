#!/usr/bin/env bash
# Checks the Grafana dashboard manifests/dashboards/rollgate-dashboard.json (shipped by the chart as
# a ConfigMap from charts/rollgate/files/rollgate-dashboard.json, a copy made by
# hack/render-manifests.sh):
#
#  1. It is valid JSON (python3 -m json.tool) and a Grafana dashboard model: schemaVersion >= 36,
#     a uid, a `datasource` variable of type datasource (prometheus), `namespace` and `rollout`
#     variables, every panel and query on ${datasource}, unique panel ids, panels within 24 columns.
#  2. Every PromQL expression (panel queries and label_values() variable queries) references only
#     metric names that controller/metrics/metrics.cc registers (histograms: <name>_bucket, _sum,
#     _count), plus `up`, the series Prometheus itself writes for every scrape target (the
#     ControllerDown alert uses it too). Functions must be PromQL functions; label names (matchers,
#     by/without/on, legend {{label}}) must be the bounded label set of metrics.h plus job/instance/le.
#  3. Every metric family of metrics.cc is shown by at least one panel (a new metric needs a panel).
#  4. With promtool (Debian's `prometheus` package): every expression, with Grafana's variables
#     substituted, parses (`promtool check rules` on a generated rules file). Skipped without it.
#  5. When the chart's copy exists it is byte-identical to the source.
#
# Exits non-zero naming each problem. Environment: PYTHON (python3), PROMTOOL (promtool on PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
dashboard=$repo/manifests/dashboards/rollgate-dashboard.json
chart_copy=$repo/charts/rollgate/files/rollgate-dashboard.json
metrics_cc=$repo/controller/metrics/metrics.cc
PYTHON=${PYTHON:-python3}
promtool=${PROMTOOL:-$(command -v promtool || true)}

command -v "$PYTHON" >/dev/null || { echo "dashboard_test: no $PYTHON" >&2; exit 1; }
[[ -f "$dashboard" ]] || { echo "dashboard_test: FAIL: $dashboard is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-dashboard-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! "$PYTHON" -m json.tool "$dashboard" >/dev/null; then
  echo "dashboard_test: FAIL: $dashboard is not valid JSON" >&2
  exit 1
fi
echo "dashboard_test: OK: valid JSON"

# Writes the substituted expressions as a rules file for promtool to $work/exprs.rules.yaml.
"$PYTHON" - "$dashboard" "$metrics_cc" "$work/exprs.rules.yaml" <<'EOF'
import json
import re
import sys

dashboard_path, metrics_cc, rules_out = sys.argv[1:4]
problems = []

def problem(msg):
    problems.append(msg)

with open(metrics_cc, encoding="utf-8") as f:
    src = f.read()
families = {}  # name -> Gauge/Counter/Histogram
for kind, name in re.findall(
        r'Build(Gauge|Counter|Histogram)\(\)\s*\.Name\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"\s*\)', src):
    families[name] = kind
# The per-rollout families are rendered by Metrics itself, from a table of
# {"name", "help" "help"..., MetricType::Kind, render} entries.
for name, kind in re.findall(
        r'\{\s*"(rollgate_[a-zA-Z0-9_:]*)",\s*(?:"(?:[^"\\]|\\.)*"\s*)+,\s*'
        r'MetricType::(Gauge|Counter|Histogram)', src):
    families[name] = kind
if len(families) < 5:
    print(f"dashboard_test: FAIL: found only {len(families)} metric families in {metrics_cc}; "
          "has the registration code changed shape?", file=sys.stderr)
    sys.exit(1)
known = {}
for name, kind in families.items():
    known[name] = name
    if kind == "Histogram":
        for suffix in ("_bucket", "_sum", "_count"):
            known[name + suffix] = name
# Series that Prometheus itself writes for every scrape target.
PROMETHEUS_SERIES = {"up"}
LABELS = {"namespace", "rollout", "environment", "cluster", "phase", "reason", "result", "verb",
          "code", "resource", "version", "le", "job", "instance"}
FUNCTIONS = {
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp",
    "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
GROUPING = r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"

def check_expr(where, expr, used):
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    for body in re.findall(r"\{([^}]*)\}", s):
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body):
            if label not in LABELS:
                problem(f"{where}: label {label!r} in a matcher is not one of Rollgate's labels")
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    for _, body in re.findall(GROUPING, s):
        for label in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", body):
            if label not in LABELS:
                problem(f"{where}: label {label!r} in by/on/without is not one of Rollgate's labels")
    s = re.sub(GROUPING, " ", s)
    if "$" in s:
        problem(f"{where}: a Grafana variable outside a matcher or range: {expr}")
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        tok = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            if tok not in FUNCTIONS:
                problem(f"{where}: {tok}() is not a PromQL function")
            continue
        if tok in KEYWORDS:
            continue
        if tok in known:
            used.add(known[tok])
        elif tok not in PROMETHEUS_SERIES:
            problem(f"{where}: metric {tok!r} does not exist in controller/metrics/metrics.cc")
    if not re.search(r"rollgate_|\bup\b", expr):
        problem(f"{where}: references no metric at all: {expr}")

with open(dashboard_path, encoding="utf-8") as f:
    d = json.load(f)

if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    problem(f"schemaVersion {d.get('schemaVersion')!r}: want an integer >= 36")
if not d.get("uid") or not d.get("title"):
    problem("the dashboard needs a uid and a title")
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    problem("no `datasource` variable of type datasource with query prometheus")
for name in ("namespace", "rollout"):
    if name not in variables:
        problem(f"no `{name}` variable")

used = set()
exprs = []  # (where, expr)
for name, v in variables.items():
    if v.get("type") != "query":
        continue
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
    if not m:
        problem(f"variable {name}: want label_values(<selector>, <label>), got {q!r}")
        continue
    if m.group(2) not in LABELS:
        problem(f"variable {name}: label {m.group(2)!r} is not one of Rollgate's labels")
    if (v.get("datasource") or {}).get("uid") != "${datasource}":
        problem(f"variable {name}: datasource is not ${{datasource}}")
    exprs.append((f"variable {name}", m.group(1)))

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

ids = set()
count = 0
for p in walk(d.get("panels", [])):
    title = p.get("title", "?")
    pid = p.get("id")
    if pid in ids:
        problem(f"panel {title!r}: duplicate id {pid}")
    ids.add(pid)
    g = p.get("gridPos") or {}
    if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
        problem(f"panel {title!r}: bad gridPos {g}")
    if p.get("type") == "row":
        continue
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        problem(f"panel {title!r}: datasource is not ${{datasource}}")
    targets = p.get("targets") or []
    if not targets:
        problem(f"panel {title!r}: no queries")
    for t in targets:
        where = f"panel {title!r} query {t.get('refId')}"
        if (t.get("datasource") or {}).get("uid") != "${datasource}":
            problem(f"{where}: datasource is not ${{datasource}}")
        expr = t.get("expr", "")
        if not expr.strip():
            problem(f"{where}: empty expr")
            continue
        for label in re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", t.get("legendFormat", "")):
            if label not in LABELS:
                problem(f"{where}: legend label {label!r} is not one of Rollgate's labels")
        exprs.append((where, expr))
        count += 1

for where, expr in exprs:
    check_expr(where, expr, used)
for name in sorted(set(families) - used):
    problem(f"metric family {name} (metrics.cc) is not shown by any panel")

# Grafana's variables, substituted for promtool.
SUBST = [("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h"),
         ("$job", "rollgate"), ("$namespace", ".*"), ("$rollout", ".*"), ("$environment", ".*")]
with open(rules_out, "w", encoding="utf-8") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(exprs):
        for a, b in SUBST:
            expr = expr.replace(a, b)
        out.write(f"      # {where}\n")
        out.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(expr)}\n")

if problems:
    for p in problems:
        print(f"dashboard_test: FAIL: {p}", file=sys.stderr)
    sys.exit(1)
print(f"dashboard_test: OK: {count} panel queries and {len(exprs) - count} variable queries use "
      f"only the {len(families)} metric families of metrics.cc (+ up), all of which are shown")
EOF

if [[ -n "$promtool" ]]; then
  if ! out=$("$promtool" check rules "$work/exprs.rules.yaml" 2>&1); then
    echo "dashboard_test: FAIL: promtool rejects a dashboard expression:" >&2
    printf '%s\n' "$out" >&2
    exit 1
  fi
  echo "dashboard_test: OK: promtool parses every expression ($(grep -c 'record:' "$work/exprs.rules.yaml"))"
else
  echo "dashboard_test: SKIP: no promtool (apt-get install prometheus): PromQL syntax not checked"
fi

if [[ -f "$chart_copy" ]]; then
  if ! cmp -s "$dashboard" "$chart_copy"; then
    echo "dashboard_test: FAIL: charts/rollgate/files/rollgate-dashboard.json differs from" \
      "manifests/dashboards/rollgate-dashboard.json: run hack/render-manifests.sh" >&2
    exit 1
  fi
  echo "dashboard_test: OK: the chart's copy is up to date"
fi
echo "dashboard_test: OK"
