#!/usr/bin/env python3
"""Checks for the synqc observability assets (python3 standard library only).

Subcommands:
  lint DASHBOARD.json
      Static checks of the Grafana dashboard: uid, schema version, Grafana
      dashboard-linter's rules (the `datasource`, `job` and `instance`
      variables; job=~"$job" and instance=~"$instance" on every selector;
      $__rate_interval; counters only under rate/irate/increase; a valid
      unit), and for every panel a description and a "no data" text.
  metrics METRICS.txt
      Checks a /metrics scrape against docs/metrics.md: every family exists
      (from start-up), with the documented type, HELP text and label names,
      and no label value that looks unbounded (a run id or a raw path).
  query --prom URL --dashboard FILE --instance HOST:PORT [--require TITLE]...
      Evaluates every dashboard expression (panel targets, annotations,
      variable queries) and every loaded alert expression through the
      Prometheus HTTP API. Each must evaluate without error; panels named
      with --require must also return data (retried up to --timeout s);
      every series selector they use must match at least one series.
  fleet --prom URL --dashboard FILE --instance A --instance B ...
      The same expressions on a Prometheus that sees several appliances
      (e.g. one federating another): each panel with the instance variable
      set to each appliance, to the multi-select of all and to "All"; a
      query that keeps `instance` must return exactly the selected ones.
      Every alert must keep `instance` and watch series of every appliance.

Every subcommand prints one line per check and a closing
`<subcommand>: N passed, M failed` line, and exits 1 if anything failed.
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# The alert names docs/metrics.md requires (the rule file must hold exactly these).
EXPECTED_ALERTS = {
    "SynqcDown", "SynqcStoreDown", "SynqcQueueBacklog", "SynqcOldestRunWaiting",
    "SynqcExpiredLeases", "SynqcNoActiveWorkers", "SynqcRunFailures",
    "SynqcHttpLatencyHigh", "SynqcBudgetKeyChurnSpike", "SynqcBudgetRejections",
    "SynqcExecutorDown",
    "SynqcQueuePaused",
    "SynqcCalibrationDrift",
    "SynqcExecutorDown", "SynqcScheduleStale",
}

# docs/metrics.md "Series": name -> (type, label names). `le` is implied for
# histograms. Label sets are exact: an extra label is a contract change.
EXPECTED_FAMILIES = {
    "synqc_build_info": ("gauge", {"version", "engine_version"}),
    "synqc_store_up": ("gauge", {"backend"}),
    "synqc_redis_connected": ("gauge", {"backend"}),
    "synqc_store_size_bytes": ("gauge", set()),
    "synqc_store_flush_duration_seconds": ("histogram", set()),
    "synqc_queue_jobs": ("gauge", set()),
    "synqc_queue_jobs_queued": ("gauge", set()),
    "synqc_queue_jobs_running": ("gauge", set()),
    "synqc_queue_jobs_succeeded": ("gauge", set()),
    "synqc_queue_jobs_failed": ("gauge", set()),
    "synqc_queue_jobs_cancelled": ("gauge", set()),
    "synqc_queue_depth": ("gauge", {"status"}),
    "synqc_queue_ready_depth": ("gauge", set()),
    "synqc_queue_future_depth": ("gauge", set()),
    "synqc_queue_paused": ("gauge", {"target"}),
    "synqc_queue_oldest_queued_age_seconds": ("gauge", set()),
    "synqc_queue_max_workers": ("gauge", set()),
    "synqc_queue_max_pending": ("gauge", set()),
    "synqc_queue_running_with_active_lease": ("gauge", set()),
    "synqc_queue_running_with_expired_lease": ("gauge", set()),
    "synqc_runs_submitted_total": ("counter", {"preset", "hardware_target", "mode"}),
    "synqc_runs_finished_total": ("counter", {"preset", "hardware_target", "status"}),
    "synqc_run_failures_total": ("counter", {"error_code"}),
    "synqc_runs_retried_total": ("counter", set()),
    "synqc_runs_recovered_total": ("counter", set()),
    "synqc_run_queue_wait_seconds": ("histogram", {"preset"}),
    "synqc_run_duration_seconds": ("histogram", {"preset"}),
    "synqc_run_fidelity": ("gauge", {"preset", "hardware_target"}),
    "synqc_shots_executed_total": ("counter", {"hardware_target"}),
    "synqc_budget_session_keys": ("gauge", {"backend"}),
    "synqc_budget_session_key_churn_total": ("counter", {"backend"}),
    "synqc_budget_rejections_total": ("counter", {"reason"}),
    "synqc_http_requests_total": ("counter", {"method", "route", "status"}),
    "synqc_http_request_duration_seconds": ("histogram", {"method", "route"}),
    "synqc_metrics_collection_errors_total": ("counter", set()),
    "synqc_target_up": ("gauge", {"hardware_target"}),
    # A target is bound to an executor in the e2e config (tests/prometheus_e2e.sh),
    # so its series exist from start-up.
    "synqc_executor_up": ("gauge", {"target"}),
    "synqc_executor_requests_total": ("counter", {"target", "outcome"}),
    "synqc_executor_restarts_total": ("counter", {"target"}),
    # NaN per known target until its first health run (docs/metrics.md).
    "synqc_calibration_t1_seconds": ("gauge", {"target"}),
    "synqc_calibration_t2star_seconds": ("gauge", {"target"}),
    "synqc_calibration_t2echo_seconds": ("gauge", {"target"}),
    "synqc_calibration_epc": ("gauge", {"target"}),
    "synqc_calibration_readout_assignment_fidelity": ("gauge", {"target"}),
    "synqc_calibration_timestamp_seconds": ("gauge", {"target"}),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_cpu_seconds_total": ("counter", set()),
    "process_open_fds": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
}

# Label values docs/metrics.md fixes. Each documented value must be present from
# start-up where marked `all`; otherwise values must stay inside the set.
EXPECTED_LABEL_VALUES = {
    ("synqc_queue_depth", "status"): ({"queued", "running", "succeeded", "failed", "cancelled"}, "all"),
    ("synqc_runs_finished_total", "status"): ({"succeeded", "failed", "cancelled"}, "subset"),
    ("synqc_store_up", "backend"): ({"sled"}, "all"),
    ("synqc_redis_connected", "backend"): ({"sled"}, "all"),
    ("synqc_budget_session_keys", "backend"): ({"sled"}, "all"),
    ("synqc_budget_session_key_churn_total", "backend"): ({"sled"}, "all"),
    ("synqc_executor_requests_total", "outcome"): (
        {"ok", "executor_error", "bad_answer", "timeout", "exited", "cancelled", "unavailable"}, "all"),
    ("synqc_target_up", "hardware_target"): (
        {"sim_local", "aws_braket", "ibm_quantum", "azure_quantum", "ionq_cloud", "rigetti_forest"}, "all"),
}

# The HTTP latency histogram must cover 0.0005 s .. 5 s (docs/metrics.md).
HTTP_BUCKET_BOUNDS = (0.0005, 5.0)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


class Report:
    """Counts checks and prints one line each, so failures are easy to spot."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, what, detail=""):
        self.passed += 1
        print(f"ok     {what}{': ' + detail if detail else ''}")

    def empty(self, what, detail=""):
        # An allowed empty result still proves the expression evaluates.
        self.passed += 1
        print(f"empty  {what}{': ' + detail if detail else ''}")

    def fail(self, what, detail="", tag="FAIL"):
        self.failed += 1
        print(f"{tag:<6} {what}{': ' + detail if detail else ''}")

    def check(self, cond, what, detail=""):
        (self.ok if cond else self.fail)(what, detail)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


# ------------------------------------------------------------------ dashboard

def iter_panels(panels):
    """All panels, including those nested in collapsed rows."""
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


# ---------------------------------------------- Grafana dashboard-linter rules
#
# The rules of Grafana's dashboard-linter that apply to a Prometheus
# dashboard, on the standard library only:
#   template-datasource-rule    a `datasource` variable labelled "Data source"
#   template-job-rule,          `job` and `instance` query variables on
#   template-instance-rule      ${datasource}, labelled "Job"/"Instance",
#                               multi-select, allValue ".+"
#   template-on-time-change-reload  query variables refresh on time change (2)
#   target-job-rule,            every series selector has job=~"$job" and
#   target-instance-rule        instance=~"$instance"
#   target-rate-interval-rule   rate/irate over [$__rate_interval]; increase
#                               over [$__rate_interval] or, for a total over
#                               the dashboard's range, [$__range]
#   target-counter-agg-rule     a counter (a *_total family, or a counter or
#                               histogram series of EXPECTED_FAMILIES) only
#                               directly under rate, irate or increase
#   panel-units-rule            a valid Grafana unit id (overrides too)
#   panel-title-description-rule  checked in cmd_lint with the rest.
# With `job` scoping every selector, "All" = ".+" can only match appliances
# of the selected job(s), and also keeps an appliance that went down (its
# synqc_build_info gone stale) on the `up` panels.

LINT_VARIABLES = {
    # name: (label, label_values query)
    "job": ("Job", "label_values(synqc_build_info, job)"),
    "instance": ("Instance", 'label_values(synqc_build_info{job=~"$job"}, instance)'),
}

# Grafana's unit ids (packages/grafana-data valueFormats categories) a
# dashboard of this kind may use; custom "suffix:" units are not valid.
VALID_UNITS = {
    "none", "string", "short", "percent", "percentunit", "sci", "locale", "hex", "hex0x",
    "bytes", "decbytes", "bits", "decbits", "kbytes", "deckbytes", "mbytes", "decmbytes",
    "gbytes", "decgbytes", "tbytes", "dectbytes",
    "pps", "Bps", "binBps", "bps", "binbps", "KBs", "KiBs", "MBs", "MiBs", "GBs", "GiBs",
    "hertz", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms",
    "dtdhms", "timeticks", "clockms", "clocks",
    "dateTimeAsIso", "dateTimeAsIsoNoDateIfToday", "dateTimeAsUS", "dateTimeAsUSNoDateIfToday",
    "dateTimeAsLocal", "dateTimeAsLocalNoDateIfToday", "dateTimeAsSystem", "dateTimeFromNow",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
    "bool", "bool_yes_no", "bool_on_off", "celsius", "kelvin", "watt", "volt", "amp",
}

RATE_FUNCS = {"rate", "irate", "increase"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2"} | GROUPING
TOKEN_RE = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\[[^\]]*\]|[A-Za-z_:$][\w:$]*'
                      r'|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|=~|!~|!=|==|>=|<=|.', re.S)


def promql_selectors(expr):
    """[(metric, matchers text, range text or None, enclosing call or None)]

    A small PromQL reader, enough for dashboard expressions: it knows
    strings, label matchers, ranges, grouping clauses and function calls.
    """
    toks = [t for t in TOKEN_RE.findall(expr) if t.strip()]
    out, calls = [], []  # calls: the function (or None) each open "(" belongs to
    pending = None  # an aggregation whose "(" comes after its `by (...)`
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t in GROUPING and nxt == "(":
            depth, i = 0, i + 1
            while i < len(toks):  # skip the label list
                depth += toks[i] == "("
                depth -= toks[i] == ")"
                i += 1
                if depth == 0:
                    break
            continue
        if t == "(":
            calls.append(pending)
            pending = None
        elif t == ")":
            if calls:
                calls.pop()
        elif re.fullmatch(r"[A-Za-z_:][\w:]*", t) and t not in KEYWORDS:
            if nxt == "(":
                calls.append(t)
                i += 2
                continue
            if nxt in GROUPING:
                pending = t
                i += 1
                continue
            matchers = ""
            if nxt == "{":
                j = i + 2
                while j < len(toks) and toks[j] != "}":
                    j += 1
                matchers = " ".join(toks[i + 2:j])
                i = j
            rng = None
            if i + 1 < len(toks) and toks[i + 1].startswith("["):
                rng = toks[i + 1][1:-1].strip()
                i += 1
            out.append((t, matchers, rng, calls[-1] if calls else None))
        i += 1
    return out


def is_counter(metric):
    if metric.endswith("_total"):
        return True
    for fam, (typ, _) in EXPECTED_FAMILIES.items():
        if typ == "counter" and metric == fam:
            return True
        if typ == "histogram" and metric in (fam + "_bucket", fam + "_sum", fam + "_count"):
            return True
    return False


def target_problems(expr):
    """Problems of one PromQL expression under the linter's target rules."""
    problems = []
    sels = promql_selectors(expr)
    if not sels:
        problems.append("no series selector")
    for metric, matchers, rng, call in sels:
        compact = matchers.replace(" ", "")
        for var in ("job", "instance"):
            if f'{var}=~"${var}"' not in compact:
                problems.append(f'{metric} does not select {var}=~"${var}"')
        if rng is not None:
            if call in ("rate", "irate") and rng != "$__rate_interval":
                problems.append(f"{call}({metric}[{rng}]) should use $__rate_interval")
            elif call == "increase" and rng not in ("$__rate_interval", "$__range"):
                problems.append(f"increase({metric}[{rng}]) should use $__rate_interval or $__range")
        if is_counter(metric) and (rng is None or call not in RATE_FUNCS):
            problems.append(f"counter {metric} is not directly under rate, irate or increase")
    return problems


def unit_problems(panel):
    fc = panel.get("fieldConfig") or {}
    units = [("unit", (fc.get("defaults") or {}).get("unit"))]
    for o in fc.get("overrides") or []:
        for prop in o.get("properties") or []:
            if prop.get("id") == "unit":
                units.append(("override unit", prop.get("value")))
    if not units[0][1]:
        return ["no unit"]
    return [f"{what} {u!r} is not a Grafana unit id" for what, u in units if u not in VALID_UNITS]


def lint_variables(r, d, variables):
    ds = [v for v in variables.values() if v.get("type") == "datasource"]
    r.check(len(ds) == 1 and ds[0].get("name") == "datasource" and ds[0].get("label") == "Data source"
            and ds[0].get("query") == "prometheus",
            "template-datasource-rule: one variable `datasource`, labelled \"Data source\", query prometheus",
            ", ".join(repr(v.get("name")) for v in ds))
    for name, (label, query) in LINT_VARIABLES.items():
        v = variables.get(name)
        if v is None:
            r.fail(f"template-{name}-rule", f"no `{name}` variable")
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        problems = []
        if v.get("type") != "query":
            problems.append(f"type {v.get('type')!r}, want query")
        if (v.get("datasource") or {}).get("uid") not in ("$datasource", "${datasource}"):
            problems.append("datasource is not ${datasource}")
        if v.get("label") != label:
            problems.append(f"label {v.get('label')!r}, want {label!r}")
        if v.get("multi") is not True:
            problems.append("not multi-select")
        if v.get("allValue") != ".+":
            problems.append(f"allValue {v.get('allValue')!r}, want '.+'")
        if q != query:
            problems.append(f"query {q!r}, want {query!r}")
        r.check(not problems, f"template-{name}-rule", "; ".join(problems) or query)
    r.check(variables.get("instance", {}).get("includeAll") is True, "variable instance: includes All")
    stale = [n for n, v in variables.items() if v.get("type") == "query" and v.get("refresh") != 2]
    r.check(not stale, "template-on-time-change-reload: query variables refresh on time range change",
            ", ".join(stale))


def cmd_lint(args):
    r = Report("dashboard-lint")
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        r.fail("dashboard parses as JSON", str(e))
        return r.finish()
    r.ok("dashboard parses as JSON")
    r.check(d.get("uid") == "synqc-appliance", "uid is synqc-appliance", repr(d.get("uid")))
    r.check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 38,
            "schemaVersion >= 38 (Grafana 10+)", repr(d.get("schemaVersion")))
    r.check(d.get("id") is None, "id is null (importable into any Grafana)", repr(d.get("id")))

    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    lint_variables(r, d, variables)

    ids = set()
    rects = []
    titles = set()
    n_panels = 0
    for p in iter_panels(d.get("panels")):
        title = p.get("title", "?")
        pid = p.get("id")
        if pid in ids or not isinstance(pid, int):
            r.fail(f"panel '{title}'", f"missing or duplicate id {pid!r}")
        ids.add(pid)
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
            r.fail(f"panel '{title}'", f"bad gridPos {g}")
        else:
            for (ot, og) in rects:
                if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"]
                        and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                    r.fail(f"panel '{title}'", f"overlaps panel '{ot}'")
            rects.append((title, g))
        if p.get("type") == "row":
            continue
        n_panels += 1
        problems = []
        if title in titles:
            problems.append("duplicate title")
        titles.add(title)
        if not (p.get("description") or "").strip():
            problems.append("no description")
        defaults = (p.get("fieldConfig") or {}).get("defaults") or {}
        if not (defaults.get("noValue") or "").strip():
            problems.append("no fieldConfig.defaults.noValue (a panel with no data must say why)")
        problems += unit_problems(p)
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append("panel datasource is not ${datasource}")
        targets = p.get("targets") or []
        if not targets:
            problems.append("no targets")
        for t in targets:
            ref = t.get("refId", "?")
            if (t.get("datasource") or {}).get("uid") != "${datasource}":
                problems.append(f"target {ref} datasource is not ${{datasource}}")
            expr = t.get("expr") or ""
            if not expr.strip():
                problems.append(f"target {ref} has no expr")
            else:
                problems += [f"target {ref}: {m}" for m in target_problems(expr)]
        if problems:
            r.fail(f"panel '{title}'", "; ".join(problems))
        else:
            r.ok(f"panel '{title}'", f"{len(targets)} target(s), unit {defaults['unit']}")

    for a in (d.get("annotations") or {}).get("list", []):
        if a.get("expr"):
            probs = target_problems(a["expr"])
            r.check(not probs, f"annotation '{a.get('name')}'", "; ".join(probs) or "job and instance matchers")

    # The panels docs/metrics.md asks for, by the metric each must show.
    wanted = {
        "requests/s": "synqc_http_requests_total",
        "p95 latency by route": "synqc_http_request_duration_seconds_bucket",
        "queue depth by status": "synqc_queue_depth",
        "oldest queued age": "synqc_queue_oldest_queued_age_seconds",
        "running vs max workers": "synqc_queue_max_workers",
        "run outcomes per minute": "synqc_runs_finished_total",
        "failures by code": "synqc_run_failures_total",
        "run duration p95 by preset": "synqc_run_duration_seconds_bucket",
        "fidelity trend by preset and target": "synqc_run_fidelity",
        "budget sessions": "synqc_budget_session_keys",
        "budget rejections": "synqc_budget_rejections_total",
        "store up": "synqc_store_up",
        "store size": "synqc_store_size_bytes",
        "expired leases": "synqc_queue_running_with_expired_lease",
    }
    all_exprs = " ".join(t.get("expr", "") for p in iter_panels(d.get("panels"))
                         for t in p.get("targets") or [])
    for what, metric in wanted.items():
        r.check(re.search(re.escape(metric) + r"\b", all_exprs) is not None,
                f"docs/metrics.md panel '{what}'", f"a target reads {metric}")
    r.check(n_panels > 0, "panel count", str(n_panels))
    return r.finish()


# ------------------------------------------------------------------ /metrics

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_exposition(text):
    """Minimal Prometheus text-format parser: types, helps, samples."""
    types, helps, samples = {}, {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split(None, 3)
            if len(parts) == 4:
                types[parts[2]] = parts[3].strip()
        elif line.startswith("# HELP "):
            parts = line.split(None, 3)
            if len(parts) >= 3:
                helps[parts[2]] = parts[3].strip() if len(parts) == 4 else ""
        elif line and not line.startswith("#"):
            m = SAMPLE_RE.match(line)
            if not m:
                samples.append((None, {}, line))
                continue
            labels = dict(LABEL_RE.findall(m.group(3) or ""))
            samples.append((m.group(1), labels, m.group(4)))
    return types, helps, samples


def cmd_metrics(args):
    r = Report("metrics-contract")
    with open(args.metrics, encoding="utf-8") as f:
        types, helps, samples = parse_exposition(f.read())
    bad = [s[2] for s in samples if s[0] is None]
    r.check(not bad, "every sample line parses", "; ".join(bad[:3]))

    by_family = {}
    for name, labels, _ in samples:
        if name is None:
            continue
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                fam = base
        by_family.setdefault(fam, []).append((name, labels))

    for fam, (typ, labelnames) in sorted(EXPECTED_FAMILIES.items()):
        problems = []
        if types.get(fam) != typ:
            problems.append(f"type {types.get(fam)!r}, want {typ!r}")
        if not helps.get(fam):
            problems.append("no HELP text")
        rows = by_family.get(fam, [])
        if not rows:
            problems.append("no samples (every series must exist from start-up)")
        for name, labels in rows:
            got = set(labels) - ({"le"} if name.endswith("_bucket") else set())
            if got != labelnames:
                problems.append(f"{name} labels {sorted(got)}, want {sorted(labelnames)}")
                break
        if typ == "histogram" and rows:
            names = {n for n, _ in rows}
            for suffix in ("_bucket", "_sum", "_count"):
                if fam + suffix not in names:
                    problems.append(f"no {fam}{suffix}")
        if problems:
            r.fail(f"family {fam}", "; ".join(problems))
        else:
            r.ok(f"family {fam}", f"{typ}, {len(rows)} sample(s)")

    for (fam, label), (values, mode) in EXPECTED_LABEL_VALUES.items():
        got = {labels.get(label) for _, labels in by_family.get(fam, [])}
        if mode == "all":
            r.check(got == values, f"{fam}{{{label}}} values", f"got {sorted(v for v in got if v)}")
        else:
            r.check(got <= values, f"{fam}{{{label}}} values within {sorted(values)}",
                    f"got {sorted(v for v in got if v)}")

    les = set()
    for name, labels in by_family.get("synqc_http_request_duration_seconds", []):
        if name.endswith("_bucket") and labels.get("le") not in (None, "+Inf"):
            try:
                les.add(float(labels["le"]))
            except ValueError:
                pass
    lo, hi = HTTP_BUCKET_BOUNDS
    r.check(bool(les) and min(les) <= lo and max(les) >= hi,
            "synqc_http_request_duration_seconds buckets span 0.0005..5 s",
            f"got {sorted(les)}")

    # Bounded labels: no run/session ids, no raw paths with ids in them.
    offenders = set()
    for name, labels, _ in samples:
        for k, v in (labels or {}).items():
            if UUID_RE.search(v):
                offenders.add(f"{name}{{{k}={v!r}}}")
    r.check(not offenders, "no unbounded label values (ids, raw paths)", ", ".join(sorted(offenders)[:5]))
    # Templates look like /runs/:id; a query string or upper-case hex means
    # a raw request path leaked into the label.
    routes = {labels.get("route") for n, labels, _ in samples if n == "synqc_http_requests_total"}
    r.check(all(re.fullmatch(r"[/a-z0-9_:.\-{}*]*", x or "") for x in routes),
            "route labels are templates", ", ".join(sorted(x for x in routes if x)))
    return r.finish()


# ------------------------------------------------------------------ query

VAR_RE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[([A-Za-z_]\w*)\]\]|\$([A-Za-z_]\w*)")


# metric{matchers} in a PromQL expression (after variable substitution).
SELECTOR_RE = re.compile(r'(?<![\w:])([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}')


def substitute(expr, instance_regex, rate_interval, job_regex="synqc"):
    """Replace Grafana variables with the concrete values Grafana would use."""
    values = {
        "instance": instance_regex,
        "job": job_regex,
        "__rate_interval": rate_interval,
        "__interval": "15s",
        "__interval_ms": "15000",
        "__range": "5m",
        "__range_s": "300",
        "__range_ms": "300000",
    }
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            unknown.append(name)
            return m.group(0)
        return values[name]

    out = VAR_RE.sub(repl, expr)
    return out, unknown


def http_get_json(url, timeout=10):
    # Loopback only: never let an environment proxy see these requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        # Prometheus answers 400/422 with a JSON error body: keep it.
        try:
            return json.loads(e.read().decode("utf-8"))
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}
    except (urllib.error.URLError, OSError, ValueError) as e:
        return {"status": "error", "error": str(e)}


def prom_query(prom, expr):
    return http_get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))


def result_size(resp):
    data = resp.get("data") or {}
    res = data.get("result")
    if data.get("resultType") in ("scalar", "string"):
        return 1 if res else 0
    return len(res or [])


def collect_dashboard_queries(d):
    """(label, expr, title) for every PromQL expression in the dashboard."""
    out = []
    for p in iter_panels(d.get("panels")):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out.append((f"panel '{p.get('title')}' {t.get('refId', '?')}", t["expr"], p.get("title")))
    for a in (d.get("annotations") or {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation '{a.get('name')}'", a["expr"], None))
    return out


def cmd_query(args):
    r = Report("dashboard-queries")
    prom = args.prom.rstrip("/")
    with open(args.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    inst_re = re.escape(args.instance).replace("\\", "\\\\")  # PromQL string escaping
    required = set(args.require)

    queries = []
    for label, expr, title in collect_dashboard_queries(dash):
        concrete, unknown = substitute(expr, inst_re, args.rate_interval, args.job)
        if unknown:
            r.fail(label, f"unknown variable(s) {sorted(set(unknown))} in {expr}")
            continue
        queries.append((label, concrete, title in required))

    titles = {p.get("title") for p in iter_panels(dash.get("panels"))}
    for t in sorted(required - titles):
        r.fail(f"required panel '{t}'", "no such panel in the dashboard")

    # Alert expressions as Prometheus loaded them: this also proves the rule
    # file the e2e gave Prometheus is the one in assets/ and that it loads.
    rules = http_get_json(f"{prom}/api/v1/rules?type=alert")
    alerts = {}
    if rules.get("status") != "success":
        r.fail("GET /api/v1/rules", str(rules.get("error")))
    else:
        for g in rules["data"]["groups"]:
            for rule in g["rules"]:
                if rule.get("type") == "alerting":
                    alerts[rule["name"]] = rule
        r.check(set(alerts) == EXPECTED_ALERTS, "loaded alert rules are exactly those of docs/metrics.md",
                f"missing {sorted(EXPECTED_ALERTS - set(alerts))}, extra {sorted(set(alerts) - EXPECTED_ALERTS)}")
        for name in sorted(alerts):
            rule = alerts[name]
            if rule.get("health") == "err":
                r.fail(f"alert {name} rule health", rule.get("lastError", ""), tag="ERROR")
            queries.append((f"alert {name}", rule["query"], False))

    # Evaluate everything; retry (bounded) only while a required panel is
    # still empty, since counters need two scrapes before rate() has data.
    deadline = time.monotonic() + args.timeout
    results = {}
    pending = list(queries)
    while True:
        retry = []
        for label, expr, must_have_data in pending:
            resp = prom_query(prom, expr)
            results[label] = (expr, must_have_data, resp)
            if resp.get("status") == "success" and must_have_data and result_size(resp) == 0:
                retry.append((label, expr, must_have_data))
        if not retry or time.monotonic() >= deadline:
            break
        pending = retry
        time.sleep(2)

    for label, expr, _ in queries:
        expr, must_have_data, resp = results[label]
        if resp.get("status") != "success":
            r.fail(label, f"{resp.get('errorType', '')} {resp.get('error', '')} <- {expr}", tag="ERROR")
            continue
        n = result_size(resp)
        if n:
            r.ok(label, f"{n} series")
        elif must_have_data:
            r.fail(label, f"no data within {args.timeout:g} s <- {expr}", tag="EMPTY")
        else:
            r.empty(label, "evaluates, no series (allowed)")

    # Every series selector used anywhere must match series of this
    # appliance: a metric renamed in the binary would otherwise leave a
    # panel saying "no data" forever or an alert that can never fire (and
    # evaluate "fine" above). ALERTS only exists while an alert fires.
    selectors = []
    for _, expr, _ in queries:
        for m in SELECTOR_RE.finditer(expr):
            sel = m.group(0)
            if m.group(1) != "ALERTS" and sel not in selectors:
                selectors.append(sel)
    for sel in selectors:
        resp = prom_query(prom, sel)
        n = result_size(resp) if resp.get("status") == "success" else 0
        if n:
            r.ok(f"series {sel}", f"{n} series")
        else:
            r.fail(f"series {sel}", f"no series: {resp.get('error') or 'metric missing or renamed in the binary?'}",
                   tag="EMPTY")

    # Variable queries are Grafana functions, not PromQL: check what they
    # would list, i.e. that this appliance shows up in the instance picker.
    for v in (dash.get("templating") or {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", q or "")
        if not m:
            r.fail(f"variable {v.get('name')}", f"unsupported query {q!r}")
            continue
        params = [("match[]", substitute(m.group(1), inst_re, args.rate_interval, args.job)[0])] if m.group(1) else []
        resp = http_get_json(f"{prom}/api/v1/label/{m.group(2)}/values?" + urllib.parse.urlencode(params))
        vals = resp.get("data") or []
        # The picker must list this appliance (and its job, for `job`).
        want = args.job if m.group(2) == "job" else args.instance
        r.check(resp.get("status") == "success" and want in vals,
                f"variable {v.get('name')}", f"{q} -> {vals}")
    return r.finish()


# ------------------------------------------------------------------ fleet

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}


def keeps_instance(expr):
    """False when an aggregation drops the `instance` label: such a query
    merges the selected appliances and has no per-instance series."""
    toks = [t for t in TOKEN_RE.findall(expr) if t.strip()]

    def clause(k):  # (keyword, labels) of a by/without clause at k, if any
        if k + 1 < len(toks) and toks[k] in ("by", "without") and toks[k + 1] == "(":
            j = k + 2
            labels = set()
            while j < len(toks) and toks[j] != ")":
                labels.add(toks[j])
                j += 1
            return toks[k], labels
        return None

    for i, t in enumerate(toks):
        if t not in AGGREGATIONS or i + 1 >= len(toks):
            continue
        c = clause(i + 1)
        if c is None and toks[i + 1] == "(":  # sum(...) by (...)
            depth, j = 0, i + 1
            while j < len(toks):
                depth += toks[j] == "("
                depth -= toks[j] == ")"
                if depth == 0:
                    break
                j += 1
            c = clause(j + 1)
        if c is None or (c[0] == "by") != ("instance" in c[1]):
            return False
    return True


def series_instances(resp):
    return {(s.get("metric") or {}).get("instance") for s in (resp.get("data") or {}).get("result") or []
            if isinstance(s, dict)}


def unthresholded(expr):
    """The alert expression without its comparisons against numbers: the
    series the alert watches, whatever their current values."""
    return re.sub(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?-?\d+(\.\d+)?(e[-+]?\d+)?(?![\w.])", "", expr)


def cmd_fleet(args):
    """Every panel and alert of the dashboard, per appliance, on a
    Prometheus that sees several (typically one federating another)."""
    r = Report("fleet-queries")
    prom = args.prom.rstrip("/")
    with open(args.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    instances = sorted(set(args.instance))
    if len(instances) < 2:
        r.fail("instances", "give at least two --instance")
        return r.finish()

    def esc(x):
        return re.escape(x).replace("\\", "\\\\")

    # What the instance variable becomes: one appliance, the multi-select of
    # all (Grafana joins the values as (a|b)) and "All" (its allValue).
    choices = [(i, esc(i), {i}) for i in instances]
    choices.append(("multi-select of all", "(" + "|".join(esc(i) for i in instances) + ")", set(instances)))
    inst_var = next((v for v in (dash.get("templating") or {}).get("list", []) if v.get("name") == "instance"), {})
    if inst_var.get("allValue"):
        choices.append((f"All ({inst_var['allValue']})", inst_var["allValue"], set(instances)))

    checks = []  # (label, expr, instance set the result must show, or None)
    wide = []  # expressions that select every appliance
    for label, expr, _ in collect_dashboard_queries(dash):
        # ALERTS only has series while an alert fires: never required here.
        per = keeps_instance(expr) and "ALERTS" not in expr
        for what, regex, want in choices:
            concrete, unknown = substitute(expr, regex, args.rate_interval, esc(args.job))
            if unknown:
                r.fail(label, f"unknown variable(s) {sorted(set(unknown))} in {expr}")
                break
            checks.append((f"{label} [{what}]", concrete, want if per else None))
            if want == set(instances):
                wide.append(concrete)

    rules = http_get_json(f"{prom}/api/v1/rules?type=alert")
    alerts = {}
    if rules.get("status") != "success":
        r.fail("GET /api/v1/rules", str(rules.get("error")))
    else:
        for g in rules["data"]["groups"]:
            for rule in g["rules"]:
                if rule.get("type") == "alerting":
                    alerts[rule["name"]] = rule["query"]
        r.check(set(alerts) == EXPECTED_ALERTS, "loaded alert rules are exactly those of docs/metrics.md",
                f"missing {sorted(EXPECTED_ALERTS - set(alerts))}, extra {sorted(set(alerts) - EXPECTED_ALERTS)}")
    for name, expr in sorted(alerts.items()):
        # An alert must fire per appliance: no aggregation may drop instance.
        r.check(keeps_instance(expr), f"alert {name} keeps the instance label", expr)
        checks.append((f"alert {name}", expr, None))
        wide.append(expr)
        checks.append((f"alert {name} watched series", unthresholded(expr), set(instances)))

    # Bounded retries while a per-instance check still misses an appliance
    # (rates need two federated samples of each).
    deadline = time.monotonic() + args.timeout
    results = {}
    pending = checks
    while True:
        retry = []
        for c in pending:
            label, expr, want = c
            resp = prom_query(prom, expr)
            results[label] = resp
            if resp.get("status") == "success" and want is not None and series_instances(resp) != want:
                retry.append(c)
        if not retry or time.monotonic() >= deadline:
            break
        pending = retry
        time.sleep(2)

    for label, expr, want in checks:
        resp = results[label]
        if resp.get("status") != "success":
            r.fail(label, f"{resp.get('errorType', '')} {resp.get('error', '')} <- {expr}", tag="ERROR")
            continue
        got = series_instances(resp)
        if want is None:
            r.ok(label, f"{result_size(resp)} series (merges instances or alert quiet)")
        elif got == want:
            r.ok(label, f"{result_size(resp)} series, instances {sorted(got)}")
        else:
            r.fail(label, f"instances {sorted(x or '-' for x in got)}, want {sorted(want)} <- {expr}",
                   tag="EMPTY" if not got else "FAIL")

    # Every selector, on its own, has series of every appliance.
    selectors = []
    for expr in wide:
        for m in SELECTOR_RE.finditer(expr):
            if m.group(1) != "ALERTS" and m.group(0) not in selectors:
                selectors.append(m.group(0))
    for sel in selectors:
        got = series_instances(prom_query(prom, sel))
        r.check(set(instances) <= got, f"series {sel}", f"instances {sorted(x or '-' for x in got)}")

    # The instance picker lists every appliance.
    q = inst_var.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", q or "")
    if not m:
        r.fail("variable instance", f"unsupported query {q!r}")
    else:
        params = [("match[]", substitute(m.group(1), ".+", args.rate_interval, esc(args.job))[0])] \
            if m.group(1) else []
        resp = http_get_json(f"{prom}/api/v1/label/{m.group(2)}/values?" + urllib.parse.urlencode(params))
        vals = resp.get("data") or []
        r.check(resp.get("status") == "success" and set(instances) <= set(vals),
                "variable instance lists every appliance", f"{q} -> {vals}")
    return r.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lint")
    p.add_argument("dashboard")
    p = sub.add_parser("metrics")
    p.add_argument("metrics")
    p = sub.add_parser("query")
    p.add_argument("--prom", required=True, help="Prometheus base URL")
    p.add_argument("--dashboard", required=True)
    p.add_argument("--instance", required=True, help="the scraped instance label, host:port")
    p.add_argument("--require", action="append", default=[], help="panel title that must return data")
    p.add_argument("--rate-interval", default="1m", help="value for $__rate_interval")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for required data")
    p.add_argument("--job", default="synqc", help="value for $job")
    p = sub.add_parser("fleet")
    p.add_argument("--prom", required=True, help="Prometheus base URL (the federating one)")
    p.add_argument("--dashboard", required=True)
    p.add_argument("--instance", action="append", required=True,
                   help="an appliance's instance label, host:port (give each one)")
    p.add_argument("--job", default="synqc", help="value for $job")
    p.add_argument("--rate-interval", default="1m", help="value for $__rate_interval")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for per-instance data")
    args = ap.parse_args()
    return {"lint": cmd_lint, "metrics": cmd_metrics, "query": cmd_query, "fleet": cmd_fleet}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
