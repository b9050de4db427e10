"""Thresholds and quorum: exact integer arithmetic, bases, and the boundary of pass/fail."""

from __future__ import annotations

from fractions import Fraction

import pytest
from factories import ready
from hypothesis import given, settings
from hypothesis import strategies as st

from chamber.core import events as ev
from chamber.core.threshold import Threshold, base_value
from chamber.core.values import Base, Key, VoteSubject

HALF = Threshold(num=1, den=2, base=Base.COMPOSITION, strict=True)
TWO_THIRDS = Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False)
THREE_QUARTERS = Threshold(num=3, den=4, base=Base.COMPOSITION, strict=False)


@pytest.mark.parametrize(
    ("threshold", "composition", "required"),
    [
        (HALF, 43, 22),
        (TWO_THIRDS, 43, 29),
        (THREE_QUARTERS, 43, 33),
        (HALF, 42, 22),
        (TWO_THIRDS, 42, 28),
        (THREE_QUARTERS, 42, 32),
        (Threshold(num=1, den=2, strict=False), 42, 21),
        (Threshold(num=1, den=2, strict=False), 43, 22),
        (Threshold(num=2, den=3, strict=True), 42, 29),
        (Threshold(num=1, den=1, strict=False), 43, 43),
        (HALF, 0, 1),
        (TWO_THIRDS, 0, 1),  # at least 2/3 of nobody: still one vote in favour is needed
        (Threshold(num=1, den=2, strict=False, base=Base.CAST), 0, 1),
    ],
)
def test_required_table(threshold: Threshold, composition: int, required: int) -> None:
    assert threshold.required(composition) == required
    assert threshold.passes(required, composition)
    assert not threshold.passes(required - 1, composition)


def test_nobody_voting_adopts_nothing() -> None:
    at_least_half_of_cast = Threshold(num=1, den=2, strict=False, base=Base.CAST)
    assert not at_least_half_of_cast.passes(0, 0)  # no presses at all
    assert not Threshold(num=1, den=2, strict=False, base=Base.CAST_WITHOUT_ABSTENTIONS).passes(0, 0)  # all abstain
    assert at_least_half_of_cast.passes(1, 1)


@pytest.mark.parametrize(("count", "passes"), [(21, False), (22, True), (43, True), (0, False)])
def test_more_than_half_of_43_boundary(count: int, passes: bool) -> None:
    assert HALF.passes(count, 43) is passes


def test_strict_at_exact_fraction_fails_non_strict_passes() -> None:
    # 28/42 is exactly two thirds: "at least" passes, "more than" does not
    assert Threshold(num=2, den=3, strict=False).passes(28, 42) is True
    assert Threshold(num=2, den=3, strict=True).passes(28, 42) is False
    assert Threshold(num=2, den=3, strict=True).passes(29, 42) is True
    # 21/42 is exactly half
    assert Threshold(num=1, den=2, strict=False).passes(21, 42) is True
    assert Threshold(num=1, den=2, strict=True).passes(21, 42) is False
    # 30/40 is exactly three quarters
    assert THREE_QUARTERS.passes(30, 40) is True
    assert THREE_QUARTERS.passes(29, 40) is False


@pytest.mark.parametrize(("num", "den"), [(0, 2), (3, 2), (1, 0), (-1, 2), (1, -2)])
def test_bad_fraction_refused(num: int, den: int) -> None:
    with pytest.raises(ValueError):
        Threshold(num=num, den=den)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (Base.COMPOSITION, 43),
        (Base.REGISTERED, 30),
        (Base.CAST, 12 + 7 + 5),
        (Base.CAST_WITHOUT_ABSTENTIONS, 12 + 7),
    ],
)
def test_base_value(base: Base, expected: int) -> None:
    assert base_value(base, composition=43, registered=30, yes=12, no=7, abstain=5) == expected


def test_describe() -> None:
    assert HALF.describe() == "more than 1/2 of composition"
    assert TWO_THIRDS.describe() == "at least 2/3 of composition"
    assert HALF.describe_uk() == "більше ніж 1/2 загального складу"


@pytest.mark.parametrize(("registered", "quorum"), [(21, False), (22, True)])
def test_quorum_of_43(registered: int, quorum: bool) -> None:
    d = ready(43, registered=range(1, registered + 1))
    snap = d.sitting.snapshot()
    assert snap.registered == registered
    assert snap.quorum is quorum
    assert d.sitting.rounds[-1].count == registered
    assert d.sitting.rounds[-1].quorum is quorum


def test_quorum_of_42_needs_22() -> None:
    assert ready(42, registered=range(1, 22)).sitting.has_quorum is False
    assert ready(42, registered=range(1, 23)).sitting.has_quorum is True


@pytest.mark.parametrize(
    ("threshold", "yes", "no", "abstain", "required", "adopted"),
    [
        # 10 registered of 12 seats; deputies 1..10 present
        (Threshold(num=1, den=2, base=Base.REGISTERED), 5, 3, 2, 6, False),
        (Threshold(num=1, den=2, base=Base.REGISTERED), 6, 3, 1, 6, True),
        (Threshold(num=1, den=2, base=Base.CAST), 4, 2, 2, 5, False),  # cast 8 -> more than 4
        (Threshold(num=1, den=2, base=Base.CAST), 5, 2, 2, 5, True),  # cast 9 -> more than 4.5
        (Threshold(num=1, den=2, base=Base.CAST_WITHOUT_ABSTENTIONS), 4, 3, 3, 4, True),  # 7 -> more than 3.5
        (Threshold(num=1, den=2, base=Base.CAST_WITHOUT_ABSTENTIONS), 3, 3, 4, 4, False),
        (Threshold(num=1, den=2, base=Base.COMPOSITION), 6, 0, 0, 7, False),  # composition 12
        (Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False), 8, 0, 0, 8, True),
    ],
)
def test_vote_result_uses_the_base(
    threshold: Threshold, yes: int, no: int, abstain: int, required: int, adopted: bool
) -> None:
    d = ready(12, carded=range(1, 11))
    d.ok(ev.OpenVote(subject=VoteSubject.PROCEDURAL, threshold=threshold, duration_s=0))
    keys = [Key.YES] * yes + [Key.NO] * no + [Key.ABSTAIN] * abstain
    d.vote({seat: key for seat, key in enumerate(keys, start=1)})
    d.ok(ev.CloseVote())
    result = d.sitting.results[1]
    assert result.counts == (yes, no, abstain)
    assert result.registered == 10
    assert result.composition == 12
    assert result.required == required
    assert result.adopted is adopted
    assert result.result_uk == ("Прийнято" if adopted else "Не прийнято")


@settings(max_examples=300, deadline=None)
@given(
    q=st.integers(min_value=1, max_value=50),
    p_frac=st.fractions(min_value=0, max_value=1),
    b=st.integers(min_value=0, max_value=2000),
    strict=st.booleans(),
)
def test_required_is_smallest_passing_count(q: int, p_frac: Fraction, b: int, strict: bool) -> None:
    p = max(1, min(q, int(p_frac * q)))
    t = Threshold(num=p, den=q, strict=strict)
    n = t.required(b)
    fraction = Fraction(p, q)

    def exact(count: int) -> bool:
        if count < 1:  # a decision needs at least one vote in favour, whatever the fraction
            return False
        if b == 0:  # count/0 is undefined: compare count with p/q * 0 = 0
            return count > 0
        share = Fraction(count, b)
        return share > fraction if strict else share >= fraction

    assert exact(n)
    assert t.passes(n, b)
    if n > 0:
        assert not exact(n - 1)
        assert not t.passes(n - 1, b)
    for count in (n - 1, n, n + 1, b, 0):
        if count >= 0:
            assert t.passes(count, b) is exact(count)


# --- thresholds no vote can meet (issue 7) --------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "composition", "voters", "reason"),
    [
        (
            Threshold(num=1, den=1, strict=True),
            43,
            None,
            "more than 1/1 of composition needs 44 votes, but the composition is 43",
        ),
        (
            Threshold(num=1, den=1, strict=False),
            43,
            42,
            "at least 1/1 of composition needs 43 votes, but only 42 of the composition of 43 can vote",
        ),
        (
            Threshold(num=99, den=100, strict=False),
            43,
            42,
            "at least 99/100 of composition needs 43 votes, but only 42 of the composition of 43 can vote",
        ),
        (
            Threshold(num=1, den=1, strict=True, base=Base.REGISTERED),
            43,
            None,
            "more than 1/1 of registered needs more votes than there are registered deputies "
            "(44 with all 43 of the composition registered)",
        ),
        (
            Threshold(num=1, den=1, strict=True, base=Base.CAST),
            43,
            None,
            "more than 1/1 of cast needs more votes in favour than votes cast "
            "(44 with all 43 of the composition voting)",
        ),
        (
            Threshold(num=1, den=1, strict=True, base=Base.CAST_WITHOUT_ABSTENTIONS),
            43,
            None,
            "more than 1/1 of cast_without_abstentions needs more votes in favour than votes for and against "
            "(44 with all 43 of the composition voting)",
        ),
        (
            Threshold(num=1, den=2, strict=False, base=Base.CAST),
            1,
            0,
            "at least 1/2 of cast needs at least one vote in favour, but nobody in the composition of 1 can vote",
        ),
    ],
)
def test_unreachable_threshold_says_why(
    threshold: Threshold, composition: int, voters: int | None, reason: str
) -> None:
    assert threshold.unreachable(composition, voters) == reason


def test_unreachable_counts_deputies_for_a_quorum() -> None:
    assert Threshold(num=1, den=1).unreachable(43, counting="deputies") == (
        "more than 1/1 of composition needs 44 deputies, but the composition is 43"
    )


@pytest.mark.parametrize(
    "threshold",
    [HALF, TWO_THIRDS, THREE_QUARTERS, Threshold(num=1, den=1, strict=False)]
    + [Threshold(num=1, den=1, strict=False, base=base) for base in Base],
)
def test_reachable_thresholds_pass(threshold: Threshold) -> None:
    assert threshold.unreachable(43) is None
    assert threshold.unreachable(43, 43) is None


def test_a_head_outside_the_composition_does_not_make_more_than_all_reachable() -> None:
    # 43 in the composition, and a head who votes but is not counted: 44 voters
    assert Threshold(num=1, den=1).unreachable(43, 44) is not None


@settings(max_examples=300, deadline=None)
@given(
    p=st.integers(min_value=1, max_value=12),
    q=st.integers(min_value=1, max_value=12),
    composition=st.integers(min_value=1, max_value=40),
    missing=st.integers(min_value=0, max_value=2),
    strict=st.booleans(),
    base=st.sampled_from(list(Base)),
)
def test_unreachable_agrees_with_a_search_of_every_vote(
    p: int, q: int, composition: int, missing: int, strict: bool, base: Base
) -> None:
    """Unreachable exactly when no possible vote passes: yes votes at most those who can vote (and at
    most the composition), and the base at least the votes in favour (except the composition)."""
    if p > q:
        p, q = q, p
    t = Threshold(num=p, den=q, base=base, strict=strict)
    voters = max(0, composition - missing)
    most_yes = min(composition, voters)
    if base is Base.COMPOSITION:
        possible = t.passes(most_yes, composition)
    else:  # the base ranges over yes..composition; those who vote are among it
        possible = any(t.passes(yes, b) for b in range(composition + 1) for yes in range(min(b, most_yes) + 1))
    assert (t.unreachable(composition, voters) is None) is possible
