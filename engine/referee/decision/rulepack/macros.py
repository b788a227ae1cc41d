"""Lists and macros in CEL conditions: expanded in Python before the conditions reach Rust.

A pack's ``lists.<name>`` is replaced by a CEL list literal and its ``macros.<name>`` by the
macro's (already expanded) text in parentheses. Expansion happens on tokens, never inside
string literals, and keeps a map from the expanded text back to the text the author wrote, so
an error the Rust checker reports in the expanded condition still points at the right place in
the file (``Source.locate``). Inlining keeps Rust unchanged: it never sees ``lists`` or
``macros`` variables, only literals and parenthesised sub-expressions it checks as usual.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Deepest chain of macros referring to macros.
MAX_MACRO_DEPTH = 8
#: Longest condition after expansion (the Rust checker's own limit, in bytes).
MAX_EXPANDED_BYTES = 4096
#: The namespaces a condition may refer to.
NAMESPACES = ("lists", "macros")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_STRING_START = re.compile(r"(?:[rR][bB]?|[bB][rR]?)?('''|\"\"\"|'|\")")


@dataclass
class Token:
    kind: str  # "ident", "string", "other"
    text: str
    start: int


def tokens(src: str) -> Iterator[Token]:
    """CEL tokens, as far as expansion needs them: identifiers, whole string literals, the rest
    one character at a time. An unterminated string runs to the end (Rust reports it)."""
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        m = _STRING_START.match(src, i)
        # A prefix (r, b, rb, ...) only counts when it is a whole identifier: `br"x"`, not `abr"x"`.
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            quote = m.group(1)
            raw = "r" in src[i : m.start(1)].lower()
            j = m.end()
            while j < n:
                if not raw and src[j] == "\\":
                    j += 2
                    continue
                if src.startswith(quote, j):
                    j += len(quote)
                    break
                if len(quote) == 1 and src[j] == "\n":
                    break
                j += 1
            yield Token("string", src[i:j], i)
            i = j
            continue
        if c.isdigit():
            m2 = _NUMBER.match(src, i)
            assert m2 is not None
            yield Token("other", m2.group(0), i)
            i = m2.end()
            continue
        m3 = _IDENT.match(src, i)
        if m3:
            yield Token("ident", m3.group(0), i)
            i = m3.end()
            continue
        yield Token("other", c, i)
        i += 1


def free_identifiers(src: str) -> set[str]:
    """Identifiers not selected from something (``a`` in ``a.b``, not ``b``)."""
    out: set[str] = set()
    prev = ""
    for t in tokens(src):
        if t.kind == "ident" and prev != ".":
            out.add(t.text)
        if not t.text.isspace():
            prev = t.text
    return out


@dataclass
class Reference:
    """``lists.x`` or ``macros.x`` at ``start``..``end`` of a condition."""

    namespace: str
    name: str
    start: int
    end: int


def references(src: str) -> tuple[list[Reference], list[tuple[int, str]]]:
    """The list and macro references in ``src``, and misuses (``lists`` alone, ``lists[0]``)."""
    toks = [t for t in tokens(src) if not t.text.isspace()]
    refs: list[Reference] = []
    bad: list[tuple[int, str]] = []
    for k, t in enumerate(toks):
        if t.kind != "ident" or t.text not in NAMESPACES:
            continue
        if k > 0 and toks[k - 1].text == ".":
            continue  # a field called `lists` on something else
        if k + 2 < len(toks) and toks[k + 1].text == "." and toks[k + 2].kind == "ident":
            name = toks[k + 2]
            refs.append(Reference(t.text, name.text, t.start, name.start + len(name.text)))
        else:
            bad.append((t.start, f"`{t.text}` must be followed by `.<name>`, e.g. `{t.text}.example`"))
    return refs, bad


def list_literal(values: list[str | int | float]) -> str:
    """A CEL list literal; strings are JSON-quoted (CEL accepts JSON's escapes)."""
    parts = []
    for v in values:
        if isinstance(v, str):
            parts.append(json.dumps(v, ensure_ascii=False))
        elif isinstance(v, float):
            text = repr(v)
            parts.append(text if any(ch in text for ch in ".eEn") else text + ".0")
        else:
            parts.append(str(v))
    return "[" + ", ".join(parts) + "]"


@dataclass
class Span:
    """A piece of expanded text and where it came from."""

    exp_start: int
    exp_end: int
    field: str | None  # where the text was written (a rule field, `macros.<name>`); None: glue
    orig_start: int
    identity: bool  # True: offsets map one to one; False: the whole span maps to orig_start
    orig_text: str = ""  # the text as written in `field`


@dataclass
class Source:
    """An expanded condition, built from one or more fields, that maps positions back."""

    text: str = ""
    spans: list[Span] = field(default_factory=list)

    def glue(self, s: str) -> None:
        self.spans.append(Span(len(self.text), len(self.text) + len(s), None, 0, True))
        self.text += s

    def add(
        self, fld: str, src: str, refs: list[Reference], expansions: dict[tuple[str, str], str | Source]
    ) -> None:
        """Appends ``src`` (written in ``fld``) with its references replaced: lists by their
        literal, macros by their own expanded source in parentheses (keeping its map)."""
        pos = 0
        for r in refs:
            self._piece(fld, src, pos, r.start)
            rep = expansions[(r.namespace, r.name)]
            if isinstance(rep, Source):
                self.glue("(")
                self.extend(rep)
                self.glue(")")
            else:
                self.spans.append(Span(len(self.text), len(self.text) + len(rep), fld, r.start, False, src))
                self.text += rep
            pos = r.end
        self._piece(fld, src, pos, len(src))

    def extend(self, other: Source) -> None:
        """Appends another source with its map."""
        base = len(self.text)
        for s in other.spans:
            self.spans.append(
                Span(s.exp_start + base, s.exp_end + base, s.field, s.orig_start, s.identity, s.orig_text)
            )
        self.text += other.text

    def _piece(self, fld: str, src: str, start: int, end: int) -> None:
        if end > start:
            self.spans.append(Span(len(self.text), len(self.text) + end - start, fld, start, True, src))
            self.text += src[start:end]

    def locate(self, line: int, col: int) -> tuple[str | None, int, str]:
        """(field, offset, text as written there) of a 1-based line/column in ``text``; glue
        text (the parentheses around a macro) maps to the nearest written text before it."""
        lines = self.text.split("\n")
        line = min(max(line, 1), len(lines))
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(col, 1) - 1
        best: Span | None = None
        for s in self.spans:
            if s.field is not None and s.exp_start <= offset:
                best = s
            if s.exp_start <= offset < s.exp_end:
                break
        if best is None:
            best = next((s for s in self.spans if s.field is not None), None)
            if best is None:
                return None, 0, ""
            return best.field, best.orig_start, best.orig_text
        if best.identity:
            return (
                best.field,
                best.orig_start + min(offset - best.exp_start, best.exp_end - best.exp_start),
                best.orig_text,
            )
        return best.field, best.orig_start, best.orig_text


def line_col(src: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    before = src[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
