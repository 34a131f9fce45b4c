"""core/slots.py: which slots a node keeps, drops and publishes (Patroni 4 rules)."""
from __future__ import annotations

import pytest

from howdah.core import slots as plan
from howdah.core.models import ClusterView, Leader, Member
from howdah.core.settings import SettingsError, build_settings


def view(*members: Member, leader: str = "a", slots: dict[str, int] | None = None,
         retain: tuple[str, ...] = ()) -> ClusterView:
    return ClusterView(leader=Leader(leader, 1), members=members, slots=slots or {},
                       retain_slots=retain)


PERM, _ = plan.parse_permanent({"p": {"type": "physical"},
                                "l": {"type": "logical", "database": "db", "plugin": "pgoutput"}})


def test_every_node_keeps_a_slot_per_other_member_and_the_permanent_ones() -> None:
    v = view(Member("a"), Member("b"), Member("c-1"), slots={"b": 10, "l": 7})
    lead = plan.wanted(v, "a", {}, True, PERM, 1800, False)
    assert set(lead) == {"b", "c_1", "p", "l"}
    assert lead["b"].expected_active and lead["b"].lsn == 10
    rep = plan.wanted(v, "b", {}, False, PERM, 1800, False)
    assert set(rep) == {"a", "c_1", "p", "l"}
    assert not rep["a"].expected_active and rep["l"].lsn == 7


def test_nostream_members_get_no_slot_and_nofailover_nodes_no_permanent_ones() -> None:
    v = view(Member("a"), Member("b", tags={"nostream": True}), Member("c"))
    assert set(plan.wanted(v, "a", {}, True, PERM, 1800, False)) == {"c", "p", "l"}
    assert set(plan.wanted(v, "c", {"nofailover": True}, False, PERM, 1800, False)) == set()
    # a nostream node replicates from the archive: no logical slot there
    assert "l" not in plan.wanted(v, "b", {"nostream": True}, False, PERM, 1800, False)


def test_without_retention_slots_follow_the_topology() -> None:
    v = view(Member("a"), Member("b"), Member("c", tags={"replicatefrom": "b"}))
    assert set(plan.wanted(v, "a", {}, True, {}, 0, False)) == {"b"}
    assert set(plan.wanted(v, "b", {}, False, {}, 0, False)) == {"c"}


def test_retained_slots_of_departed_members_are_kept_and_expire() -> None:
    v = view(Member("a"), retain=("a", "gone"))
    want = plan.wanted(v, "a", {}, True, {}, 1800, False)
    assert set(want) == {"gone"} and want["gone"].expected_active is None
    kept = plan.retain({"gone": 100.0}, v, "a", {"a": 5}, {}, 60, 150.0)
    assert kept == {"gone": 100.0, "a": 150.0}
    assert plan.retain(kept, v, "a", {"a": 5}, {}, 60, 161.0) == {"a": 161.0}


def test_drops_unknown_lost_and_changed_slots_but_never_ignored_ones() -> None:
    want = {"b": plan.SlotSpec("b"), "l": plan.SlotSpec("l", "logical", "db", "pgoutput")}
    existing = {
        "b": {"type": "physical", "restart_lsn": 5, "wal_status": "lost"},
        "l": {"type": "logical", "database": "db", "plugin": "test_decoding", "restart_lsn": 1},
        "stray": {"type": "physical", "restart_lsn": 1},
        "keep": {"type": "logical", "database": "x", "plugin": "wal2json", "restart_lsn": 1},
    }
    rules, errors = plan.parse_ignore([{"plugin": "wal2json"}])
    assert not errors
    assert [n for n, _ in plan.to_drop(existing, want, rules)] == ["b", "l", "stray"]


def test_publishes_positions_and_its_own_slot() -> None:
    want = {"b": plan.SlotSpec("b"), "l": plan.SlotSpec("l", "logical", "db", "x", permanent=True)}
    existing = {"b": {"type": "physical", "restart_lsn": 5},
                "l": {"type": "logical", "confirmed_flush_lsn": 9}, "z": {"type": "physical"}}
    assert plan.publishable(existing, want, "a", 42, 1800) == {"b": 5, "l": 9, "a": 42}
    assert plan.publishable(existing, want, "a", 42, 0) == {"l": 9}


def test_bad_slot_config_is_one_line_per_entry() -> None:
    slots, errors = plan.parse_permanent({"Bad-Name": {}, "x": {"type": "logical"},
                                          "ok": None})
    assert set(slots) == {"ok"} and len(errors) == 2
    assert errors[0].startswith("slots.Bad-Name:")
    with pytest.raises(SettingsError, match="member_slots_ttl"):
        build_settings({"member_slots_ttl": "soon"}, {})
    assert build_settings({"member_slots_ttl": "30min"}, {}).member_slots_ttl == 1800
    s = build_settings({"slots": {"l": {"type": "logical", "database": "d", "plugin": "p"}}}, {})
    assert s.parameters["hot_standby_feedback"] == "on"
