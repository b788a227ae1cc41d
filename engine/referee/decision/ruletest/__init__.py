"""Rule tests (``referee rules test``): promtool-style unit tests for rule packs.

A test file names the packs it tests, gives input series in promtool's expanding notation and
asserts the verdict of suggestions decided at given times (``format``). The suggestions go
through the same store, loader and ``Decider`` as ``referee serve`` (``run``), so a passing
test says what the service would do.
"""

from referee.decision.ruletest.format import (
    DEFAULT_START,
    MAX_SAMPLES,
    Case,
    CaseSuggestion,
    Expect,
    InputSeries,
    LoadedTest,
    NotationError,
    RuleTestError,
    RuleTestFile,
    StoreSettings,
    expand_values,
    find_test_files,
    read_test_file,
)
from referee.decision.ruletest.run import (
    CaseResult,
    SeriesData,
    Summary,
    build_series,
    case_time,
    compare,
    diff_text,
    evidence_line,
    feed_until,
    load_for,
    run_file,
    run_paths,
    settings_for,
    start_ms,
    suggestion_for,
    trace_lines,
)

__all__ = [
    "DEFAULT_START",
    "MAX_SAMPLES",
    "Case",
    "CaseResult",
    "CaseSuggestion",
    "Expect",
    "InputSeries",
    "LoadedTest",
    "NotationError",
    "RuleTestError",
    "RuleTestFile",
    "SeriesData",
    "StoreSettings",
    "Summary",
    "build_series",
    "case_time",
    "compare",
    "diff_text",
    "evidence_line",
    "expand_values",
    "feed_until",
    "find_test_files",
    "load_for",
    "read_test_file",
    "run_file",
    "run_paths",
    "settings_for",
    "start_ms",
    "suggestion_for",
    "trace_lines",
]
