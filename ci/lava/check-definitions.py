#!/usr/bin/env python3
"""Check the LAVA YAML files of ci/lava: they parse, and they have what LAVA
needs (a Lava-Test Test Definition 1.0 with metadata and run steps whose
scripts exist; a job with deploy, boot and test actions whose test
definition path exists in this repository)."""

import pathlib
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
problems = []


def need(cond, what):
    if not cond:
        problems.append(what)


definition = yaml.safe_load((HERE / "cip-iec-fr1-tests.yaml").read_text())
meta = definition.get("metadata", {})
need(meta.get("format") == "Lava-Test Test Definition 1.0", "definition: metadata.format")
for key in ("name", "description", "maintainer", "os", "scope"):
    need(meta.get(key), f"definition: metadata.{key}")
params = definition.get("params", {})
need(all(isinstance(v, str) for v in params.values()), "definition: params must be strings")
steps = definition.get("run", {}).get("steps", [])
need(steps, "definition: run.steps")
for step in steps:
    script = step.split()[0]
    if script.startswith("./"):
        need((REPO / script).is_file(), f"definition: run step {script} does not exist")

job = yaml.safe_load((HERE / "qemu-amd64-security-job.yaml").read_text())
for key in ("device_type", "job_name", "timeouts", "actions", "priority", "visibility"):
    need(key in job, f"job: {key}")
kinds = [next(iter(a)) for a in job.get("actions", [])]
need(kinds == ["deploy", "boot", "test"], f"job: actions are {kinds}, not deploy, boot, test")
for action in job.get("actions", []):
    for kind, body in action.items():
        need("timeout" in body, f"job: {kind} action without timeout")
        if kind == "test":
            for d in body.get("definitions", []):
                need((REPO / d.get("path", "")).is_file(),
                     f"job: test definition {d.get('path')} is not in this repository")
                unknown = set(d.get("parameters", {})) - set(params)
                need(not unknown, f"job: parameters unknown to the definition: {unknown}")

if problems:
    print("ci/lava: " + "\n  ".join(["invalid LAVA files:"] + problems), file=sys.stderr)
    sys.exit(1)
print("ci/lava: test definition and job are valid")
