"""chamber bench recovery: the script is deterministic, the comparison counts what differs, and two real
SIGKILLs of a real controller (during the registration and in an open vote) at 16 seats lose nothing.

The timing goals (restart_p99_s, 10 crashes within 55 s) are the bench's to check on a quiet machine,
not this test's: it asserts only what must hold however loaded the machine is.
"""

from __future__ import annotations

import random

from chamber.bench_recovery import SLOTS, bench_recovery, differences, kill_plan
from chamber.recovery_plan import expected, make_plan


def test_the_same_seed_gives_the_same_script() -> None:
    a, b = make_plan(7, seats=60), make_plan(7, seats=60)
    assert a == b
    assert make_plan(8, seats=60) != a
    assert len(set(a.speakers)) == 3 and not set(a.speakers) & a.absent
    for vote in a.votes:  # a seat's presses keep their order: its last key is its final choice
        seats = [p.seat for p in vote.presses]
        assert set(vote.final_choices()) == set(seats)
    want = expected(a)
    assert want["registered"] == sorted(set(range(1, 61)) - a.absent)
    for vote in want["votes"].values():
        assert sum(vote["counts"]) == sum(1 for c in vote["per_name"].values() if c in ("yes", "no", "abstain"))


def test_differences_are_counted_one_per_leaf() -> None:
    base = {"votes": {"1": {"counts": [3, 1, 0], "per_name": {"1": "yes", "2": "no"}}}, "speeches": [[5, 5]]}
    same = {"votes": {"1": {"counts": [3, 1, 0], "per_name": {"1": "yes", "2": "no"}}}, "speeches": [[5, 5]]}
    assert differences(base, same) == []
    other = {"votes": {"1": {"counts": [2, 2, 0], "per_name": {"1": "no", "2": "no"}}}, "speeches": []}
    found = differences(base, other)
    assert len(found) == 3 and any("per_name/1" in d for d in found) and any("speeches" in d for d in found)


def test_kills_are_dealt_over_the_points_in_turn() -> None:
    plan = kill_plan(12, len(SLOTS), 0.6, random.Random(1))
    assert [sum(len(d) for d in k.values()) for k in plan] == [10, 2]
    assert set(plan[0]) == {"registration", "vote:1", "vote:2", "close:1", "close:2", "web", "export"}
    assert all(0 <= d <= 0.03 for d in plan[0]["close:1"])


def test_two_crashes_lose_nothing() -> None:
    result = bench_recovery(crashes=2, seats=16, lines=2, seed=3)
    assert result["crashes"] == 2
    assert result["crash_points"] == {"registration": 1, "vote": 1}
    assert result["not_resumed"] == 0
    assert result["script_diffs"] == 0, result["diff_examples"]
    assert (result["lost"], result["duplicated"], result["diffs"]) == (0, 0, 0), result["diff_examples"]
    assert result["dropped_by_consoles"] == 0
    assert result["exports"] == 1  # the crashed sitting's protocol PDF served after its restart
    assert result["controller_exit"] == 0  # the last controller stopped cleanly on SIGTERM
