"""howdahctl argument parsing and its one-line errors (no cluster needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from howdah.ctl.errors import CtlError
from howdah.ctl.main import main, parse


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"expected one line, got {err!r}"
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("argv, key, value", [
    (["list"], "watch", None),
    (["list", "-W"], "watch", 2.0),
    (["list", "--watch", "5"], "watch", 5.0),
    (["switchover", "--leader", "n1", "--candidate", "n2", "--force"], "candidate", "n2"),
    (["switchover", "--primary", "n1"], "leader", "n1"),
    (["switchover", "--scheduled", "2030-01-01T10:00+00:00"], "scheduled", "2030-01-01T10:00+00:00"),
    (["failover", "--candidate", "n3"], "candidate", "n3"),
    (["restart", "n1", "n2", "--pending"], "members", ["n1", "n2"]),
    (["restart", "--role", "replica"], "role", "replica"),
    (["restart"], "members", []),
    (["reload", "n2"], "members", ["n2"]),
    (["reinit", "n2", "--force", "--wait"], "wait", True),
    (["edit-config", "--set", "ttl=40", "-s", "loop_wait=5"], "sets", ["ttl=40", "loop_wait=5"]),
    (["edit-config", "--pg", "work_mem=8MB"], "pgs", ["work_mem=8MB"]),
    (["pause", "--wait"], "paused", True),
    (["resume"], "paused", False),
    (["dsn"], "role", "leader"),
    (["dsn", "n2"], "member", "n2"),
    (["query", "-c", "SELECT 1", "--member", "n2"], "command", "SELECT 1"),
    (["remove", "demo"], "scope", "demo"),
    (["-c", "/x.yml", "history"], "config_file", "/x.yml"),
])
def test_arguments_parse(argv: list[str], key: str, value: object) -> None:
    assert getattr(parse(argv), key) == value


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["reinit"], ["query"], ["query", "-c", "x", "-f", "y"], ["remove"],
    ["restart", "--role", "king"], ["list", "--watch", "soon"], ["switchover", "--scheduled"],
])
def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                               argv: list[str]) -> None:
    code, err = one_line_error(capsys, argv)
    assert code == 2
    assert err.startswith("howdahctl")


def test_parse_raises_ctl_error_not_system_exit() -> None:
    with pytest.raises(CtlError) as info:
        parse(["dsn", "a", "b"])
    assert info.value.code == 2
    assert "unrecognized arguments" in str(info.value)


def test_missing_scope_is_one_line(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("HOWDAH_CONFIG", "PATRONICTL_CONFIG_FILE", "PATRONI_CONFIGURATION_FILE",
                "PATRONI_SCOPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, err = one_line_error(capsys, ["list"])
    assert code == 1 and "scope" in err


def test_unreadable_config_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = one_line_error(capsys, ["-c", str(tmp_path / "nope.yml"), "list"])
    assert code == 1 and "nope.yml" in err


def test_invalid_yaml_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("scope: x\netcd: [\n")
    code, err = one_line_error(capsys, ["-c", str(bad), "list"])
    assert code == 1 and "not valid YAML" in err


def test_refused_dcs_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("scope: demo\netcd:\n  host: 127.0.0.1:1\n")
    code, err = one_line_error(capsys, ["-c", str(cfg), "list"])
    assert code == 1
    assert "cannot reach etcd at 127.0.0.1:1" in err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "switchover" in capsys.readouterr().out
