#!/usr/bin/env python3
"""Checks for the synqc observability assets (python3 standard library only).

Subcommands:
  lint DASHBOARD.json
      Static checks of the Grafana dashboard: uid, schema version, the
      `datasource` and `instance` variables, and for every panel a
      description, a "no data" text, a unit, and targets that use
      ${datasource} and instance=~"$instance".
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
    ds = variables.get("datasource", {})
    r.check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
            "variable datasource: type datasource, query prometheus")
    inst = variables.get("instance", {})
    q = inst.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    r.check(inst.get("type") == "query" and q == "label_values(synqc_build_info, instance)"
            and inst.get("multi") is True and inst.get("includeAll") is True
            and (inst.get("datasource") or {}).get("uid") == "${datasource}",
            "variable instance: label_values(synqc_build_info, instance), multi, include all, ${datasource}")
    # "All" must expand to the listed appliances: a catch-all allValue (.*)
    # would make up{instance=~"$instance"} show every target of Prometheus.
    r.check(not inst.get("allValue"), "variable instance: no catch-all allValue", repr(inst.get("allValue")))

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
        if not defaults.get("unit"):
            problems.append("no unit")
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
            elif 'instance=~"$instance"' not in expr:
                problems.append(f"target {ref} does not filter instance=~\"$instance\"")
        if problems:
            r.fail(f"panel '{title}'", "; ".join(problems))
        else:
            r.ok(f"panel '{title}'", f"{len(targets)} target(s), unit {defaults['unit']}")

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


def substitute(expr, instance_regex, rate_interval):
    """Replace Grafana variables with the concrete values Grafana would use."""
    values = {
        "instance": instance_regex,
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
        concrete, unknown = substitute(expr, inst_re, args.rate_interval)
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
        params = [("match[]", m.group(1))] if m.group(1) else []
        resp = http_get_json(f"{prom}/api/v1/label/{m.group(2)}/values?" + urllib.parse.urlencode(params))
        vals = resp.get("data") or []
        r.check(resp.get("status") == "success" and args.instance in vals,
                f"variable {v.get('name')}", f"{q} -> {vals}")
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
    args = ap.parse_args()
    return {"lint": cmd_lint, "metrics": cmd_metrics, "query": cmd_query}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
