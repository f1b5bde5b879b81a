#!/usr/bin/env python3
"""Keep the vendored crates' stanzas of debian/copyright in step with vendor/.

    ci/gen-copyright.py [--check | --write] VENDOR_DIR

VENDOR_DIR is the output of `cargo vendor --versioned-dirs` for Cargo.lock
(ci/build-deb.sh makes one when it makes the source package). Every crate in
it gets a `Files: vendor/NAME-VERSION/*` stanza with the authors and licence
of its Cargo.toml, the SPDX expression translated to DEP-5 (`MIT` is
`Expat`, `A WITH B-exception` is `A with B exception`, a parenthesised
group is set off by a comma). Everything else in debian/copyright (the
project's own stanzas and the stand-alone licence texts) is kept as written.

--check (the default) exits 1 and prints a diff when the file is out of date;
--write rewrites it. Both fail when a licence used by a stanza has no
stand-alone licence paragraph, or one has no user, as lintian would.
"""

import argparse
import difflib
import pathlib
import re
import sys
import tomllib

REPO = pathlib.Path(__file__).resolve().parent.parent
COPYRIGHT = REPO / "debian" / "copyright"

# SPDX identifiers whose DEP-5 short name differs.
DEP5_NAMES = {"MIT": "Expat"}


def dep5_name(spdx_id):
    name = DEP5_NAMES.get(spdx_id, spdx_id)
    name = re.sub(r"-or-later$", "+", name)
    return re.sub(r"-only$", "", name)


def dep5_exception(spdx_id):
    base = spdx_id[: -len("-exception")] if spdx_id.endswith("-exception") else spdx_id
    return f"{base} exception"


def tokens(expr):
    # Old crates write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
    return re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))


def parse_spdx(expr):
    """SPDX licence expression -> nested ("or"|"and", [children]) / str."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def binary(op, sub):
        items = [sub()]
        while peek() is not None and peek().upper() == op.upper():
            take()
            items.append(sub())
        return items[0] if len(items) == 1 else (op, items)

    def factor():
        tok = take() if peek() is not None else None
        if tok is None or tok == ")":
            raise ValueError(f"bad licence expression: {expr!r}")
        if tok == "(":
            inner = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses: {expr!r}")
            return inner
        name = dep5_name(tok)
        if peek() is not None and peek().upper() == "WITH":
            take()
            name = f"{name} with {dep5_exception(take())}"
        return name

    def conjunction():
        return binary("and", factor)

    def disjunction():
        return binary("or", conjunction)

    tree = disjunction()
    if pos != len(toks):
        raise ValueError(f"trailing tokens in licence expression: {expr!r}")
    return tree


def render(tree):
    """DEP-5 spelling: a compound operand is set off by a comma."""
    if isinstance(tree, str):
        return tree
    op, items = tree
    parts = [render(i) for i in items]
    if any(not isinstance(i, str) for i in items):
        return f", {op} ".join(parts)
    return f" {op} ".join(parts)


def names(tree):
    if isinstance(tree, str):
        return [tree]
    return [n for i in tree[1] for n in names(i)]


def crate_stanzas(vendor):
    stanzas, used = [], set()
    for toml in sorted(vendor.glob("*/Cargo.toml")):
        package = tomllib.loads(toml.read_text(encoding="utf-8")).get("package", {})
        name, version = package.get("name"), package.get("version")
        directory = toml.parent.name
        if f"{name}-{version}" != directory:
            sys.exit(f"{toml}: crate {name} {version} does not match its directory "
                     "(vendor with --versioned-dirs)")
        spdx = package.get("license")
        if not spdx:
            sys.exit(f"{toml}: no licence expression (license-file only): "
                     "write its stanza by hand and teach this script about it")
        tree = parse_spdx(spdx)
        used.update(n.lower() for n in names(tree))
        authors = [a.strip() for a in package.get("authors", []) if a.strip()]
        holders = authors or [f"the {name} authors"]
        stanzas.append("\n".join([
            f"Files: vendor/{directory}/*",
            "Copyright: " + "\n ".join(holders),
            f"License: {render(tree)}",
        ]))
    if not stanzas:
        sys.exit(f"{vendor}: no crates (not a cargo vendor directory?)")
    return stanzas, used


def regenerate(text, vendor):
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    keep = [p for p in paragraphs if not p.startswith("Files: vendor/")]
    # Crates go after the project's own Files stanzas, before the licence texts.
    at = max(i for i, p in enumerate(keep) if p.startswith(("Files:", "Format:"))) + 1
    stanzas, used = crate_stanzas(vendor)
    result = keep[:at] + stanzas + keep[at:]

    standalone = {p.split("\n", 1)[0][len("License:"):].strip().lower()
                  for p in keep if p.startswith("License:")}
    for p in keep:
        if p.startswith("Files:"):
            m = re.search(r"^License:\s*(.*)$", p, re.M)
            if m:
                used.update(n.strip() for n in re.split(
                    r"\s+(?:and|or)\s+", re.sub(r"[(),]", " ", m.group(1)).lower()) if n.strip())
    missing, unused = sorted(used - standalone), sorted(standalone - used)
    if missing or unused:
        sys.exit("debian/copyright: "
                 + (f"no licence text for {', '.join(missing)}; " if missing else "")
                 + (f"licence text without user: {', '.join(unused)}" if unused else ""))
    return "\n\n".join(result) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if out of date (default)")
    mode.add_argument("--write", action="store_true", help="rewrite debian/copyright")
    ap.add_argument("vendor", type=pathlib.Path)
    args = ap.parse_args()

    old = COPYRIGHT.read_text(encoding="utf-8")
    new = regenerate(old, args.vendor)
    if args.write:
        if new != old:
            COPYRIGHT.write_text(new, encoding="utf-8")
            print(f"gen-copyright: rewrote {COPYRIGHT.relative_to(REPO)}")
        return 0
    if new != old:
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), "debian/copyright", "generated"))
        print("gen-copyright: debian/copyright is out of date with the vendored crates: "
              "run ci/gen-copyright.py --write VENDOR_DIR", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
