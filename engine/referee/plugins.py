"""Finding and loading plugins, in one fixed order.

1. built-in hook implementations (none yet: the core never imports a plugin);
2. entry points in the ``referee`` group, all of them, or only the names listed in
   ``REFEREE_LOAD_PLUGINS`` (comma-separated; empty string loads none);
3. ``check_pending()``, so a misspelt hook name fails loudly at start.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from typing import Any

import pluggy

from referee import hookspecs

ENTRY_POINT_GROUP = "referee"


def plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("referee")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        allow = os.environ.get("REFEREE_LOAD_PLUGINS")
        if allow is None:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        else:
            wanted = {n.strip() for n in allow.split(",") if n.strip()}
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in wanted and pm.get_plugin(ep.name) is None:
                    pm.register(ep.load(), name=ep.name)
    pm.check_pending()
    return pm


def loaded_plugins(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, _ in pm.list_name_plugin() if name)


def rule_functions(pm: pluggy.PluginManager) -> dict[str, Callable[..., Any]]:
    """The functions plugins register for rule conditions; a name registered twice is an error."""
    found: dict[str, Callable[..., Any]] = {}

    def register(name: str, function: Callable[..., Any]) -> None:
        if name in found:
            raise ValueError(f"rule function `{name}` is registered twice")
        found[name] = function

    pm.hook.referee_register_rule_functions(register=register)
    return found
