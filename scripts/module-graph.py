#!/usr/bin/env python3
"""Prints berth's module dependency graph and any cycles in it.

Nodes are top-level modules (`deploy`, `state`, ...) and, with --deep,
their submodules (`deploy::proxy`). An edge A -> B means a file of A names
`crate::B` (or `super::B` from inside a sibling). Exit 1 when a cycle exists.
"""
import os, re, sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
deep = "--deep" in sys.argv

def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "main"):
        rel = rel[:-1]
    return rel

MODULES = set()
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if f.endswith(".rs"):
            MODULES.add("::".join(module_of(os.path.join(dirpath, f))))

def node(parts):
    """The module a path names: its first two parts when they are a module
    of their own (with --deep), else its first."""
    parts = [p for p in parts if p]
    if deep and len(parts) >= 2 and "::".join(parts[:2]) in MODULES:
        return "::".join(parts[:2])
    return parts[0] if parts else "main"

edges = {}
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        me = module_of(path)
        text = open(path).read()
        text = text.split("#[cfg(test)]")[0]
        src = node(me)
        for m in re.finditer(r"crate::(\w+)(?:::(\w+))?", text):
            dst = node([m.group(1), m.group(2) or ""])
            if dst != src and dst.split("::")[0] in os.listdir(SRC) + [d[:-3] for d in os.listdir(SRC)]:
                edges.setdefault(src, set()).add(dst)
        # `super::x` and `super::{x, y}` name siblings of this module.
        siblings = re.findall(r"\bsuper::(\w+)", text)
        for group in re.findall(r"\bsuper::\{([^}]*)\}", text):
            siblings += [w.split("::")[0].strip() for w in group.split(",") if w.strip()]
        for name in siblings:
            dst = node(me[:-1] + [name])
            if dst != src:
                edges.setdefault(src, set()).add(dst)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index:
        visit(v)
for src in sorted(edges):
    print(f"{src} -> {', '.join(sorted(edges[src]))}")
if sccs:
    for c in sccs:
        print("CYCLE:", " <-> ".join(c))
    sys.exit(1)
print("no cycles")
