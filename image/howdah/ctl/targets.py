"""Choosing the members a command acts on: names given, else all, filtered by role."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from howdah.core.models import Member

from .api import Unreachable
from .dcs import Snapshot
from .errors import CtlError

if TYPE_CHECKING:
    from .context import Ctx

ROLES = ("leader", "primary", "standby-leader", "replica", "any")


def has_role(snap: Snapshot, member: Member, role: str) -> bool:
    is_leader = member.name == snap.leader_name
    if role in ("leader", "primary"):
        return is_leader and (role == "leader" or member.role == "primary")
    if role == "standby-leader":
        return is_leader and member.role == "standby_leader"
    if role == "replica":
        return not is_leader
    return True


def select(snap: Snapshot, names: Sequence[str], role: str = "any") -> list[Member]:
    """The named members (all when none are named) that have `role`; CtlError if none."""
    chosen = [snap.member(n) for n in dict.fromkeys(names)] if names else list(snap.view.members)
    picked = [m for m in chosen if has_role(snap, m, role)]
    if not picked:
        what = ", ".join(names) if names else "the cluster"
        raise CtlError(f"no member of {what} has role {role!r}" if snap.view.members
                       else f"cluster {snap.scope!r} has no members")
    return picked


def post_each(ctx: "Ctx", members: Sequence[Member], path: str, body: Any, verb: str,
              timeout: float | None = None) -> None:
    """POST to every member in turn, one line per member; CtlError naming the failures."""
    failed = []
    for member in members:
        ctx.stderr.write(f"{member.name}: asking for a {verb}\n")
        try:
            reply = ctx.api.call(member, "POST", path, body, timeout=timeout)
        except Unreachable as exc:
            failed.append(member.name)
            ctx.say(f"{member.name}: {verb} failed: {exc}")
            continue
        if reply.status in (200, 202):
            ctx.say(f"{member.name}: {reply.text or verb + ' accepted'}")
        else:
            failed.append(member.name)
            hint = " (set ctl.authentication)" if reply.status == 401 else ""
            ctx.say(f"{member.name}: {verb} failed ({reply.status}): "
                    f"{reply.text or 'no message'}{hint}")
    if failed:
        raise CtlError(f"{verb} failed on {', '.join(failed)}")
