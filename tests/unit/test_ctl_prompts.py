"""Confirmations, typed confirmations, progress output and scheduled times."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from howdah.ctl.config import CtlConfig
from howdah.ctl.context import Ctx
from howdah.ctl.dcs import Snapshot
from howdah.ctl.errors import Aborted, CtlError
from howdah.ctl.remove import AWARE, confirm_removal
from howdah.ctl.switchover import parse_when
from howdah.ctl.ui import Progress, ask, confirm, typed_confirm, wait_for
from howdah.dcs.base import build_view


def streams(answers: str) -> tuple[io.StringIO, io.StringIO]:
    return io.StringIO(answers), io.StringIO()


@pytest.mark.parametrize("answer", ["y\n", "Y\n", "yes\n", " YES \n"])
def test_confirm_accepts_yes(answer: str) -> None:
    stdin, stdout = streams(answer)
    confirm("Go?", stdin=stdin, stdout=stdout)
    assert stdout.getvalue() == "Go? [y/N]: "


@pytest.mark.parametrize("answer", ["\n", "n\n", "no\n", "sure\n"])
def test_confirm_defaults_to_no(answer: str) -> None:
    stdin, stdout = streams(answer)
    with pytest.raises(Aborted, match="nothing changed"):
        confirm("Go?", stdin=stdin, stdout=stdout)


def test_confirm_on_closed_stdin_says_use_force() -> None:
    stdin, stdout = streams("")
    with pytest.raises(Aborted, match="--force"):
        confirm("Go?", stdin=stdin, stdout=stdout)


def test_force_never_reads() -> None:
    stdin, stdout = streams("")
    confirm("Go?", force=True, stdin=stdin, stdout=stdout)
    assert stdout.getvalue() == ""


def test_ask_takes_the_default_on_empty() -> None:
    assert ask("Candidate", "n2", *streams("\n")) == "n2"
    assert ask("Candidate", "n2", *streams("n3\n")) == "n3"


def test_typed_confirm_needs_the_exact_text() -> None:
    typed_confirm("Type it", "Yes I am aware", *streams("Yes I am aware\n"))
    with pytest.raises(Aborted):
        typed_confirm("Type it", "Yes I am aware", *streams("yes i am aware\n"))


def removal_ctx(answers: str, leader_running: bool) -> tuple[Ctx, Snapshot]:
    nodes: dict[str, tuple[str | None, int]] = {
        "members/n1": (json.dumps({"state": "running" if leader_running else "stopped",
                                   "role": "primary"}), 3),
        "leader": ("n1", 4)}
    ctx = Ctx(CtlConfig("demo", "/service/", {"host": "127.0.0.1:2379"}),
              stdin=io.StringIO(answers), stdout=io.StringIO(), stderr=io.StringIO())
    return ctx, Snapshot(build_view(nodes, 5), "demo")


def test_removal_asks_name_then_awareness_then_leader() -> None:
    ctx, snap = removal_ctx(f"demo\n{AWARE}\nn1\n", leader_running=True)
    confirm_removal(ctx, snap)
    asked = ctx.stdout.getvalue()
    assert asked.index("name of the cluster") < asked.index(AWARE) < asked.index("n1 holds")


def test_removal_without_a_running_leader_asks_two_questions() -> None:
    ctx, snap = removal_ctx(f"demo\n{AWARE}\n", leader_running=False)
    confirm_removal(ctx, snap)
    assert "holds the leader lock" not in ctx.stdout.getvalue()


@pytest.mark.parametrize("answers", ["demo2\n", f"demo\nYes\n", f"demo\n{AWARE}\nn2\n", ""])
def test_removal_aborts_on_any_wrong_answer(answers: str) -> None:
    ctx, snap = removal_ctx(answers, leader_running=True)
    with pytest.raises(Aborted):
        confirm_removal(ctx, snap)


def test_progress_on_a_pipe_prints_each_new_message_once() -> None:
    out = io.StringIO()
    p = Progress(out, tty=False)
    for msg in ["waiting: n1", "waiting: n1", "waiting: n2"]:
        p.update(msg)
    p.done("done")
    assert out.getvalue() == "waiting: n1\nwaiting: n2\ndone\n"


def test_progress_on_a_tty_rewrites_one_line() -> None:
    out = io.StringIO()
    p = Progress(out, tty=True)
    p.update("waiting")
    p.update("waiting")
    p.done()
    assert out.getvalue().count("\n") == 0 and out.getvalue().count("\r") == 3


def test_wait_for_returns_the_value_or_times_out_with_the_last_note() -> None:
    seen = iter([(None, "n2: starting"), ("n2", "")])
    assert wait_for("n2", lambda: next(seen), 5, Progress(io.StringIO(), tty=False), 0) == "n2"
    with pytest.raises(CtlError, match="last seen: n2: starting"):
        wait_for("n2", lambda: (None, "n2: starting"), 0, Progress(io.StringIO(), tty=False), 0)


def test_parse_when() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_when(None) is None and parse_when("now") is None
    assert parse_when("2030-01-01T13:00Z", now) == now + timedelta(hours=1)
    aware = parse_when("2030-01-01T14:00+01:00", now)
    assert aware == now + timedelta(hours=1)
    naive = parse_when("2099-01-01T00:00")
    assert naive is not None and naive.tzinfo is not None
    with pytest.raises(CtlError, match="ISO 8601"):
        parse_when("tomorrow")
    with pytest.raises(CtlError, match="past"):
        parse_when("2029-12-31T00:00Z", now)
