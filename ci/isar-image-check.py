#!/usr/bin/env python3
"""Judge the suite's JUnit report from a CIP image against what that image
is known to give: the Isar-built CIP security image (ci/isar-build.sh
--image, ci/isar-image-expected) and the booted CIP trixie target the
Isar-built package runs in (ci/isar-build.sh, ci/cip-trixie-expected).

    ci/isar-image-check.py JUNIT EXPECTED

EXPECTED lists the test cases that must fail on that image, one per line: TEST-CASE<TAB>text the failure message must
contain<TAB>why (the image's real defect). Every other case with the
verdict Met must pass; no Met case may be skipped (only NA cases are).
Exit status 0 when the report matches, 1 otherwise (each mismatch on
stderr), 2 on a usage error.
"""
import sys
import xml.etree.ElementTree as ET


def expected_failures(path):
    wanted = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                sys.exit(f"{path}:{number}: want TEST-CASE<TAB>TEXT<TAB>WHY")
            wanted[fields[0]] = fields[1]
    return wanted


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    wanted = expected_failures(sys.argv[2])
    problems = []
    seen = set()
    for case in ET.parse(sys.argv[1]).iter("testcase"):
        name = case.get("name")
        seen.add(name)
        verdict = next((p.get("value") for p in case.iter("property")
                        if p.get("name") == "verdict"), None)
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if case.find("skipped") is not None:
            if verdict == "Met":
                problems.append(f"{name}: a Met case was skipped")
            continue
        if name in wanted:
            if failure is None:
                problems.append(f"{name}: passed, but the image's known defect should make it fail "
                                f"(\"{wanted[name]}\"): update ci/isar-image-expected")
            elif wanted[name] not in (failure.get("message") or ""):
                problems.append(f"{name}: failed for another reason than \"{wanted[name]}\": "
                                f"{(failure.get('message') or '')[:300]}")
        elif failure is not None:
            problems.append(f"{name}: failed: {(failure.get('message') or '')[:300]}")
    for name in sorted(set(wanted) - seen):
        problems.append(f"{name}: expected to fail, but not in the report")
    for p in problems:
        print(f"isar-image-check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"isar-image-check: {len(seen)} cases as expected "
          f"({len(wanted)} failing for the image's known defects: {', '.join(sorted(wanted))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
