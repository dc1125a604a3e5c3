#!/usr/bin/env python3
"""The library and the operator CLI link no Lambda runtime.

The Lambda glue (each function's container and handler, the check's Function URL envelope) is the crate
`dncflow-lambda` (lambda/), used only by the binaries under functions/. The library `dncflow` and `dncctl` must not
reach it, nor the runtime's crates, through any dependency: an operator's CLI has no use for them (they are built,
linked and audited for nothing). Read from Cargo.lock (what `--locked` builds resolve to), in milliseconds, without
cargo: every package `dncflow` and `dncctl` depend on, directly or not, is listed, and none may be a Lambda crate.

Cargo.lock lists a workspace member's dev-dependencies among its dependencies, so the check is stricter than what
the binaries link (a test-only dependency on a Lambda crate fails it too); that is the intent.

Usage: scripts/check-deps.py [--selftest] [LOCKFILE]   (default: Cargo.lock at the repository's root)
"""

import pathlib
import sys
import tomllib

# The crates that exist only for the Lambda runtime; none may be reachable from the library or the CLI.
LAMBDA_ONLY = {
    "dncflow-lambda",
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_lambda_events",
}
# The packages that must stay free of them.
MUST_NOT_LINK = ["dncflow", "dncctl"]
# The crate that must link the runtime: if it no longer reaches it (a renamed crate), this check would pass for
# nothing, so that is an error too.
GLUE = "dncflow-lambda"
RUNTIME = "lambda_runtime"


def graph(lock: dict) -> dict:
    """Each package (name, version) to the packages it depends on, as Cargo.lock records them."""
    packages = lock.get("package", [])
    versions: dict[str, list[str]] = {}
    for p in packages:
        versions.setdefault(p["name"], []).append(p["version"])
    edges = {}
    for p in packages:
        deps = []
        for d in p.get("dependencies", []):
            # "name", or "name version" when several versions are locked, or "name version (source)".
            parts = d.split(" ")
            name = parts[0]
            if len(parts) > 1:
                version = parts[1]
            elif len(versions.get(name, [])) == 1:
                version = versions[name][0]
            else:
                raise SystemExit(f"Cargo.lock: {p['name']} depends on {d!r}, which names no single locked version")
            deps.append((name, version))
        edges[(p["name"], p["version"])] = deps
    return edges


def reachable(edges: dict, root: str) -> dict:
    """Every package reachable from the package named `root`, with the path that first reached it."""
    starts = [k for k in edges if k[0] == root]
    paths = {k: [k[0]] for k in starts}
    queue = list(starts)
    while queue:
        node = queue.pop()
        for dep in edges.get(node, []):
            if dep not in paths:
                paths[dep] = paths[node] + [dep[0]]
                queue.append(dep)
    return paths


def problems(lock: dict) -> list[str]:
    """What is wrong with the lock file's graph, one sentence each; empty when the rule holds."""
    edges = graph(lock)
    found = [
        f"Cargo.lock has no package {root}"
        for root in [*MUST_NOT_LINK, GLUE]
        if not any(name == root for name, _ in edges)
    ]
    for root in MUST_NOT_LINK:
        for (name, _), path in sorted(reachable(edges, root).items()):
            if name in LAMBDA_ONLY:
                found.append(f"{root} links the Lambda crate {name}: {' -> '.join(path)}")
    if any(name == GLUE for name, _ in edges) and not any(
        name == RUNTIME for name, _ in reachable(edges, GLUE)
    ):
        found.append(f"{GLUE} no longer depends on {RUNTIME}: update LAMBDA_ONLY/GLUE in {sys.argv[0]}")
    return found


def selftest() -> None:
    def lock(dncflow_deps):
        return {
            "package": [
                {"name": "dncctl", "version": "0.1.0", "dependencies": ["dncflow", "clap"]},
                {"name": "clap", "version": "4.0.0"},
                {"name": "dncflow", "version": "0.1.0", "dependencies": dncflow_deps},
                {"name": "dncflow-lambda", "version": "0.1.0", "dependencies": ["dncflow", "lambda_runtime"]},
                {"name": "lambda_runtime", "version": "1.5.0", "dependencies": ["hyper 1.0.0"]},
                {"name": "hyper", "version": "0.14.0"},
                {"name": "hyper", "version": "1.0.0"},
            ]
        }

    assert problems(lock(["hyper 0.14.0"])) == [], problems(lock(["hyper 0.14.0"]))
    # The runtime reached through another crate is named, with the path that reaches it, for both packages.
    bad = problems(lock(["hyper 0.14.0", "dncflow-lambda"]))
    assert any("dncctl links the Lambda crate lambda_runtime: dncctl -> dncflow -> dncflow-lambda" in p for p in bad), bad
    assert any(p.startswith("dncflow links the Lambda crate dncflow-lambda") for p in bad), bad
    # A glue crate that no longer reaches the runtime makes the check say so, not pass for nothing.
    vacuous = lock([])
    vacuous["package"][3]["dependencies"] = ["dncflow"]
    assert any("no longer depends on lambda_runtime" in p for p in problems(vacuous)), problems(vacuous)
    print("check-deps selftest: ok")


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--selftest"]:
        selftest()
        return 0
    path = pathlib.Path(args[0]) if args else pathlib.Path(__file__).resolve().parent.parent / "Cargo.lock"
    with open(path, "rb") as f:
        lock = tomllib.load(f)
    found = problems(lock)
    for p in found:
        print(f"check-deps: {p}", file=sys.stderr)
    if found:
        return 1
    print(f"check-deps: {', '.join(MUST_NOT_LINK)} link no Lambda crate ({', '.join(sorted(LAMBDA_ONLY))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
