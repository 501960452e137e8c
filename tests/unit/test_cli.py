"""The `odp` command: listing, showing, errors as one line with the right exit code, and a
startup that loads no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from odp.cli import main
from tests.helpers import REPO, make_project


def test_list_json_names_every_definition(capsys, monkeypatch):
    monkeypatch.setenv("ODP_PROJECT", str(REPO))
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    dresden = {p.stem for p in (REPO / "pipelines").glob("*.toml")  # the served city's
               if tomllib.loads(p.read_text(encoding="utf-8")).get("city", "dresden") == "dresden"}
    assert {r["name"] for r in rows} == dresden
    elbe = next(r for r in rows if r["name"] == "elbe-water-level-dresden")
    assert elbe["mode"] == "incremental" and elbe["primary_key"] == ["station_uuid", "timestamp"]


def test_show_json_lists_fields_with_units(capsys, monkeypatch):
    monkeypatch.setenv("ODP_PROJECT", str(REPO))
    assert main(["show", "elbe-water-level-dresden", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    level = next(f for f in info["fields"] if f["name"] == "water_level")
    assert level == {"name": "water_level", "type": "number", "unit": "cm", "required": True,
                     "derived": None}
    assert "schemas/elbe-water-level-dresden.json" in info["files"]


def test_unknown_dataset_is_a_one_line_config_error(capsys, monkeypatch):
    monkeypatch.setenv("ODP_PROJECT", str(REPO))
    assert main(["run", "no-such-dataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("odp: error: unknown dataset 'no-such-dataset'") and "\n" not in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('type = "pegelonline"', 'type = "ftp"'), "unknown source type 'ftp'"),
        (lambda t: t.replace("title =", "titel ="), "missing required key 'title'"),
        (lambda t: t + "\n[broken", "invalid TOML"),
    ],
)
def test_a_broken_definition_names_its_file(tmp_path, monkeypatch, capsys, edit, message):
    root, names = make_project(tmp_path, ["elbe-water-level-dresden"])
    monkeypatch.setenv("ODP_PROJECT", str(root))
    monkeypatch.setenv("ODP_STATE_DIR", str(tmp_path / "state"))
    name = names["elbe-water-level-dresden"]
    path = root / "pipelines" / f"{name}.toml"
    path.write_text(edit(path.read_text()))
    code = main(["run", name, "--json"])
    out = capsys.readouterr()
    text = out.err + out.out
    assert code == 2 and message in text and name in text


def test_listing_loads_no_heavy_library():
    code = ("import sys; from odp.cli import main; main(['list', '--json']); "
            "heavy = {'great_expectations', 'dlt', 'geopandas', 'ckanapi', 'duckdb'}; "
            "print(sorted(heavy & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(REPO), check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_command_ends_with_mains_code_once_every_exit_handler_has_run():
    """`odp` (the console script, and `python -m odp.cli`) ends with main's exit code right
    after the exit handlers, without Python's own exit walking every object left (after a
    run that validated, about 1 s); when main raises SystemExit itself (argparse), Python's
    exit runs as usual."""
    script = tomllib.loads((Path(REPO) / "pyproject.toml").read_text())["project"]["scripts"]
    assert script["odp"] == "odp.command:entry"
    code = """
import atexit, sys
from odp import command
import odp.cli

class Unloaded:  # a module global: deleted by Python's own exit, not before
    def __del__(self):
        print("python's exit ran", flush=True)

keep = Unloaded()

def main():
    atexit.register(print, "exit handler ran")  # after the command's own: runs before it
    print("main ran", end=" ")  # buffered: flushed before the end
    if "help" in sys.argv:
        raise SystemExit(0)
    return 3

odp.cli.main = main
command.entry()
"""
    ends = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(REPO))
    assert ends.returncode == 3 and ends.stdout.split("\n")[:2] == [
        "main ran exit handler ran", ""]
    helps = subprocess.run([sys.executable, "-c", code, "help"], capture_output=True,
                           text=True, cwd=Path(REPO))
    assert helps.returncode == 0 and "python's exit ran" in helps.stdout
    real = subprocess.run([sys.executable, "-m", "odp.cli", "show", "no-such-dataset"],
                          capture_output=True, text=True, cwd=Path(REPO))
    assert real.returncode == 2 and "no-such-dataset" in real.stderr
