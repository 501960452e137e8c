"""The engine (`odp`) and the development scaffolding (`odp_dev`: local portal, replay server)
are apart: no engine module imports the dev package, by statement or by name, and importing
every engine module loads none of it. The CLI reaches the dev tools by entry point only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from odp import cli
from odp.errors import ConfigError

ENGINE = Path(__file__).resolve().parents[2] / "src" / "odp"
DEV = "odp_dev"


def _dev_references(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]  # importlib.import_module("odp_dev…"), entry-point strings
        else:
            continue
        found += [f"{path.name}:{node.lineno} {name}" for name in names
                  if name == DEV or name.startswith(f"{DEV}.") or name.startswith(f"{DEV}:")]
    return found


def test_no_engine_module_imports_the_dev_package() -> None:
    modules = sorted(ENGINE.rglob("*.py"))
    assert len(modules) > 50  # the whole engine was searched
    offending = [ref for path in modules for ref in _dev_references(path)]
    assert offending == []


def test_the_search_finds_an_import_of_the_dev_package(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from odp_dev.portal import stack\nimport importlib\n"
                       "importlib.import_module('odp_dev.replay')\n")
    assert len(_dev_references(planted)) == 2


def test_importing_every_engine_module_loads_nothing_of_the_dev_package() -> None:
    script = (
        "import importlib, pkgutil, sys, odp\n"
        "skipped = []\n"
        "for info in pkgutil.walk_packages(odp.__path__, 'odp.'):\n"
        "    try:\n"
        "        importlib.import_module(info.name)\n"
        "    except ImportError as exc:\n"
        "        skipped.append(info.name)\n"
        "dev = sorted(m for m in sys.modules if m == 'odp_dev' or m.startswith('odp_dev.'))\n"
        "print(len([m for m in sys.modules if m.startswith('odp.')]), dev, skipped)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split(" ", 1)
    assert int(out[0]) > 50
    assert out[1].startswith("[] ")


def test_the_cli_finds_the_dev_tools_by_entry_point() -> None:
    assert callable(cli._dev_tool("portal")) and callable(cli._dev_tool("replay"))
    with pytest.raises(ConfigError, match="development tool 'nope' is not installed"):
        cli._dev_tool("nope")
