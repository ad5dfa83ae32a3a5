#!/usr/bin/env python3
"""The shape of the workspace, checked in CI.

- No dependency cycle between workspace crates, dev-dependencies included (cargo allows a cycle
  through dev-dependencies; we do not: it hides which crate is below which).
- drlaas-core stays pure: nothing that does I/O (kube, k8s-openapi, alloy, tokio, reqwest) among its
  normal dependencies, however deep.
"""

import json
import subprocess
import sys

FORBIDDEN_IN_CORE = {"kube", "kube-client", "kube-core", "k8s-openapi", "alloy", "tokio", "reqwest"}


def cargo(*args: str) -> str:
    return subprocess.run(["cargo", *args], check=True, capture_output=True, text=True).stdout


def workspace_graph() -> dict[str, set[str]]:
    meta = json.loads(cargo("metadata", "--format-version", "1", "--no-deps"))
    members = {p["name"] for p in meta["packages"]}
    return {
        p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in members and d["name"] != p["name"]}
        for p in meta["packages"]
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def main() -> int:
    graph = workspace_graph()
    failed = False
    if cycle := find_cycle(graph):
        print("error: a dependency cycle between workspace crates: " + " -> ".join(cycle))
        failed = True
    tree = cargo("tree", "-p", "drlaas-core", "-e", "normal", "--prefix", "none", "--format", "{p}")
    names = {line.split()[0] for line in tree.splitlines() if line.strip()}
    if bad := sorted(names & FORBIDDEN_IN_CORE):
        print(f"error: drlaas-core depends on {', '.join(bad)}: the core does no I/O")
        failed = True
    if not failed:
        print(f"{len(graph)} workspace crates, no cycle; drlaas-core has no I/O dependency")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
