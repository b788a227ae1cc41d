#!/usr/bin/env python3
"""Fails if the modules of the Rust crate in rust_core/src import each other in a cycle.

    python3 rust_core/tools/check_module_cycles.py [-v] [--src DIR]

Every `.rs` file under the source directory is a module (`lib.rs` the crate root, `foo.rs`
and `foo/mod.rs` module `foo`, `foo/bar.rs` module `foo::bar`). Module A depends on module B
when A's code names a path into B: a `use crate::b::…` (groups expanded), `super::…`,
`self::…`, or a child module's name (`use child::…` in a `mod.rs`), or an inline
`crate::b::…` / `super::…` path. Modules are compared at the top-level-and-submodule
granularity (`otlp::decode`, `rules::compile`); a path is charged to the deepest known
module it names, so `crate::otlp::Encoding` (a re-export) is a dependency on `otlp` itself,
and a parent's re-exports of its children are dependencies of the parent on the child only.
`mod child;` declarations are not dependencies. Test code is left out: items under
`#[cfg(test)]` (inline `mod tests { … }` blocks) and files of modules declared under it
(`#[cfg(test)] mod tests;`, or a file under `#![cfg(test)]`). Comments and string literals
are ignored.

Exits 1 printing each cycle (with the line each of its dependencies comes from), 0 with a
one-line summary otherwise; `-v` also prints every dependency and an order of the modules
in which each uses only modules before it. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src"
# Modules are compared at this depth: `otlp::decode`, not `otlp::decode::inner`.
DEPTH = 2

Module = tuple[str, ...]


@dataclass
class Edge:
    source: Module
    target: Module
    file: Path
    line: int


@dataclass
class ModuleFile:
    path: Path
    module: Module
    code: str = ""  # comments and literals blanked, test items blanked
    test_children: set[str] = field(default_factory=set)


def module_of(src: Path, path: Path) -> Module:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def blank(text: str, start: int, end: int) -> str:
    """`text` with [start, end) replaced by spaces, newlines kept (line numbers stay right)."""
    middle = "".join(c if c == "\n" else " " for c in text[start:end])
    return text[:start] + middle + text[end:]


IDENT_CHAR = re.compile(r"\w")


def strip_comments_and_literals(s: str) -> str:
    """Comments, string, byte-string, raw-string and char literals as spaces."""
    out: list[str] = []
    i, n = 0, len(s)

    def keep_newlines(chunk: str) -> str:
        return "".join(c if c == "\n" else " " for c in chunk)

    while i < n:
        c = s[i]
        prev_ident = i > 0 and IDENT_CHAR.match(s[i - 1]) is not None
        if s.startswith("//", i):
            j = s.find("\n", i)
            j = n if j < 0 else j
            out.append(keep_newlines(s[i:j]))
            i = j
        elif s.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if s.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif s.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(keep_newlines(s[i:j]))
            i = j
        elif not prev_ident and (m := re.compile(r'b?r(#*)"').match(s, i)):
            end = s.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(keep_newlines(s[i:j]))
            i = j
        elif c == '"' or (c == "b" and not prev_ident and s.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            j += 1
            out.append(keep_newlines(s[i:j]))
            i = j
        elif c == "'" or (c == "b" and not prev_ident and s.startswith("b'", i)):
            k = i + (1 if c == "b" else 0)  # the quote
            if k + 1 < n and s[k + 1] == "\\":
                j = k + 2
                while j < n and s[j] != "'":
                    j += 1
                j += 1
            elif k + 2 < n and s[k + 2] == "'":
                j = k + 3
            else:  # a lifetime or label: `'a`
                out.append(s[i : k + 1])
                i = k + 1
                continue
            out.append(keep_newlines(s[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
INNER_CFG_TEST = re.compile(r"#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
MOD_DECL = re.compile(r"^(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*;$")


def skip_attribute(s: str, i: int) -> int:
    """Index after the `#[…]` starting at `i`."""
    depth, j = 0, s.index("[", i)
    while j < len(s):
        if s[j] == "[":
            depth += 1
        elif s[j] == "]":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return len(s)


def remove_test_items(s: str) -> tuple[str, set[str]]:
    """Blanks every item under `#[cfg(test)]`; returns the code and the test modules declared
    with `mod name;`."""
    test_mods: set[str] = set()
    while m := CFG_TEST.search(s):
        i = m.end()
        while True:  # further attributes of the same item
            while i < len(s) and s[i].isspace():
                i += 1
            if s.startswith("#", i) and re.match(r"#\s*!?\s*\[", s[i:]):
                i = skip_attribute(s, i)
            else:
                break
        item_start, depth, j = i, 0, i
        while j < len(s):
            ch = s[j]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and ch == ";":
                j += 1
                break
            elif depth == 0 and ch == "{":
                braces = 0
                while j < len(s):
                    if s[j] == "{":
                        braces += 1
                    elif s[j] == "}":
                        braces -= 1
                        if braces == 0:
                            break
                    j += 1
                j += 1
                break
            j += 1
        decl = MOD_DECL.match(" ".join(s[item_start:j].split()))
        if decl:
            test_mods.add(decl.group(1))
        s = blank(s, m.start(), j)
    return s, test_mods


USE = re.compile(r"(?<![\w#])use\s")


def split_top(s: str) -> list[str]:
    """`s` split at commas outside braces."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def expand_use_tree(tree: str, prefix: list[str]) -> list[list[str]]:
    """The paths a use tree imports, e.g. `a::{b, c::{self, D}}` -> a::b, a::c, a::c::D."""
    tree = "".join(tree.split())
    if not tree:
        return [prefix] if prefix else []
    brace = tree.find("{")
    if brace >= 0 and tree.endswith("}"):
        head = [p for p in tree[:brace].split("::") if p]
        paths = []
        for part in split_top(tree[brace + 1 : -1]):
            paths += expand_use_tree(part, prefix + head)
        return paths
    # Aliases (`as x`) were removed by `strip_aliases`; a glob names its parent.
    segments = [p for p in tree.split("::") if p and p != "*"]
    if segments and segments[-1] == "self":
        segments = segments[:-1]
    return [prefix + segments]


def strip_aliases(tree: str) -> str:
    """`a::B as C` -> `a::B` (before whitespace is dropped)."""
    return re.sub(r"\s+as\s+\w+", "", tree)


INLINE_PATH = re.compile(r"(?<![\w:$])\$?((?:crate|super|self)(?:\s*::\s*\w+)+)")
CHILD_PATH = re.compile(r"(?<![\w:$.])(\w+)((?:\s*::\s*\w+)+)")


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def resolve(
    segments: list[str], here: Module, modules: set[Module]
) -> Module | None:
    """The module a path from module `here` names, at DEPTH; None for other crates and
    names that are not modules."""
    if not segments:
        return None
    first, rest = segments[0], segments[1:]
    if first == "crate":
        base: Module = ()
    elif first in ("self", "super"):
        base = here
        while segments and segments[0] in ("self", "super"):
            if segments[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            segments = segments[1:]
        rest = segments
    elif here + (first,) in modules:
        base, rest = here, segments
    else:
        return None
    full = base + tuple(rest)
    for k in range(len(full), 0, -1):
        if full[:k] in modules:
            return full[:k][:DEPTH]
    return None


def collect(src: Path) -> tuple[list[ModuleFile], set[Module]]:
    files = [
        ModuleFile(p, module_of(src, p)) for p in sorted(src.rglob("*.rs"))
    ]
    tests: set[Module] = set()
    for f in files:
        code = strip_comments_and_literals(f.path.read_text(encoding="utf-8"))
        if INNER_CFG_TEST.search(code):  # `#![cfg(test)]`: the whole file is test code
            tests.add(f.module)
        f.code, f.test_children = remove_test_items(code)
        tests |= {f.module + (c,) for c in f.test_children}

    def is_test(m: Module) -> bool:
        return any(m[:k] in tests for k in range(1, len(m) + 1))

    files = [f for f in files if not is_test(f.module)]
    return files, {f.module for f in files}


def dependencies(files: list[ModuleFile], modules: set[Module]) -> list[Edge]:
    edges: list[Edge] = []
    for f in files:
        if not f.module:
            continue  # the crate root only declares modules
        here = f.module
        source = here[:DEPTH]
        code = f.code
        found: list[tuple[int, list[str]]] = []
        # `use` declarations, then blanked so their paths are not read twice.
        while m := USE.search(code):
            end = code.find(";", m.end())
            end = len(code) if end < 0 else end
            tree = strip_aliases(code[m.end() : end])
            if not tree.strip().startswith("::"):
                for path in expand_use_tree(tree, []):
                    found.append((m.start(), path))
            code = blank(code, m.start(), end + 1)
        for m in INLINE_PATH.finditer(code):
            found.append((m.start(), re.split(r"\s*::\s*", m.group(1))))
        for m in CHILD_PATH.finditer(code):
            if here + (m.group(1),) in modules:
                found.append(
                    (m.start(), [m.group(1)] + re.split(r"\s*::\s*", m.group(2))[1:])
                )
        for offset, path in found:
            target = resolve(path, here, modules)
            if target is None or target == () or target == source:
                continue
            edges.append(Edge(source, target, f.path, line_of(f.code, offset)))
    return edges


def find_cycles(
    nodes: set[Module], graph: dict[Module, set[Module]]
) -> list[tuple[list[Module], list[Module]]]:
    """(one cycle, all its modules) for each strongly connected component of more than one
    module."""
    index: dict[Module, int] = {}
    low: dict[Module, int] = {}
    stack: list[Module] = []
    on_stack: set[Module] = set()
    components: list[list[Module]] = []
    counter = 0

    def connect(v: Module) -> None:  # Tarjan, recursive: the graph is small
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(nodes):
        if v not in index:
            connect(v)

    cycles = []
    for comp in components:
        members = set(comp)
        start = min(comp)
        # Shortest path back to `start` inside the component (breadth first).
        prev: dict[Module, Module] = {}
        frontier, seen, found = [start], {start}, None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w not in members:
                        continue
                    if w == start:
                        found = v
                        break
                    if w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [found]
        while path[-1] != start:
            path.append(prev[path[-1]])
        path.reverse()
        cycles.append((path + [start], sorted(comp)))
    return cycles


def topological_order(nodes: set[Module], graph: dict[Module, set[Module]]) -> list[Module]:
    """Modules ordered so that each depends only on modules before it."""
    order: list[Module] = []
    done: set[Module] = set()

    def visit(v: Module) -> None:
        if v in done:
            return
        done.add(v)
        for w in sorted(graph.get(v, ())):
            visit(w)
        order.append(v)

    for v in sorted(nodes):
        visit(v)
    return order


def name(m: Module) -> str:
    return "::".join(m) or "crate"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="crate source directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the graph too")
    args = parser.parse_args(argv)
    src = args.src.resolve()
    if not (src / "lib.rs").exists() and not (src / "main.rs").exists():
        print(f"check_module_cycles: no lib.rs or main.rs in {src}", file=sys.stderr)
        return 2
    files, modules = collect(src)
    edges = dependencies(files, modules)
    nodes = {m[:DEPTH] for m in modules if m}
    graph: dict[Module, set[Module]] = {}
    where: dict[tuple[Module, Module], Edge] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        where.setdefault((e.source, e.target), e)
    pairs = sorted(where)
    if args.verbose:
        for a, b in pairs:
            e = where[(a, b)]
            print(f"{name(a)} -> {name(b)}  ({e.file.relative_to(src.parent)}:{e.line})")
    cycles = find_cycles(nodes, graph)
    if cycles:
        for cycle, members in cycles:
            print("module cycle: " + " -> ".join(name(m) for m in cycle))
            for a, b in zip(cycle, cycle[1:]):
                e = where[(a, b)]
                print(f"  {name(a)} -> {name(b)}: {e.file.relative_to(src.parent)}:{e.line}")
            if len(members) > len(cycle) - 1:
                print("  modules in cycles with these: " + ", ".join(name(m) for m in members))
        return 1
    if args.verbose:
        print("order: " + ", ".join(name(m) for m in topological_order(nodes, graph)))
    print(
        f"check_module_cycles: {len(nodes)} modules, {len(pairs)} dependencies, no cycles"
        f" ({os.path.relpath(src)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
