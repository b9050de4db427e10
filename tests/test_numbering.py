"""The identity of a console's key event is (boot, seq): repeats are refused, new presses never are.

``chamber.core.numbering`` on its own, and through the sitting, including a replay of the journal
form and the old rule for journals written before events carried their boot.
"""

from __future__ import annotations

from factories import ready
from hypothesis import example, given
from hypothesis import strategies as st

from chamber.core import events as ev
from chamber.core.effects import Alert, ChoiceAccepted
from chamber.core.numbering import CHOICE, CONFLICT, NEW, REPEAT, WINDOW, Numbering, kind_of
from chamber.core.values import Key, VoteKind

YES = Key.YES
SPEAK = Key.SPEAK


def test_a_power_up_makes_old_numbers_new() -> None:
    n = Numbering()
    assert [n.classify(1, s, YES) for s in range(5)] == [NEW] * 5
    assert n.classify(1, 3, YES) == REPEAT  # not yet acknowledged: reported again
    assert [n.classify(2, s, YES) for s in range(5)] == [NEW] * 5  # the same numbers after a power cut


def test_a_reported_restart_does_not_make_a_repeat_new() -> None:
    """A restart flag seen at start-up may be one the previous controller never cleared: the console
    did not restart, and its unacknowledged events must stay repeats.  The boot decides."""
    n = Numbering()
    n.classify(4, 10, SPEAK)
    n.restarted()
    assert n.classify(4, 10, SPEAK) == REPEAT


def test_a_number_taken_for_another_key_is_a_conflict_counted_as_new() -> None:
    n = Numbering()
    for s, kind in enumerate((Key.REGISTER, YES, SPEAK)):
        assert n.classify(9, s, kind) == NEW
    assert n.classify(9, 0, YES) == CONFLICT  # 0 was Реєстрація: this press is not that one
    assert n.classify(9, 0, YES) == REPEAT  # and is itself recognised when reported again
    assert n.classify(9, 1, SPEAK) == NEW  # the numbering goes on from it


def test_a_number_further_back_than_the_fifo_is_a_conflict() -> None:
    n = Numbering()
    for s in range(40):
        n.classify(1, s, YES)
    assert n.classify(1, 39 - WINDOW, YES) == CONFLICT
    assert n.classify(1, 40 - WINDOW, YES) == NEW  # after the conflict the numbering restarted there


def test_choices_are_one_kind_so_a_secret_ballot_and_its_key_agree() -> None:
    assert kind_of(Key.YES) == kind_of(Key.NO) == kind_of(None) == CHOICE
    assert kind_of(Key.SPEAK) != kind_of(Key.REGISTER)


def test_journals_without_a_boot_keep_the_old_rule() -> None:
    n = Numbering()
    assert n.classify(None, 5, YES) == NEW
    assert n.classify(None, 3, SPEAK) == REPEAT  # at or before the newest: a repeat, whatever the key
    n.restarted()  # the only restart signal old journals had
    assert n.classify(None, 0, YES) == NEW


KEYS = st.sampled_from([Key.YES, Key.NO, Key.SPEAK, Key.REGISTER, None])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), KEYS), max_size=200))
@example([(0, 13, Key.YES), (0, 30, Key.YES), (0, 29, Key.YES)])  # 29 never taken; its slot holds 13
def test_an_identity_is_refused_only_if_the_same_press_was_taken(events: list[tuple[int, int, Key | None]]) -> None:
    """Whatever the order: REPEAT only for (boot, seq) taken before under the same boot with a key of
    the same kind, and a press never taken is never a repeat."""
    n = Numbering()
    taken: dict[tuple[int, int], Key | None] = {}
    for boot, seq, key in events:
        verdict = n.classify(boot, seq, key)
        if verdict == REPEAT:
            assert (boot, seq) in taken and kind_of(taken[(boot, seq)]) == kind_of(key)
        else:
            taken[(boot, seq)] = key


@given(st.integers(0, 0xFFFF), st.lists(KEYS, min_size=1, max_size=80), st.integers(0, 15))
def test_every_unacknowledged_event_read_again_is_a_repeat(start: int, keys: list[Key | None], back: int) -> None:
    """A console's FIFO repeats its 16 newest events, across the 16-bit wrap too: each is a REPEAT."""
    n = Numbering()
    for i, key in enumerate(keys):
        assert n.classify(3, (start + i) & 0xFFFF, key) == NEW
    i = max(0, len(keys) - 1 - back)
    assert n.classify(3, (start + i) & 0xFFFF, keys[i]) == REPEAT


def test_the_sitting_counts_presses_after_a_power_cut_and_refuses_true_repeats() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    assert d.apply(ev.KeyPressed(seat=2, key=Key.YES, seq=0, boot=7)) == (ChoiceAccepted(seat=2, option=0),)
    assert d.reject(ev.KeyPressed(seat=2, key=Key.YES, seq=0, boot=7)).reason == "duplicate_event"
    d.ok(ev.SeatCameOnline(seat=2, restarted=True))  # even unreported, the boot below would tell
    assert d.apply(ev.KeyPressed(seat=2, key=Key.NO, seq=0, boot=8)) == (ChoiceAccepted(seat=2, option=1),)
    assert d.sitting.vote is not None and d.sitting.vote.choices[2] == 1


def test_a_conflict_is_counted_and_raises_an_alert() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    d.apply(ev.KeyPressed(seat=3, key=Key.SPEAK, seq=0, boot=1))
    effects = d.apply(ev.KeyPressed(seat=3, key=Key.NO, seq=0, boot=1))
    assert effects[0] == ChoiceAccepted(seat=3, option=1)
    assert isinstance(effects[-1], Alert) and effects[-1].kind == "event_conflict" and effects[-1].seat == 3


def test_a_secret_ballot_carries_its_boot_into_the_journal_and_replays_alike() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=0))
    press = ev.KeyPressed(seat=2, key=Key.NO, seq=4, boot=3)
    form = d.sitting.journal_form(press)
    assert form == ev.SecretBallotCast(seat=2, seq=4, boot=3)
    d.apply(press)
    assert d.reject(ev.KeyPressed(seat=2, key=Key.YES, seq=4, boot=3)).reason == "duplicate_event"
    replayed = ready(5)
    replayed.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=0))
    replayed.apply(form)
    assert replayed.reject(ev.SecretBallotCast(seat=2, seq=4, boot=3)).reason == "duplicate_event"
