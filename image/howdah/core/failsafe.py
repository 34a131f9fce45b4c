"""Failsafe mode in the decision (pure): what changes when ``failsafe_mode`` is on.

- A primary that cannot reach the DCS keeps running while every member of the
  ``/failsafe`` key confirmed it this cycle (``local.failsafe`` says by whom);
  without that confirmation the usual rule applies (demote once the lease is
  older than loop_wait + retry_timeout).
- With no leader key, a replica that got ``POST /failsafe`` within ttl
  (``local.failsafe_leader``) follows that leader and does not race, and a
  member missing from a non-empty ``/failsafe`` key never races (it is unknown
  to the leader that may still run a primary without the DCS).
- A replica following such a leader keeps its slots from the positions the
  leader sent (``slot_view``), as /status cannot be read.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from howdah.core.models import ClusterView, Leader, LocalState
from howdah.core.settings import Settings
from howdah.core.transitions import Decision, Goal, Reason


def keep_leading(local: LocalState, settings: Settings) -> Decision | None:
    """DCS unreachable on a running primary: keep it while the round confirmed."""
    if not settings.failsafe_mode or local.failsafe is None:
        return None
    return Decision(Goal.KEEP_WAITING, Reason.FAILSAFE,
                    f"DCS unreachable; failsafe mode: running as the primary, {local.failsafe}")


def hold_race(view: ClusterView, local: LocalState, settings: Settings) -> Decision | None:
    """No leader key, a running replica: the failsafe rules that keep it from racing."""
    if not settings.failsafe_mode:
        return None
    pinged = local.failsafe_leader
    if pinged is not None and pinged != local.name:
        return Decision(Goal.STAY_BEHIND, Reason.FAILSAFE,
                        f"no leader key, but {pinged} runs in failsafe mode and asked us "
                        "within ttl: following it, not racing", pinged)
    members = view.failsafe
    if members and local.name not in members:
        return Decision(Goal.STAY_BEHIND, Reason.NOT_IN_FAILSAFE,
                        "no leader, but this member is not in the /failsafe key ("
                        + ", ".join(sorted(members)) + "): not racing")
    return None


def slot_view(view: ClusterView, leader: str, slots: Mapping[str, int]) -> ClusterView:
    """The last DCS view as the failsafe leader tells it: that member leads and
    its POST /failsafe positions replace the /status ones it names (the members
    and retained slots stay as last read)."""
    held = view.leader if view.leader is not None and view.leader.name == leader else None
    return replace(view, leader=held or Leader(leader, 0), slots={**view.slots, **slots})
