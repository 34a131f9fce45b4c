"""scripts/aws_hook.py: throttling and transient errors are retried, permanent ones are not."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.scripts import load_script

botocore_exceptions = pytest.importorskip("botocore.exceptions")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "aws_hook.py"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    return load_script("scripts/aws_hook.py")


def client_error(code: str, status: int = 400) -> Exception:
    error: Exception = botocore_exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "AssociateAddress")
    return error


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_throttling_and_5xx_are_retried_with_growing_backoff(hook: ModuleType) -> None:
    call = Flaky(client_error("RequestLimitExceeded", 503), client_error("Throttling"),
                 client_error("InternalError", 500), botocore_exceptions.EndpointConnectionError(endpoint_url="x"))
    clock = Clock()
    assert hook.retry("associate", call, 20, sleep=clock.sleep, clock=clock) == "ok"
    assert call.calls == 5 and len(clock.sleeps) == 4
    assert clock.sleeps[3] > clock.sleeps[0]  # 0.2 s doubling each time, with jitter of at most half


def test_permanent_error_is_not_retried(hook: ModuleType) -> None:
    call = Flaky(client_error("InvalidAllocationID.NotFound"))
    clock = Clock()
    with pytest.raises(hook.PermanentError, match="associate failed: InvalidAllocationID.NotFound"):
        hook.retry("associate", call, 20, sleep=clock.sleep, clock=clock)
    assert call.calls == 1 and clock.sleeps == []


def test_retries_stop_at_the_budget(hook: ModuleType) -> None:
    call = Flaky(*[client_error("Throttling")] * 100)
    clock = Clock()
    with pytest.raises(hook.PermanentError, match="still failing after .* attempts"):
        hook.retry("tag", call, 3, sleep=clock.sleep, clock=clock)
    assert clock.now <= 3


def test_stop_and_reload_do_nothing(hook: ModuleType) -> None:
    env: dict[str, Any] = {"AWS_INSTANCE_ID": "i-1", "AWS_REGION": "us-east-1", "EIP_ALLOCATION": "eipalloc-1"}
    assert hook.run("on_stop", "primary", "demo", env) == 0
    assert hook.run("on_reload", "replica", "demo", env) == 0


def test_no_metadata_service_is_one_clear_line(hook: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
    assert hook.run("on_start", "primary", "demo", env) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "set AWS_INSTANCE_ID" in err[0]


def test_the_retry_budget_fits_the_hook_timeout(hook: ModuleType) -> None:
    assert hook.retry_budget({}) == 20
    assert hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": "30"}) == 20  # 30 less 5 s of margin
    assert hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": "12"}) == pytest.approx(8.8)
    assert hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": "30", "HOWDAH_AWS_RETRY_SECONDS": "5"}) == 5
    assert hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": "8", "HOWDAH_AWS_RETRY_SECONDS": "60"}) == pytest.approx(5.2)
    assert hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": "1"}) == 0
    assert hook.retry_budget({"HOWDAH_AWS_RETRY_SECONDS": "x"}) == 20
    for timeout in (1, 3, 8, 10, 30, 60, 600):
        budget = hook.retry_budget({"HOWDAH_HOOK_TIMEOUT": str(timeout), "HOWDAH_AWS_RETRY_SECONDS": "1000"})
        assert budget == 0 or budget + hook.hook_margin(timeout) <= timeout + 1e-9
        attempt = hook.attempt_seconds(budget)
        assert attempt <= hook.MAX_ATTEMPT and (budget < 0.4 or 2 * attempt <= budget + 1e-9)
        assert sum(hook.attempt_timeouts(attempt)) <= attempt + 1e-9


class SlowFlaky(Flaky):
    """Each call takes `seconds` of the clock, then fails (or succeeds once the errors are used)."""

    def __init__(self, clock: Clock, seconds: float, *errors: Exception) -> None:
        super().__init__(*errors)
        self.clock, self.seconds = clock, seconds

    def __call__(self) -> str:
        self.clock.now += self.seconds
        return super().__call__()


def test_no_attempt_starts_that_would_end_after_the_budget(hook: ModuleType) -> None:
    # the worst case of a run: every call times out (8 s) and is retried; four calls share
    # one deadline and the run still ends within it
    clock = Clock()
    budget, attempt = 20.0, hook.attempt_seconds(20.0)
    deadline = budget
    outcomes = []
    for what in ("describe", "associate", "volumes", "tag"):
        call = SlowFlaky(clock, attempt, *[client_error("RequestTimeout", 500)] * 100)
        try:
            hook.retry(what, call, max(0.0, deadline - clock.now), sleep=clock.sleep, clock=clock,
                       attempt_seconds=attempt)
        except hook.PermanentError as exc:
            outcomes.append(str(exc))
        assert clock.now <= deadline, (what, clock.now)
    assert "still failing after 2 attempts" in outcomes[0], outcomes
    assert all("not tried" in o for o in outcomes[1:]), outcomes
    # a call that succeeds on its second attempt, with room for it
    clock = Clock()
    ok = SlowFlaky(clock, 2.0, client_error("Throttling"))
    assert hook.retry("tag", ok, 10.0, sleep=clock.sleep, clock=clock, attempt_seconds=2.0) == "ok"
    assert ok.calls == 2 and clock.now <= 10


def test_one_budget_is_shared_by_every_call(hook: ModuleType) -> None:
    import time as real_time
    deadline = real_time.monotonic() + 3
    real_time.sleep(0.01)
    assert 0 < hook.left(deadline) < 3
    assert hook.left(real_time.monotonic() - 1) == 0
