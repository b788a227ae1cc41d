"""A pack's scope: its ``lists`` and ``macros``, and conditions with them expanded.

Lists and macros are pack-scoped and inlined into each condition before it goes to Rust;
``macros`` tokenizes the CEL text so that references, cycles and sizes are checked and every
problem maps back to its place in the file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node, ScalarNode, SequenceNode

from referee.decision.rulepack import macros
from referee.decision.rulepack.macros import Reference, Source
from referee.decision.rulepack.model import (
    _NAME,
    Position,
    Rule,
)
from referee.decision.rulepack.yamlfile import (
    FileReader,
    _AnyKey,
    _place_at,
    _position,
    _scalar_value,
)


def _ident_offsets(src: str, name: str) -> list[int]:
    """Where ``name`` occurs as a free identifier in ``src``."""
    out, prev = [], ""
    for t in macros.tokens(src):
        if t.kind == "ident" and t.text == name and prev != ".":
            out.append(t.start)
        if not t.text.isspace():
            prev = t.text
    return out


@dataclass
class _Macro:
    text: str
    pos: Position
    expanded: Source | None = None
    state: str = "new"  # new | expanding | done | failed


class PackScope(FileReader):
    """The reader's pack-scoped names: lists, macros and condition expansion."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        super().__init__(path, errors)
        self.lists: dict[str, list[str | int | float]] = {}
        self.macros: dict[str, _Macro] = {}

    def read_lists(self, node: Node) -> None:
        for name, (key, value) in self.mapping(node, "lists", _AnyKey()).items():
            if not _NAME.match(name):
                self.error(key, f"list name `{name}` must be an identifier (letters, digits, '_')")
                continue
            if not isinstance(value, SequenceNode):
                self.error(value, f"list `{name}` must be a sequence of strings or numbers")
                continue
            items: list[str | int | float] = []
            kinds: set[str] = set()
            for item in value.value:
                v = _scalar_value(item)
                if v is None:
                    self.error(item, f"list `{name}`: items must be strings or numbers")
                    continue
                items.append(v)
                kinds.add("string" if isinstance(v, str) else "number")
            if len(kinds) > 1:
                self.error(value, f"list `{name}` mixes strings and numbers")
                continue
            self.lists[name] = items

    def read_macros(self, node: Node) -> None:
        for name, (key, value) in self.mapping(node, "macros", _AnyKey()).items():
            if not _NAME.match(name):
                self.error(key, f"macro name `{name}` must be an identifier (letters, digits, '_')")
                continue
            if not isinstance(value, ScalarNode) or value.tag != "tag:yaml.org,2002:str":
                self.error(value, f"macro `{name}` must be a CEL expression (a string)")
                continue
            self.macros[name] = _Macro(str(value.value), _position(value))

    def _defined(self, namespace: str) -> str:
        names = sorted(self.lists if namespace == "lists" else self.macros)
        return f"this pack defines: {', '.join(names)}" if names else "this pack defines none"

    def _expansions(
        self, text: str, report: Callable[[int, str], None], stack: list[str]
    ) -> tuple[list[Reference], dict[tuple[str, str], str | Source]] | None:
        """The references in ``text`` and what each expands to; None if any is broken."""
        refs, bad = macros.references(text)
        ok = True
        for offset, message in bad:
            report(offset, message)
            ok = False
        expansions: dict[tuple[str, str], str | Source] = {}
        for r in refs:
            if r.namespace == "lists":
                if r.name not in self.lists:
                    report(
                        r.start, f"unknown list `{r.name}` ({self._defined('lists')}; lists are pack-scoped)"
                    )
                    ok = False
                else:
                    expansions[("lists", r.name)] = macros.list_literal(self.lists[r.name])
            elif r.name not in self.macros:
                report(
                    r.start, f"unknown macro `{r.name}` ({self._defined('macros')}; macros are pack-scoped)"
                )
                ok = False
            else:
                sub = self.expand_macro(r.name, stack, (report, r.start))
                if sub is None:
                    ok = False
                else:
                    expansions[("macros", r.name)] = sub
        return (refs, expansions) if ok else None

    def expand_macro(
        self, name: str, stack: list[str], ref: tuple[Callable[[int, str], None], int] | None = None
    ) -> Source | None:
        """A macro's text with its own references expanded; cycles and over-deep chains fail."""
        m = self.macros[name]
        if m.state == "done":
            return m.expanded
        if m.state == "failed":
            return None
        if m.state == "expanding":
            assert ref is not None
            ref[0](ref[1], f"macros refer to each other in a cycle: {' -> '.join([*stack, name])}")
            return None
        if len(stack) >= macros.MAX_MACRO_DEPTH:
            assert ref is not None
            ref[0](ref[1], f"macros nest deeper than {macros.MAX_MACRO_DEPTH} levels: {' -> '.join(stack)}")
            return None
        m.state = "expanding"

        def report(offset: int, message: str) -> None:
            self.error_at(m.pos, m.text, offset, f"macro `{name}`: {message}")

        found = self._expansions(m.text, report, [*stack, name])
        if found is None:
            m.state = "failed"
            return None
        src = Source()
        src.add(f"macros.{name}", m.text, *found)
        if len(src.text.encode()) > macros.MAX_EXPANDED_BYTES:
            report(0, f"expands to {len(src.text.encode())} bytes, more than {macros.MAX_EXPANDED_BYTES}")
            m.state = "failed"
            return None
        m.state, m.expanded = "done", src
        return src

    def condition(self, rule: Rule, key: str, node: Node, what: str) -> str | None:
        """Reads a CEL condition, records where it starts and expands its references."""
        text = self.scalar(node, what)
        if text is None:
            return None
        assert isinstance(node, ScalarNode)
        pos = _position(node)
        rule.positions[key] = pos

        def report(offset: int, message: str) -> None:
            self.error_at(pos, text, offset, f"rule `{rule.id}` {what}: {message}")

        found = self._expansions(text, report, [])
        if found is not None:
            src = Source()
            src.add(key, text, *found)
            rule.sources[key] = src
            rule.expanded[key] = src.text
            for name, m in self.macros.items():  # where the macros it uses are written
                if any(s.field == f"macros.{name}" for s in src.spans):
                    rule.positions[f"macros.{name}"] = m.pos
            if rule.kind == "watch":
                for offset in _ident_offsets(src.text, "suggestion"):
                    fld, off, written = src.locate(*macros.line_col(src.text, offset))
                    where = _place_at(
                        self.path, rule.positions.get(fld or key, pos), *macros.line_col(written, off)
                    )
                    self.errors.append(
                        f"{where}: rule `{rule.id}` {what}: watch rules have no `suggestion`; "
                        "use `series`, `signal` and `baseline`"
                    )
                    break
        return text
