"""howdah-cron: Spilo's CRONTAB lines parsed and matched as cron does; certificate reloads."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from howdah.entrypoint import cron, render, settings
from howdah.entrypoint.memory import sizing

FACTS = settings.Facts(hostname="node1", ip="172.20.0.5", memory=sizing(None))


def at(text: str) -> time.struct_time:
    """'2026-12-06 03:00' (a Sunday) as local struct_time."""
    return time.strptime(text, "%Y-%m-%d %H:%M")


@pytest.mark.parametrize("line, when, due", [
    ("* * * * * x", "2026-12-03 10:17", True),
    ("*/15 * * * * x", "2026-12-03 10:30", True),
    ("*/15 * * * * x", "2026-12-03 10:31", False),
    ("0 3 * * 0 x", "2026-12-06 03:00", True),   # Sunday
    ("0 3 * * 7 x", "2026-12-06 03:00", True),   # 7 is Sunday too
    ("0 3 * * sun x", "2026-12-06 03:00", True),
    ("0 3 * * mon-fri x", "2026-12-06 03:00", False),
    ("0 1 1 jan * x", "2026-01-01 01:00", True),
    ("0 0 1 * 1 x", "2026-12-07 00:00", True),   # dom and dow both restricted: either (a Monday)
    ("0 0 1 * 1 x", "2026-12-01 00:00", True),   # (the 1st)
    ("0 0 1 * 1 x", "2026-12-02 00:00", False),
    ("5,10-12 * * * * x", "2026-12-03 10:11", True),
    ("@hourly x", "2026-12-03 10:00", True),
    ("@daily x", "2026-12-03 10:00", False),
])
def test_due(line: str, when: str, due: bool) -> None:
    assert cron.parse(line).due(at(when)) is due


def test_command_keeps_its_spaces_and_reboot_lines() -> None:
    assert cron.parse("0 3 * * * vacuumdb -a  -q").command == "vacuumdb -a  -q"
    entry = cron.parse("@reboot echo hi")
    assert entry.at_reboot and not entry.due(at("2026-12-03 10:00"))


@pytest.mark.parametrize("line", ["* * * * x", "60 * * * * x", "* 24 * * * x", "*/0 * * * * x",
                                  "5-1 * * * * x", "@often x", "* * * * *", "0 0 32 * * x"])
def test_bad_lines(line: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(line)


def test_rendered_program_and_crontab_file() -> None:
    s = settings.load({"CRONTAB": '["0 3 * * * vacuumdb -a"]'}, FACTS)
    files = render.render_all(s)
    assert files["crontab"][0] == "0 3 * * * vacuumdb -a\n"
    supervisord = files["supervisord.conf"][0]
    assert "[program:cron]" in supervisord and "--crontab /run/howdah/crontab" in supervisord
    plain = render.render_all(settings.load({}, FACTS))
    assert "crontab" not in plain and "[program:cron]" not in plain["supervisord.conf"][0]


def test_runner_starts_reboot_lines_and_skips_overlaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    runner = cron.Runner([cron.parse(f"@reboot echo ran >> {out}; sleep 30")], [], "", "")
    runner.start(0)
    runner.start(0)  # still running: skipped
    assert "still going" in capsys.readouterr().out
    proc = runner.running[0]
    proc.kill()
    proc.wait(30)
    runner.reap()
    assert 0 not in runner.running


def test_certificate_change_reloads_postgres(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = tmp_path / "server.crt"
    cert.write_text("one")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pg_ctl").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/called\n")
    (fake_bin / "pg_ctl").chmod(0o755)
    runner = cron.Runner([], [str(cert)], "/data", str(fake_bin))
    runner.check_certificates()
    assert not (tmp_path / "called").exists()  # unchanged: nothing done
    cert.write_text("two, longer")
    runner.check_certificates()
    assert (tmp_path / "called").read_text().split() == ["-D", "/data", "reload"]
    assert "PostgreSQL reloaded" in capsys.readouterr().out
