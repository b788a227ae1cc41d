"""Rule pack v1: reading YAML packs safely and turning them into a compiled rule set.

The steps, one module each:

1. ``yamlfile`` - YAML read with a strict loader (no duplicate keys, aliases, deep nesting or
   several documents), nodes kept with their place in the file;
2. ``reader`` - one file's fields checked against the pack vocabulary (``model``), the pack's
   ``lists`` and ``macros`` inlined into every condition (``macros``);
3. ``compile`` - conditions compiled in Rust: the suggestion rules, their exceptions and the
   watch rules in rule sets of their own, so the main rule set's outcomes are exactly one per
   suggestion rule; ``load_rules`` runs the whole pipeline;
4. ``schema`` - the JSON Schema of the format, generated from the same vocabulary.

Loading is all or nothing: every error in every file is collected and reported as
``path:line:col: message``; a rule set is only built when there are none.
"""

from referee.decision.rulepack.compile import load_rules, pack_files
from referee.decision.rulepack.model import (
    EFFECT_FIELDS,
    EXCEPTION_FIELDS,
    MAX_FILE_BYTES,
    PACK_FIELDS,
    RULE_FIELDS,
    SIGNAL_FIELDS,
    Effect,
    LoadedRules,
    Rule,
    RuleException,
    RulePackError,
    WatchGroup,
)
from referee.decision.rulepack.yamlfile import StrictLoader
from referee.durations import parse_duration

#: Deprecated name of ``StrictLoader``.
_StrictLoader = StrictLoader

__all__ = [
    "EFFECT_FIELDS",
    "EXCEPTION_FIELDS",
    "MAX_FILE_BYTES",
    "PACK_FIELDS",
    "RULE_FIELDS",
    "SIGNAL_FIELDS",
    "Effect",
    "LoadedRules",
    "Rule",
    "RuleException",
    "RulePackError",
    "StrictLoader",
    "WatchGroup",
    "load_rules",
    "pack_files",
    "parse_duration",
]
