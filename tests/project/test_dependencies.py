"""Every third-party module attnviz imports is a declared dependency in pyproject.toml, or comes
with one."""

from __future__ import annotations

import sys

import pytest

from cli_runs import ROOT


@pytest.mark.slow
def test_every_third_party_import_is_declared():
    """A module attnviz imports at run time is a declared dependency (or comes with one); the
    optional engine (attnviz/engines/transformers_engine.py) may import its extra's packages."""
    import ast
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {d.split(">")[0].split("=")[0].split("[")[0].strip().lower().replace("-", "_") for d in requirements}

    declared = names(project["dependencies"])
    extra = names(project["optional-dependencies"]["transformers"])
    comes_with = {"fontTools": "matplotlib", "click": "typer"}  # dependencies of our dependencies
    missing = set()
    for path in (ROOT / "attnviz").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "attnviz":
                    continue
                allowed = declared | (extra if path.parent.name == "engines" else set())
                if top.lower() not in allowed and comes_with.get(top) not in allowed:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing
