"""Restore drills, the pure parts: where the result goes, what is annotated, the scratch copy's
isolation settings, the refusal of a scratch directory inside the data directory, /metrics, and
howdahctl's one-line errors.  The drill itself runs in tests/local/test_s3_drill.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from howdah.api.metrics import render_metrics
from howdah.core.status import NodeStatus
from howdah.backup import drill, record
from howdah.backup.checks import DrillFailure, _split_name
from howdah.ctl import main as ctl_main


def test_status_path_order(tmp_path: Path) -> None:
    assert record.status_path({"HOWDAH_DRILL_STATUS_FILE": "/x/y.json", "HOWDAH_RUN_DIR": "/r"}) == Path("/x/y.json")
    assert record.status_path({"HOWDAH_RUN_DIR": "/r"}) == Path("/r/drill-status.json")
    if not Path("/run/howdah").is_dir():
        assert record.status_path({"HOME": str(tmp_path)}) == tmp_path / "drill-status.json"


def test_save_keeps_last_passed_and_counts_failures(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    assert record.save(path, {"result": "passed", "backup": "A"}) == ""
    record.save(path, {"result": "failed", "backup": "B"})
    record.save(path, {"result": "failed", "backup": "C"})
    state = record.load(path)
    assert state["last"]["backup"] == "C" and state["last_passed"]["backup"] == "A"
    assert state["consecutive_failures"] == 2 and state["drills_failed"] == 2 and state["drills_passed"] == 1
    record.save(path, {"result": "passed", "backup": "D"})
    assert record.load(path)["consecutive_failures"] == 0
    assert record.save(tmp_path / "new" / "x.json", {"result": "passed"}) == ""  # parents made
    (tmp_path / "blocker").write_text("")
    assert "cannot write" in record.save(tmp_path / "blocker" / "x.json", {"result": "passed"})


def test_annotation_pairs_are_short_single_lines() -> None:
    pairs = record.annotation_pairs({"result": "failed", "finished_at": "2026-12-03T11:00:00+00:00",
                                     "seconds": 12.5, "error": "line one\nline two " + "x" * 500})
    assert pairs[0] == "howdah-drill=failed" and "howdah-drill-seconds=12.5" in pairs
    error = next(p for p in pairs if p.startswith("howdah-drill-error="))
    assert "\n" not in error and len(error) < 230


def test_table_names() -> None:
    assert _split_name("t") == ["t"] and _split_name("s.t") == ["s", "t"]
    assert _split_name('"My S"."t.x"') == ["My S", "t.x"] and _split_name('"a""b"') == ['a"b']
    for bad in ("a.b.c", "", "s."):
        with pytest.raises(DrillFailure, match="--tables"):
            _split_name(bad)


def test_isolation_settings_win_in_the_copy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "postgresql.auto.conf").write_text("restore_command = 'pgbackrest archive-get %f \"%p\"'\n")
    (data / "standby.signal").write_text("")
    (data / "recovery.signal").write_text("")
    drill.isolate(drill.Plan(pgbackrest=("pgbackrest",), scratch_parent=tmp_path), tmp_path, 54321)
    text = (data / "postgresql.auto.conf").read_text()
    for line in ("port = '54321'", "listen_addresses = ''", f"unix_socket_directories = '{tmp_path}'",
                 "archive_mode = 'off'", "archive_cleanup_command = ''", "primary_conninfo = ''",
                 "synchronous_standby_names = ''", f"hba_file = '{tmp_path / 'hba.conf'}'"):
        assert line in text.splitlines(), line
    assert text.startswith("restore_command")  # pgBackRest's recovery settings stay
    assert not (data / "standby.signal").exists() and (data / "recovery.signal").exists()
    assert (tmp_path / "hba.conf").read_text() == "local all all trust\n"


def test_scratch_never_inside_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "pgdata"
    data.mkdir()
    plan = drill.Plan(pgbackrest=("pgbackrest",), scratch_parent=data / "sub", data_dir=data)
    with pytest.raises(DrillFailure, match="inside the data directory"):
        drill.make_scratch(plan)
    assert not (data / "sub").exists()
    made = drill.make_scratch(drill.Plan(pgbackrest=("pgbackrest",), scratch_parent=tmp_path, data_dir=data))
    assert made.parent == tmp_path.resolve() and made.name.startswith("howdah-drill-") and not any(made.iterdir())


def test_metrics_of_the_last_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "drill.json"
    monkeypatch.setenv("HOWDAH_DRILL_STATUS_FILE", str(path))
    status = NodeStatus(name="n2", scope="demo")
    assert b"howdah_backup_drill" not in render_metrics(lambda: status, lambda: 0.0), "nothing before a drill"
    record.save(path, {"result": "passed", "backup": "20261203-1F", "seconds": 8.5, "restore_seconds": 4.0,
                       "finished_at": "2026-12-03T11:00:00+00:00"})
    record.save(path, {"result": "failed", "backup": "20261203-2F", "seconds": 3.0,
                       "finished_at": "2026-12-03T12:00:00+00:00"})
    text = render_metrics(lambda: status, lambda: 0.0).decode()
    assert 'howdah_backup_drill_last_passed{name="n2",scope="demo"} 0.0' in text
    assert 'howdah_backup_drill_consecutive_failures{name="n2",scope="demo"} 1.0' in text
    assert 'howdah_backup_drill_last_duration_seconds{name="n2",scope="demo"} 3.0' in text
    assert 'howdah_backup_drill_last_success_time{name="n2",scope="demo"} 1.7962956e+09' in text
    assert 'howdah_backup_drill_info{backup="20261203-2F",name="n2",result="failed",scope="demo"} 1.0' in text


@pytest.mark.parametrize("argv, message", [
    (["backup"], "a verb is required: verify"),
    (["backup", "verify", "--sample", "x"], "--sample: 'x' is not a whole number"),
    (["backup", "verify", "--archive-timeout", "0"], "not a positive number of seconds"),
])
def test_ctl_errors_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "h.yml"
    cfg.write_text("scope: demo\nname: n1\netcd3: {hosts: '127.0.0.1:1'}\n")
    code = ctl_main.main(["-c", str(cfg), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_ctl_missing_pgbackrest_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "h.yml"
    cfg.write_text("scope: demo\nname: n1\netcd3: {hosts: '127.0.0.1:1'}\n")
    code = ctl_main.main(["-c", str(cfg), "backup", "verify", "--no-primary",
                          f"--pgbackrest-config={tmp_path / 'none.conf'}"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--pgbackrest-config" in err and "does not exist" in err


def test_summary_line() -> None:
    line = drill_summary()
    assert line.startswith("backup B passed its restore drill in 9.0s (restore 4.0s, replay 2.0s, checks 1.0s)")
    assert "1 table(s) with the primary's row counts" in line and "amcheck: 3 index(es)" in line


def drill_summary() -> str:
    from howdah.ctl.backup import summary

    return summary({"backup": "B", "seconds": 9.0, "restore_seconds": 4.0, "replay_seconds": 2.0,
                    "check_seconds": 1.0, "checks": {"databases": 2, "row_counts": {"t": [1, 1]},
                                                     "indexes_checked": 3, "heaps_checked": 1, "amcheck": "ran"}})



def _settings(**env: str):  # type: ignore[no-untyped-def]
    from howdah.entrypoint import settings
    from howdah.entrypoint.memory import sizing

    base = {"SCOPE": "demo", "ETCD3_HOSTS": "etcd:2379", "PGUSER_SUPERUSER": "postgres", **env}
    return settings.load(base, settings.Facts(hostname="n", ip="127.0.0.1", memory=sizing(1024 ** 3)))


def test_backup_verify_schedule_becomes_a_crontab_line() -> None:
    from howdah.entrypoint import render

    s3 = {"WAL_S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert _settings(**s3).crontab == ()
    s = _settings(**s3, BACKUP_VERIFY_SCHEDULE="30 3 * * 0", BACKUP_VERIFY_OPTIONS="--tables='public.a,b' --sample=5",
                  CRONTAB='["0 1 * * * vacuumdb -a"]')
    assert s.crontab == ("0 1 * * * vacuumdb -a",
                         "30 3 * * 0 howdahctl backup verify --scheduled --tables=public.a,b --sample=5")
    files = render.render_all(s)
    assert "howdahctl backup verify --scheduled" in files["crontab"][0]
    assert "[program:cron]" in files["supervisord.conf"][0]


@pytest.mark.parametrize("env, message", [
    ({"BACKUP_VERIFY_SCHEDULE": "30 3 * *"}, "BACKUP_VERIFY_SCHEDULE"),
    ({"BACKUP_VERIFY_SCHEDULE": "30 99 * * 0"}, "BACKUP_VERIFY_SCHEDULE"),
    ({"BACKUP_VERIFY_SCHEDULE": "30 3 * * 0", "BACKUP_VERIFY_OPTIONS": "rm -rf"}, "BACKUP_VERIFY_OPTIONS"),
    ({"BACKUP_VERIFY_SCHEDULE": "30 3 * * 0", "BACKUP_VERIFY_OPTIONS": "--tables='x"}, "BACKUP_VERIFY_OPTIONS"),
])
def test_backup_verify_schedule_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    from howdah.entrypoint.errors import EnvError

    with pytest.raises(EnvError) as caught:
        _settings(WAL_S3_BUCKET="b", AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", **env)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_backup_verify_schedule_needs_a_repository() -> None:
    from howdah.entrypoint.errors import EnvError

    with pytest.raises(EnvError, match="no backup repository"):
        _settings(BACKUP_VERIFY_SCHEDULE="30 3 * * 0")
