"""Synchronous replication planning: the key and synchronous_standby_names change safely."""
from howdah.core.sync import SyncStep, may_promote, plan, ssn_value
from howdah.pg.query import parse_ssn, parse_ssn_count

TAGS = {"a": {}, "b": {}, "c": {"nosync": True}}


def rep(name: str, sync: str = "async", state: str = "streaming") -> dict[str, str]:
    return {"application_name": name, "state": state, "sync_state": sync}


def test_adding_a_standby_goes_to_ssn_first_then_to_the_key_once_confirmed() -> None:
    step = plan((), (), [rep("a"), rep("b")], TAGS, 1)
    assert step == SyncStep(ssn=("a",), detail=step.detail if step else "")
    assert plan((), ("a",), [rep("a"), rep("b")], TAGS, 1) is None, "wait for confirmation"
    step = plan((), ("a",), [rep("a", "sync"), rep("b")], TAGS, 1)
    assert step is not None and step.key == ("a",) and step.ssn is None


def test_removing_a_standby_leaves_the_key_before_ssn() -> None:
    step = plan(("a",), ("a",), [rep("b")], TAGS, 1)
    assert step is not None and step.key == () and step.ssn is None
    step = plan((), ("a",), [rep("b")], TAGS, 1)
    assert step is not None and step.ssn == ("b",) and step.key is None


def test_nosync_and_non_streaming_standbys_are_never_synchronous() -> None:
    assert plan((), (), [rep("c"), rep("a", state="catchup")], TAGS, 1) is None
    step = plan((), (), [rep("c"), rep("b")], TAGS, 1)
    assert step is not None and step.ssn == ("b",)


def test_steady_state_is_no_step() -> None:
    assert plan(("a",), ("a",), [rep("a", "sync"), rep("b")], TAGS, 1) is None


def test_ssn_value_and_parse_round_trip() -> None:
    assert ssn_value(("a", 'we"ird'), 1, False) == '1 (a,"we""ird")'
    assert parse_ssn('1 (a,"we""ird")') == ["a", 'we"ird']
    assert ssn_value(("n1",), 1, False) == "n1", "one standby: bare, as Patroni writes it"
    assert ssn_value(("n3", "n1"), 2, False) == "2 (n1,n3)"
    assert ssn_value(("n3", "N1"), 1, False, quorum=True) == 'ANY 1 ("N1",n3)'
    assert parse_ssn_count("ANY 1 (n1,n3)") == (1, False)
    assert parse_ssn_count("n1") == (1, False) and parse_ssn_count("") == (0, False)
    assert parse_ssn_count("*") == (1, True) and parse_ssn_count("2 (a,b)") == (2, False)
    assert ssn_value((), 1, False) == "" and ssn_value((), 1, True) == "*"
    assert parse_ssn("*") == [] and parse_ssn("") == [] and parse_ssn("FIRST 2 (x, y)") == ["x", "y"]


def test_only_listed_standbys_may_promote_in_synchronous_mode() -> None:
    assert may_promote("a", "l", ("a",), True)
    assert not may_promote("b", "l", ("a",), True)
    assert not may_promote("b", "l", (), True), "an empty key means no standby has every commit"
    assert may_promote("b", None, (), True), "no key yet: asynchronous rules"
    assert may_promote("b", "l", ("a",), False)


def test_a_standby_joins_the_key_only_once_it_caught_up() -> None:
    """It must have the commits acknowledged before ssn named it."""
    rows = [rep("a", "sync"), rep("b")]
    assert plan((), ("a",), rows, TAGS, 1, caught_up=set()) is None
    step = plan((), ("a",), rows, TAGS, 1, caught_up={"a"})
    assert step is not None and step.key == ("a",)
