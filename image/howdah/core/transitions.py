"""Goals, the actions that reach them, and the reasons a goal is chosen.

decide() picks a goal and a reason; the actions come from TRANSITIONS, one
row per goal.  Executors are idempotent and run the actions in order; a
failed action stops the rest of the row for that cycle.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(str, enum.Enum):
    RENEW_LOCK = "renew_lock"
    ACQUIRE_LOCK = "acquire_lock"
    RELEASE_LOCK = "release_lock"
    TAKE_INITIALIZE = "take_initialize"
    CLEAR_INITIALIZE = "clear_initialize"
    BOOTSTRAP = "bootstrap"
    CREATE_REPLICA = "create_replica"
    REINITIALIZE = "reinitialize"
    REWIND = "rewind"
    START_PRIMARY = "start_primary"
    START_REPLICA = "start_replica"
    PROMOTE = "promote"
    DEMOTE = "demote"
    FOLLOW = "follow"
    STOP_FOR_HANDOVER = "stop_for_handover"
    HAND_LOCK = "hand_lock"
    CLEAR_FAILOVER = "clear_failover"
    SYNC_REPLICATION = "sync_replication"
    FOLLOW_REMOTE = "follow_remote"
    RESTART = "restart"
    RELOAD = "reload"
    REINITIALIZE_NOW = "reinitialize_now"
    REJECT_REQUEST = "reject_request"
    WRITE_STATUS = "write_status"
    SYNC_SLOTS = "sync_slots"
    STOP_POSTGRES = "stop_postgres"


class Goal(str, enum.Enum):
    BOOTSTRAP = "bootstrap"
    WAIT_BOOTSTRAP = "wait_bootstrap"
    CLEAR_ABANDONED_BOOTSTRAP = "clear_abandoned_bootstrap"
    LEAD_TASK = "lead_task"
    WAIT_TASK = "wait_task"
    LEAD = "lead"
    PROMOTE_HELD = "promote_held"
    RESTART_PRIMARY = "restart_primary"
    START_LEADER_READONLY = "start_leader_readonly"
    RELEASE_AFTER_CRASH = "release_after_crash"
    RELEASE_NO_DATA = "release_no_data"
    RACE = "race"
    STAY_BEHIND = "stay_behind"
    START_READONLY = "start_readonly"
    DEMOTE = "demote"
    REWIND = "rewind"
    REINITIALIZE = "reinitialize"
    NEED_OPERATOR = "need_operator"
    START_REPLICA = "start_replica"
    FOLLOW = "follow"
    REPLICATE = "replicate"
    CREATE_REPLICA = "create_replica"
    WAIT_LEADER = "wait_leader"
    SYSID_MISMATCH = "sysid_mismatch"
    KEEP_WAITING = "keep_waiting"
    PAUSED = "paused"
    PAUSED_LEAD = "paused_lead"
    PAUSED_TAKE_LOCK = "paused_take_lock"
    LEAD_STANDBY = "lead_standby"
    HAND_OVER = "hand_over"
    LEAD_CLEAR_FAILOVER = "lead_clear_failover"
    RESTART = "restart"
    RESTART_LEADER = "restart_leader"
    RELOAD = "reload"
    RELOAD_LEADER = "reload_leader"
    REINIT_REQUESTED = "reinit_requested"
    REJECT_REQUEST = "reject_request"
    STEP_DOWN = "step_down"
    RELEASE_UNGUARDED = "release_unguarded"


A = Action
TRANSITIONS: dict[Goal, tuple[Action, ...]] = {
    # Empty cluster, empty data: take the lock, then `initialize`, then initdb.
    # Lock first: "" in `initialize` with no lock then always means abandoned.
    Goal.BOOTSTRAP: (A.ACQUIRE_LOCK, A.TAKE_INITIALIZE, A.BOOTSTRAP),
    # Another node is bootstrapping: nothing to clone yet.
    Goal.WAIT_BOOTSTRAP: (),
    # `initialize` is "" and nobody holds the lock: the bootstrapper died; free it.
    Goal.CLEAR_ABANDONED_BOOTSTRAP: (A.CLEAR_INITIALIZE,),
    # Long work runs while we hold the lock: keep the lease alive.
    Goal.LEAD_TASK: (A.RENEW_LOCK,),
    # Long work runs (basebackup, rewind, start): wait for it.
    Goal.WAIT_TASK: (),
    # The healthy leader: renew, publish the optime, keep members' slots.
    Goal.LEAD: (A.RENEW_LOCK, A.SYNC_SLOTS, A.WRITE_STATUS, A.SYNC_REPLICATION),
    # Standby cluster: the lock holder replicates from the remote primary.
    Goal.LEAD_STANDBY: (A.RENEW_LOCK, A.FOLLOW_REMOTE, A.SYNC_SLOTS, A.WRITE_STATUS),
    # We hold the lock and run as a replica (won the race): promote.
    Goal.PROMOTE_HELD: (A.RENEW_LOCK, A.PROMOTE),
    # Postgres died under the leader: restart it in place, keep the lease.
    Goal.RESTART_PRIMARY: (A.RENEW_LOCK, A.START_PRIMARY),
    # We hold the lock but our data is a replica's: start it, promote next cycle.
    Goal.START_LEADER_READONLY: (A.RENEW_LOCK, A.START_REPLICA),
    # This node cannot guard a primary (no fence, no required watchdog): stop
    # writing first, then let another node lead.
    Goal.STEP_DOWN: (A.DEMOTE, A.RELEASE_LOCK),
    Goal.RELEASE_UNGUARDED: (A.RELEASE_LOCK,),
    # Postgres did not come back within primary_start_timeout: let another lead.
    # A postmaster still in crash recovery is stopped first: it would open
    # read-write later, with another node leading (issue 10 item 8).
    Goal.RELEASE_AFTER_CRASH: (A.STOP_POSTGRES, A.RELEASE_LOCK),
    # We hold the lock with no data to serve: let it go.
    Goal.RELEASE_NO_DATA: (A.RELEASE_LOCK,),
    # No leader and nobody reachable is ahead of us: take the lock, then promote.
    Goal.RACE: (A.ACQUIRE_LOCK, A.PROMOTE),
    # No leader, but a peer is ahead or we may not fail over: stay a replica.
    Goal.STAY_BEHIND: (),
    # No leader and postgres is down: start read-only before racing.
    Goal.START_READONLY: (A.START_REPLICA,),
    # We run as a primary without the lock (lost it, or DCS unreachable): stop writes.
    Goal.DEMOTE: (A.DEMOTE,),
    # A former primary must follow a new leader: pg_rewind first.
    Goal.REWIND: (A.REWIND,),
    # Rewind failed and the config allows it: clone again from the leader.
    Goal.REINITIALIZE: (A.REINITIALIZE,),
    # Rewind failed and removing data is not allowed: wait for an operator.
    Goal.NEED_OPERATOR: (),
    # Postgres is down on a replica: start it following the leader.
    Goal.START_REPLICA: (A.START_REPLICA,),
    # Running replica pointed at the wrong upstream: repoint it.
    Goal.FOLLOW: (A.FOLLOW,),
    # Running replica streaming from the right place: nothing to do.
    Goal.REPLICATE: (),
    # Empty data and a running leader: clone a replica.
    Goal.CREATE_REPLICA: (A.CREATE_REPLICA,),
    # Empty data, cluster initialized, no leader to clone from: wait.
    Goal.WAIT_LEADER: (),
    # Our data belongs to another cluster: refuse to touch it.
    Goal.SYSID_MISMATCH: (),
    # DCS unreachable but the lease still has time: retry the DCS soon.
    Goal.KEEP_WAITING: (),
    # Maintenance mode: the agent changes nothing.
    Goal.PAUSED: (),
    # Maintenance mode on the leader: keep the lock only.
    Goal.PAUSED_LEAD: (A.RENEW_LOCK,),
    # Maintenance mode, no leader, postgres runs as a primary here: take the lock only.
    Goal.PAUSED_TAKE_LOCK: (A.ACQUIRE_LOCK,),
    # A due switchover: stop postgres (the walsenders ship every last byte to
    # the replicas before it exits), then pass the lock straight to the target.
    Goal.HAND_OVER: (A.RENEW_LOCK, A.STOP_FOR_HANDOVER, A.HAND_LOCK),
    # Restart asked through the API: stop and start postgres in its current role.
    Goal.RESTART: (A.RESTART,),
    # The same on the leader, which keeps its lease while postgres restarts.
    Goal.RESTART_LEADER: (A.RENEW_LOCK, A.RESTART),
    # Reload asked through the API: rewrite postgresql.conf, SIGHUP postgres.
    Goal.RELOAD: (A.RELOAD,),
    Goal.RELOAD_LEADER: (A.RENEW_LOCK, A.RELOAD),
    # Reinitialize asked through the API on a replica: wipe and clone again.
    Goal.REINIT_REQUESTED: (A.REINITIALIZE_NOW,),
    # A request this node must refuse (reinitialize on the leader).
    Goal.REJECT_REQUEST: (A.RENEW_LOCK, A.REJECT_REQUEST),
    # A switchover that is done, stale or impossible: lead on and clear the key.
    Goal.LEAD_CLEAR_FAILOVER: (A.RENEW_LOCK, A.CLEAR_FAILOVER, A.SYNC_SLOTS, A.WRITE_STATUS,
                               A.SYNC_REPLICATION),
}


class Reason(str, enum.Enum):
    CLUSTER_EMPTY = "cluster_empty"
    BOOTSTRAP_RUNNING = "bootstrap_running"
    BOOTSTRAP_ABANDONED = "bootstrap_abandoned"
    TASK_RUNNING = "task_running"
    HEALTHY_LEADER = "healthy_leader"
    HOLD_LOCK_AS_REPLICA = "hold_lock_as_replica"
    PG_CRASHED = "pg_crashed"
    START_TIMEOUT = "start_timeout"
    NO_DATA = "no_data"
    HEALTHIEST = "healthiest"
    PEER_AHEAD = "peer_ahead"
    PRIMARY_ALIVE = "primary_alive"
    NOT_ELIGIBLE = "not_eligible"
    LAGGING = "lagging"
    PG_DOWN = "pg_down"
    LOST_LOCK = "lost_lock"
    DCS_UNREACHABLE = "dcs_unreachable"
    DCS_RETRYING = "dcs_retrying"
    FORMER_PRIMARY = "former_primary"
    REWIND_FAILED = "rewind_failed"
    WRONG_UPSTREAM = "wrong_upstream"
    STREAMING = "streaming"
    NO_LEADER = "no_leader"
    LEADER_NOT_READY = "leader_not_ready"
    SYSID_MISMATCH = "sysid_mismatch"
    SWITCHOVER = "switchover"
    MANUAL_FAILOVER = "manual_failover"
    FAILOVER_STALE = "failover_stale"
    FAILOVER_DONE = "failover_done"
    CANDIDATE_UNHEALTHY = "candidate_unhealthy"
    NO_CANDIDATE = "no_candidate"
    NOT_SYNC = "not_sync"
    NO_QUORUM = "no_quorum"
    STANDBY_CLUSTER = "standby_cluster"
    REQUESTED = "requested"
    REFUSED = "refused"
    PAUSED = "paused"
    UNGUARDED = "unguarded"
    FAILSAFE = "failsafe"
    NOT_IN_FAILSAFE = "not_in_failsafe"
    TIMELINE_BEHIND = "timeline_behind"
    DIVERGED = "diverged"
    NOSTREAM = "nostream"


@dataclass(frozen=True)
class Decision:
    goal: Goal
    reason: Reason
    detail: str
    target: str | None = None  # member to follow, clone from or rewind against

    @property
    def actions(self) -> tuple[Action, ...]:
        return TRANSITIONS[self.goal]
