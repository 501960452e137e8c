"""`odp schedule show|install`: the next runs, and the one crontab line (or a systemd service +
timer) that starts `odp run --due` every minute. The schedules themselves stay in
`pipelines/NAME.toml`; cron or systemd only wake odp up."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odp.errors import OdpError
from odp.operations.schedule import dataset_schedule
from odp.runs import history
from odp.spec import dataset_names, load_city, load_dataset, state_dir


def upcoming(root: Path, count: int = 3, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    city, state = load_city(root), state_dir(root)
    rows = []
    for name in dataset_names(root):
        schedule = dataset_schedule(load_dataset(name, root), city.timezone)
        last = history.summary(state, name).last_attempt_started
        nxt = schedule.next_runs(now, count, last)
        rows.append({
            "dataset": name, "schedule": schedule.describe(), "timezone": schedule.timezone.key,
            "due": schedule.is_due(now, last),
            "next": [t.isoformat(timespec="seconds") for t in nxt],
            "next_local": [t.astimezone(schedule.timezone).strftime("%Y-%m-%d %H:%M %Z")
                           for t in nxt],
        })
    return rows


def _command(root: Path) -> str:
    uv = shutil.which("uv") or "uv"  # cron's PATH is short: use the full path when known
    env = ""
    if state := os.environ.get("ODP_STATE_DIR"):
        env = f"ODP_STATE_DIR={shlex.quote(state)} "
    return f"cd {shlex.quote(str(root))} && {env}{uv} run --frozen odp run --due"


def markers(root: Path) -> tuple[str, str]:
    return f"# BEGIN odp {root}", f"# END odp {root}"


def unit_name(root: Path) -> str:
    return f"odp-{load_city(root).slug}"


def render(root: Path, kind: str, log: str | None = None) -> str:
    root = root.resolve()
    if kind == "cron":
        logfile = log or str(state_dir(root) / "logs" / "cron.log")
        begin, end = markers(root)
        return (f"{begin}\n"
                "# every minute: run the datasets whose [schedule] is due (odp run --due)\n"
                f"* * * * * {_command(root)} >> {shlex.quote(logfile)} 2>&1\n"
                f"{end}\n")
    name = unit_name(root)
    service = (f"# {name}.service\n[Unit]\nDescription=odp: run the due open-data pipelines\n"
               "After=network-online.target\nWants=network-online.target\n\n"
               f"[Service]\nType=oneshot\nWorkingDirectory={root}\n"
               f"ExecStart=/bin/sh -c {shlex.quote(_command(root))}\n"
               "Nice=5\n")
    timer = (f"# {name}.timer\n[Unit]\nDescription=odp: every minute, check which pipelines "
             "are due\n\n[Timer]\nOnCalendar=*-*-* *:*:00\nAccuracySec=1s\nPersistent=true\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return service + "\n" + timer


def replace_block(crontab: str, block: str, root: Path) -> str:
    """The crontab with this project's block replaced (or appended): idempotent."""
    begin, end = markers(root.resolve())
    lines, out, inside = crontab.splitlines(), [], False
    for line in lines:
        if line.strip() == begin:
            inside = True
            continue
        if inside:
            inside = line.strip() != end
            continue
        out.append(line)
    text = "\n".join(out).rstrip("\n")
    return (text + "\n" if text else "") + block


def apply(root: Path, kind: str, text: str, unit_dir: Path | None) -> str:
    if kind == "cron":
        if not shutil.which("crontab"):
            raise OdpError("crontab is not installed: print the block with `odp schedule "
                           "install` and add it by hand, or use --kind systemd")
        current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
        new = replace_block(current.stdout if current.returncode == 0 else "", text, root)
        done = subprocess.run(["crontab", "-"], input=new, capture_output=True, text=True)
        if done.returncode:
            raise OdpError(f"crontab refused the block: {done.stderr.strip()}")
        return "crontab updated (odp run --due every minute)"
    folder = unit_dir or Path.home() / ".config" / "systemd" / "user"
    folder.mkdir(parents=True, exist_ok=True)
    name = unit_name(root)
    service, timer = text.split(f"# {name}.timer\n")
    (folder / f"{name}.service").write_text(service.split("\n", 1)[1].rstrip() + "\n")
    (folder / f"{name}.timer").write_text(timer)
    scope = "--user " if unit_dir is None else ""
    return (f"wrote {folder / (name + '.service')} and {name}.timer; enable with: "
            f"systemctl {scope}daemon-reload && systemctl {scope}enable --now {name}.timer")
