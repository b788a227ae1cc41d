"""Reading rule-pack YAML safely, with every node's place in its file.

PyYAML's ``safe_load`` silently keeps the last of two duplicate keys and does not bound alias
expansion; :class:`StrictLoader` refuses duplicates, aliases (no alias bombs), over-deep
nesting and several documents in one file. :class:`FileReader` turns nodes into values and
problems into ``path:line:col: message`` lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from referee.decision.rulepack import macros
from referee.decision.rulepack.model import MAX_DEPTH, Position


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, duplicate keys and over-deep nesting."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                None, None, "anchors and aliases are not allowed in rule packs", event.start_mark
            )
        depth = getattr(self, "_depth", 0)
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def _compose(text: str) -> Node | None:
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    return node


def _position(node: ScalarNode) -> Position:
    """Where a condition's text starts: block scalars start on the next line."""
    quoted = node.style in ("'", '"')
    return (
        node.start_mark.line + 1,
        node.start_mark.column + 1 + (1 if quoted else 0),
        node.style in ("|", ">"),
    )


def _place_at(path: str | Path, pos: Position, line: int, col: int) -> str:
    """Maps a line/column inside a condition to ``path:line:col`` in its file."""
    start_line, start_col, block = pos
    if block:
        # Block scalars start on the next line; columns are relative to the indentation.
        return f"{path}:{start_line + line}:{col}"
    return f"{path}:{start_line + line - 1}:{(start_col + col - 1) if line == 1 else col}"


class _AnyKey(set[str]):
    """``mapping``'s allowed keys for lists and macros: any name (checked separately)."""

    def __contains__(self, key: object) -> bool:
        return True


def _scalar_value(node: Node) -> str | int | float | None:
    """A list item as YAML resolved it: strings and numbers only."""
    if not isinstance(node, ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:str":
        return str(node.value)
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        loaded = yaml.safe_load(node.value)
        return loaded if isinstance(loaded, (int, float)) and not isinstance(loaded, bool) else None
    return None


class FileReader:
    """Reads one file's nodes and records its problems as ``path:line:col: message``."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        self.path = path
        self.errors = errors

    def error_at(self, pos: Position, text: str, offset: int, message: str) -> None:
        line, col = macros.line_col(text, offset)
        self.errors.append(f"{_place_at(self.path, pos, line, col)}: {message}")

    def error(self, node: Node | None, message: str) -> None:
        if node is None:
            self.errors.append(f"{self.path}:1:1: {message}")
        else:
            self.errors.append(
                f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {message}"
            )

    def mapping(self, node: Node, what: str, allowed: set[str]) -> dict[str, tuple[ScalarNode, Node]]:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return {}
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{what}: keys must be strings")
                continue
            if key.value in out:
                self.error(key, f"duplicate key `{key.value}` in {what}")
                continue
            if key.value not in allowed:
                self.error(
                    key, f"unknown field `{key.value}` in {what} (allowed: {', '.join(sorted(allowed))})"
                )
                continue
            out[key.value] = (key, value)
        return out

    def scalar(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a scalar")
            return None
        return str(node.value)
