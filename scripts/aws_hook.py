#!/usr/bin/python3
"""howdah-aws-hook ACTION ROLE SCOPE: follow the primary with an Elastic IP and role tags.

On on_start, on_restart and on_role_change:
* tag this instance and its EBS volumes with the role (key ``Role``, or HOWDAH_ROLE_TAG);
* when the role is primary or standby_leader and an Elastic IP is configured, associate it
  with this instance (taking it over from the old primary).
on_stop and on_reload change nothing.

Configuration (environment):
  EIP_ALLOCATION (or AWS_EIP_ALLOCATION, ELASTIC_IP)  eipalloc-... or the public address
  HOWDAH_ROLE_TAG         tag key (default Role)
  AWS_INSTANCE_ID         this instance (default: asked from the metadata service, IMDSv2)
  AWS_REGION / AWS_DEFAULT_REGION   (default: the metadata service's region)
  AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL / AWS_ENDPOINT   EC2 endpoint (default AWS)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, instance role
  AWS_EC2_METADATA_SERVICE_ENDPOINT  metadata service (default http://169.254.169.254)
  HOWDAH_AWS_RETRY_SECONDS  the time the whole run may take (default 20)
  HOWDAH_HOOK_TIMEOUT       the dispatcher's per-hook timeout (it sets it): the run's time is
                            at most this less a margin, so the hook ends before it is killed

Throttling, 5xx and connection errors are retried with exponential backoff and jitter; any
other error is permanent: one line naming the call and the AWS error code, exit 1.  One
deadline covers the whole run (metadata, the leader check, every EC2 attempt and the waits
between them): an attempt starts only when its connect and read timeouts still end before the
deadline.  The hook never touches PostgreSQL.
"""
from __future__ import annotations

import os
import random
import sys
import time
import urllib.request
from typing import Any, Callable, Mapping, Sequence, TypeVar

from howdah.agent.callbacks import still_leader

PROG = "howdah-aws-hook"
EIP_VARIABLES = ("EIP_ALLOCATION", "AWS_EIP_ALLOCATION", "ELASTIC_IP")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
LEADER_ROLES = ("primary", "standby_leader")
TAGGING_ACTIONS = ("on_start", "on_restart", "on_role_change")
TRANSIENT_CODES = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "SlowDown", "EC2ThrottledException",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete",
}
T = TypeVar("T")


class PermanentError(Exception):
    """An AWS error that retrying cannot fix (bad allocation id, no permission, ...)."""


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def first(env: Mapping[str, str], names: Sequence[str]) -> str:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), "")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    from botocore import exceptions as bex

    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError,
                        bex.ConnectionClosedError)):
        return True
    if isinstance(exc, bex.ClientError):
        code = _code(exc)
        status = int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return False


def retry(what: str, call: Callable[[], T], budget: float, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic, attempt_seconds: float = 0.0) -> T:
    """call() until it succeeds; transient errors are retried with backoff within budget seconds.
    Each call may take attempt_seconds: none starts that could not end within the budget."""
    deadline = clock() + budget
    delay = 0.2
    attempt = 1
    if budget < attempt_seconds:
        raise PermanentError(f"{what} not tried: {budget:.1f}s of the run's time left, one attempt "
                             f"may take {attempt_seconds:g}s (HOWDAH_AWS_RETRY_SECONDS, HOWDAH_HOOK_TIMEOUT)")
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below
            reason = _code(exc) or type(exc).__name__
            if not is_transient(exc):
                raise PermanentError(f"{what} failed: {reason}: {exc}") from None
            wait = min(delay, 5.0) * random.uniform(0.5, 1.0)
            if clock() + wait + attempt_seconds > deadline:
                raise PermanentError(f"{what} still failing after {attempt} attempts "
                                     f"({budget:.1f}s): {reason}: {exc}") from None
            say(f"{what}: {reason} (transient), retry {attempt} in {wait:.1f}s")
            sleep(wait)
            delay *= 2
            attempt += 1


def metadata(env: Mapping[str, str], path: str, timeout: float = 2.0) -> str:
    """GET latest/meta-data/<path> from the instance metadata service, IMDSv2 (token first)."""
    base = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip() or "http://169.254.169.254"
    base = base.rstrip("/")
    token_req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                       headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(token_req, timeout=timeout) as resp:
        token = resp.read().decode()
    req = urllib.request.Request(f"{base}/latest/meta-data/{path}",
                                 headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return str(resp.read().decode().strip())


def ec2_client(env: Mapping[str, str], region: str, attempt: float = 8.0) -> Any:
    """An EC2 client whose one attempt (connect + read timeouts) takes at most `attempt` s."""
    import boto3
    from botocore.config import Config

    endpoint = first(env, ENDPOINT_VARIABLES) or None
    connect, read = attempt_timeouts(attempt)
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=connect, read_timeout=read)
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint, config=config)


def left(deadline: float) -> float:
    """Seconds of the hook's one retry budget still left (shared by every call it makes)."""
    return max(0.0, deadline - time.monotonic())


def allocation_id(ec2: Any, eip: str, deadline: float) -> tuple[str, str, str]:
    """(allocation id, public IP, instance it is associated with now or '')."""
    key = {"AllocationIds": [eip]} if eip.startswith("eipalloc-") else {"PublicIps": [eip]}
    found = retry(f"describe Elastic IP {eip}", lambda: ec2.describe_addresses(**key), left(deadline),
                  attempt_seconds=ATTEMPT)
    addresses = found.get("Addresses", [])
    if not addresses:
        raise PermanentError(f"Elastic IP {eip} not found in this region; check EIP_ALLOCATION")
    addr = addresses[0]
    return str(addr.get("AllocationId", "")), str(addr.get("PublicIp", "")), str(addr.get("InstanceId", "") or "")


def associate(ec2: Any, eip: str, instance: str, deadline: float) -> None:
    alloc, public_ip, current = allocation_id(ec2, eip, deadline)
    if current == instance:
        say(f"Elastic IP {public_ip} ({alloc}) is already on {instance}")
        return
    retry(f"associate Elastic IP {public_ip} with {instance}",
          lambda: ec2.associate_address(AllocationId=alloc, InstanceId=instance, AllowReassociation=True),
          left(deadline), attempt_seconds=ATTEMPT)
    say(f"Elastic IP {public_ip} ({alloc}) associated with {instance}" + (f" (was on {current})" if current else ""))


def tag(ec2: Any, instance: str, key: str, role: str, deadline: float) -> None:
    found = retry(f"list the volumes of {instance}", lambda: ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]), left(deadline),
        attempt_seconds=ATTEMPT)
    volumes = [str(v["VolumeId"]) for v in found.get("Volumes", [])]
    retry(f"tag {instance} {key}={role}", lambda: ec2.create_tags(
        Resources=[instance, *volumes], Tags=[{"Key": key, "Value": role}]), left(deadline),
        attempt_seconds=ATTEMPT)
    say(f"tagged {instance} and {len(volumes)} volume(s) {key}={role}")


MAX_ATTEMPT = 8.0  # seconds one EC2 call may take (connect 3 s + read 5 s), less in a short run
ATTEMPT = MAX_ATTEMPT  # this run's (set by run() from its budget)


def attempt_timeouts(attempt: float) -> tuple[float, float]:
    """(connect, read) timeouts of one EC2 call taking at most `attempt` seconds, 3:5."""
    return round(attempt * 3 / 8, 2), round(attempt * 5 / 8, 2)


def hook_margin(timeout: float) -> float:
    """What the run leaves of the dispatcher's timeout: the interpreter's start and exit."""
    return 2.0 + timeout / 10


def retry_budget(env: Mapping[str, str]) -> float:
    """The run's time, from its start to its last attempt's end: HOWDAH_AWS_RETRY_SECONDS (20),
    and at most the dispatcher's per-hook timeout (HOWDAH_HOOK_TIMEOUT) less hook_margin()."""
    try:
        budget = float(env.get("HOWDAH_AWS_RETRY_SECONDS", "").strip() or 20)
    except ValueError:
        budget = 20.0
    try:
        timeout = float(env.get("HOWDAH_HOOK_TIMEOUT", "").strip() or 0)
    except ValueError:
        timeout = 0.0
    if timeout > 0:
        budget = min(budget, timeout - hook_margin(timeout))
    return max(budget, 0.0)


def attempt_seconds(budget: float) -> float:
    """One EC2 call's longest time in a run of `budget` seconds: at least two attempts fit."""
    return max(0.2, min(MAX_ATTEMPT, budget / 2))


def run(action: str, role: str, scope: str, env: Mapping[str, str]) -> int:
    if action not in TAGGING_ACTIONS:
        return 0
    global ATTEMPT
    budget = retry_budget(env)
    deadline = time.monotonic() + budget
    ATTEMPT = attempt_seconds(budget)
    eip = first(env, EIP_VARIABLES)
    instance = env.get("AWS_INSTANCE_ID", "").strip()
    region = first(env, ("AWS_REGION", "AWS_DEFAULT_REGION"))
    try:
        if not instance:
            instance = metadata(env, "instance-id", min(2.0, max(0.1, left(deadline) / 8)))
        if not region:
            region = metadata(env, "placement/region", min(2.0, max(0.1, left(deadline) / 8)))
    except OSError as exc:
        say(f"cannot ask the instance metadata service ({exc}); set AWS_INSTANCE_ID and AWS_REGION")
        return 1
    try:
        ec2 = ec2_client(env, region, ATTEMPT)
        if role in LEADER_ROLES and eip:
            reason = still_leader(env, role, min(5.0, max(0.1, left(deadline) / 4)))
            if reason is not None:
                say(f"not moving {eip}: {reason}")
                return 4
            associate(ec2, eip, instance, deadline)
        tag(ec2, instance, env.get("HOWDAH_ROLE_TAG", "").strip() or "Role", role, deadline)
    except PermanentError as exc:
        say(f"{scope} {action} {role}: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. no credentials: one clear line, not a traceback
        say(f"{scope} {action} {role}: {type(exc).__name__}: {exc}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        say("usage: howdah-aws-hook ACTION ROLE SCOPE")
        return 2
    return run(args[0], args[1], args[2], os.environ)


if __name__ == "__main__":
    sys.exit(main())
