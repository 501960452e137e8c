"""The README's how-to "add a dataset from a file in 10 minutes", step by step as an officer
types it, on a real file (the VVO stop list, tests/recordings/transit_vvo): draft → dry run →
quarantine → run → run again, into the local CKAN; and every row of its table of common errors
that a file or a definition can cause, each provoked and compared with the line the README
quotes (so the how-to cannot drift from what the CLI says)."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.helpers import RECORDINGS, REPO, cli_env, cli_report, make_project, odp_cli

pytestmark = pytest.mark.integration

STOPS = RECORDINGS / "transit_vvo" / "vvo_haltestellen_2019.csv"
ROWS = 4373
HOWTO = REPO / "README.md"


@pytest.fixture(scope="module")
def howto(portal, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("howto")
    root, _ = make_project(tmp, [])
    name = f"t{uuid.uuid4().hex[:8]}-haltestellen-dresden"
    (root / "data").mkdir()
    shutil.copy(STOPS, root / "data" / "haltestellen.csv")  # step 1: the file in the project
    env = cli_env(root, tmp / "state", "", portal)
    env.pop("ODP_REPLAY_URL")  # a local file: nothing goes to a server
    steps = {"draft": odp_cli(env, "draft", name, "--from", "data/haltestellen.csv")}
    steps["dry-run"] = odp_cli(env, "run", name, "--dry-run", "--json")
    steps["quarantine"] = odp_cli(env, "quarantine", name)
    steps["run"] = odp_cli(env, "run", name, "--json")
    steps["again"] = odp_cli(env, "run", name, "--json")
    return {"root": root, "name": name, "env": env, "steps": steps}


def test_the_howto_steps_publish_the_drafted_file_and_the_second_run_writes_nothing(howto):
    name, steps = howto["name"], howto["steps"]
    assert steps["draft"].returncode == 0, steps["draft"].stderr
    assert f"Check the guesses marked CHECK, then: odp run {name}" in steps["draft"].stdout
    for kind in ("pipelines", "schemas", "expectations"):
        assert f"wrote {kind}/{name}." in steps["draft"].stdout
    dry, real, again = (cli_report(steps[k]) for k in ("dry-run", "run", "again"))
    assert (dry["status"], dry["inserted"], dry["quarantined"]) == ("dry-run", ROWS, 0)
    assert steps["quarantine"].stdout.strip() == f"{name}: quarantine is empty"
    assert (real["status"], real["inserted"], real["quarantined"]) == ("ok", ROWS, 0)
    assert real["url"].endswith(f"/dataset/{name}")  # "the line ends with the dataset's URL"
    assert (again["status"], again["write_calls"]) == ("unchanged", 0)
    assert again["url"] == real["url"]


def test_the_published_dataset_has_the_howtos_resources(howto, ckan):
    package = ckan.action.package_show(id=howto["name"])
    formats = {r["format"].upper() for r in package["resources"]}
    assert {"CSV", "GEOJSON"} <= formats  # the table preview and the map
    assert package["license_id"]


def _edit(root: Path, name: str, old: str, new: str) -> None:
    pipeline = root / "pipelines" / f"{name}.toml"
    text = pipeline.read_text(encoding="utf-8")
    assert old in text, old
    pipeline.write_text(text.replace(old, new, 1), encoding="utf-8")


def _file(root: Path, file: str, make) -> str:
    lines = STOPS.read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "data" / file).write_bytes(make(lines))
    return f"data/{file}"


# (README fragment of the error table, how to provoke it, the line's pattern, exit code)
ERRORS = {
    "latin-1": ("`not UTF-8 (byte 0xE4 at offset …)` (3)",
                lambda lines: "".join(lines).encode("iso-8859-1"),
                r"not UTF-8 \(byte 0x[0-9A-F]{2} at offset \d+\)", 3),
    "title lines": ("`line 7: 12 cells where the first line has 1` (3)",
                    lambda lines: ("Haltestellen des VVO\nStand: 2019\n\n"
                                   + "".join(lines)).encode(),
                    r"line 4: 9 cells where the first line has 1", 3),
    "drift": ("`batch held back: schema drift: ",
              lambda lines: ("".join(lines).replace("WGS84_Y", "Breite", 1)).encode(),
              r"batch held back: schema drift: missing column 'latitude'; new column 'breite'",
              4),
    "cut": ("`batch held back: 40 rows, expected 100 … 1000` (4)",
            lambda lines: "".join(lines[:501]).encode(),
            r"batch held back: 500 rows, expected 2186 … 8746", 4),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_each_common_file_error_says_what_the_howto_table_quotes(howto, case):
    fragment, make, pattern, code = ERRORS[case]
    assert fragment in HOWTO.read_text(encoding="utf-8")
    root, name = howto["root"], howto["name"]
    original = (root / "pipelines" / f"{name}.toml").read_text(encoding="utf-8")
    try:
        _edit(root, name, 'path = "data/haltestellen.csv"',
              f'path = "{_file(root, case.replace(" ", "_") + ".csv", make)}"')
        done = odp_cli(howto["env"], "run", name, "--dry-run", "--json")
    finally:
        (root / "pipelines" / f"{name}.toml").write_text(original, encoding="utf-8")
    report = cli_report(done)
    assert done.returncode == code, report
    assert re.search(pattern, report["error"]), report["error"]


def test_a_typo_an_unknown_name_and_another_citys_dataset_say_what_the_table_quotes(howto):
    readme = HOWTO.read_text(encoding="utf-8")
    root, name, env = howto["root"], howto["name"], howto["env"]
    assert "`unknown dataset 'x' (known: …)` (2)" in readme
    done = odp_cli(env, "run", "spielplaetze-dresden")
    assert done.returncode == 2 and "unknown dataset 'spielplaetze-dresden' (known: " in \
        done.stderr, done.stderr
    assert "`… belongs to the city 'leipzig', not to 'dresden' …` (2)" in readme
    leipzig = root / "pipelines" / "schools-leipzig.toml"
    shutil.copy(REPO / "pipelines" / "schools-leipzig.toml", leipzig)  # says city = "leipzig"
    try:
        done = odp_cli(env, "run", "schools-leipzig")
    finally:
        leipzig.unlink()
    assert done.returncode == 2 and "belongs to the city 'leipzig', not to 'dresden'" in \
        done.stderr and "--city leipzig" in done.stderr, done.stderr
    assert "`… [source] unknown key 'statoin' (known: …)` (2)" in readme
    original = (root / "pipelines" / f"{name}.toml").read_text(encoding="utf-8")
    try:
        _edit(root, name, "delimiter = ", "delimter = ")
        done = odp_cli(env, "run", name, "--dry-run", "--json")
    finally:
        (root / "pipelines" / f"{name}.toml").write_text(original, encoding="utf-8")
    assert done.returncode == 2
    assert "[source] unknown key 'delimter' (known: " in cli_report(done)["error"]
