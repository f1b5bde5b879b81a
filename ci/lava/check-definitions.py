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

# Every example job (qemu-amd64, qemu-arm64, ...).
jobs = sorted(HERE.glob("*-job.yaml"))
need(jobs, "no example job (*-job.yaml)")
for path in jobs:
    name = path.name
    job = yaml.safe_load(path.read_text())
    for key in ("device_type", "job_name", "timeouts", "actions", "priority", "visibility"):
        need(key in job, f"{name}: {key}")
    kinds = [next(iter(a)) for a in job.get("actions", [])]
    need(kinds == ["deploy", "boot", "test"], f"{name}: actions are {kinds}, not deploy, boot, test")
    for action in job.get("actions", []):
        for kind, body in action.items():
            need("timeout" in body, f"{name}: {kind} action without timeout")
            if kind == "test":
                for d in body.get("definitions", []):
                    need((REPO / d.get("path", "")).is_file(),
                         f"{name}: test definition {d.get('path')} is not in this repository")
                    unknown = set(d.get("parameters", {})) - set(params)
                    need(not unknown, f"{name}: parameters unknown to the definition: {unknown}")

    # The kernel command line's console must be the machine's own serial
    # port, or the boot action sees no login prompt.
    arch = job.get("context", {}).get("arch")
    console = {"amd64": "console=ttyS0", "arm64": "console=ttyAMA0"}.get(arch)
    need(console, f"{name}: context.arch {arch!r} has no known console")
    kernel_args = [
        body.get("images", {}).get("kernel", {}).get("image_arg", "")
        for action in job.get("actions", [])
        for kind, body in action.items()
        if kind == "deploy"
    ]
    need(console and any(console in a for a in kernel_args),
         f"{name}: the kernel's image_arg does not say {console}")

if problems:
    print("ci/lava: " + "\n  ".join(["invalid LAVA files:"] + problems), file=sys.stderr)
    sys.exit(1)
print(f"ci/lava: test definition and {len(jobs)} jobs are valid")
