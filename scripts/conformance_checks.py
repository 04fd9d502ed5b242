"""Fails when an excluded MCP conformance scenario fails a check that failing-checks.yaml does not
allow, so a regression inside a partly failing scenario is caught (scripts/conformance.sh).

Usage: conformance_checks.py REVISION FAILING_CHECKS_YAML RESULTS_DIR
The YAML is the restricted shape `revision: {scenario: [check-id, ...]}`, read without a YAML
library so the script needs nothing beyond Python's standard library.
"""

import json
import pathlib
import re
import sys

# Warnings are SHOULDs whose probes race timers; the gateway's own tests cover those behaviours.
FAILED = {"FAILURE"}


def allowed_checks(path, revision):
    allowed, current_revision, scenario = {}, None, None
    for line in pathlib.Path(path).read_text().splitlines():
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        if m := re.fullmatch(r"(\S+):", text):
            current_revision, scenario = m.group(1), None
        elif m := re.fullmatch(r"  (\S+):", text):
            scenario = m.group(1)
            if current_revision == revision:
                allowed[scenario] = set()
        elif m := re.fullmatch(r"    - (\S+)", text):
            if current_revision == revision and scenario:
                allowed[scenario].add(m.group(1))
        else:
            sys.exit(f"{path}: cannot read the line {line!r}")
    return allowed


def failing_checks(results, scenario):
    # Each scenario's results are in `server-<scenario>-<timestamp>/checks.json`.
    runs = [d for d in pathlib.Path(results).glob(f"server-{scenario}-*") if d.is_dir()]
    runs = [d for d in runs if re.fullmatch(rf"server-{re.escape(scenario)}-\d{{4}}-.*", d.name)]
    if not runs:
        return None
    checks = json.loads((max(runs) / "checks.json").read_text())
    return {c["id"] for c in checks if c.get("status") in FAILED}


def main():
    revision, config, results = sys.argv[1:4]
    problems = []
    for scenario, allowed in allowed_checks(config, revision).items():
        failing = failing_checks(results, scenario)
        if failing is None:
            problems.append(f"{scenario}: no results (did the suite run it?)")
            continue
        for check in sorted(failing - allowed):
            problems.append(f"{scenario}: check {check} failed and is not an allowed failure")
        for check in sorted(allowed - failing):
            problems.append(f"{scenario}: check {check} passes now; remove it from {config}")
    for problem in problems:
        print(f"MCP conformance {revision}: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
