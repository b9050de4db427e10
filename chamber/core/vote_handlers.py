"""Handlers of the vote commands (open, close, seal, announce, clear, cancel, annul) and of a timed
vote's end (``VoteTimeUp``, the deadline input the sitting makes itself).

Each is a function of (state, input, now) that returns the input's effects and never sets the phase:
the phase table (chamber.core.phases) says which phase follows when one accepts its input, e.g.
``OpenVote`` and ``VOTE_OPEN``, ``CloseVote`` or ``VoteTimeUp`` and ``VOTE_CLOSED``.  So what a
handler computes cannot depend on the phase it leads to: the consoles' mode of a vote being opened
comes from the vote (``vote_mode``), and the deadline is recomputed when the table moves the phase.
"""

from __future__ import annotations

import msgspec

from chamber.core import events as ev
from chamber.core.effects import (
    Alert,
    Effect,
    Mode,
    ModeChanged,
    SealSecretTally,
    VoteCancelled,
    VoteClosed,
    VoteOpened,
)
from chamber.core.state import NONE, Effects, SittingState, vote_mode
from chamber.core.values import VoteKind
from chamber.core.voting import UNKNOWN, VoteResult, VoteState

MAX_VOTE_S = 3600


def open_vote(s: SittingState, e: ev.OpenVote, now: int) -> Effects:
    if not s.has_quorum:
        return s.reject(e, "no_quorum", f"no quorum: {s.registered_count} registered of {s.composition}")
    n_prop = len(e.proposals)
    if e.kind is VoteKind.RATING and not 2 <= n_prop <= 9:
        return s.reject(e, "bad_proposals", f"a rating vote needs 2 to 9 proposals, got {n_prop}")
    if e.kind is not VoteKind.RATING and n_prop:
        return s.reject(e, "bad_proposals", "only rating votes have proposals")
    texts = [("title", e.title), ("legal_basis", e.legal_basis)]
    texts += [(f"proposals[{i}]", name) for i, name in enumerate(e.proposals)]
    refused = s.bad_text(e, texts)
    if refused is not None:
        return refused
    item, title = e.item, e.title
    if e.revote_of is not None:
        previous = s.results.get(e.revote_of)
        if previous is None:
            return s.reject(e, "unknown_vote", f"no finished vote {e.revote_of} to repeat")
        item = item if item is not None else previous.item
        title = title or previous.title
    if item is None:
        item = s.current_item
    elif s.agenda and all(i.number != item for i in s.agenda):
        return s.reject(e, "unknown_item", f"no agenda item {item}")
    duration = s.rules.vote_duration_s if e.duration_s is None else e.duration_s
    if not 0 <= duration <= MAX_VOTE_S:
        return s.reject(e, "bad_duration", f"vote duration must be 0..{MAX_VOTE_S} s, got {duration}")
    threshold = e.threshold or s.rules.thresholds[e.subject]
    impossible = threshold.unreachable(s.composition, len(s.voters))
    if impossible is not None:
        return s.reject(e, "impossible_threshold", f"the threshold can never be met: {impossible}")
    vote = VoteState(
        number=s.votes_opened + 1,
        kind=e.kind,
        subject=e.subject,
        title=title,
        item=item,
        threshold=threshold,
        proposals=e.proposals,
        revote_of=e.revote_of,
        opened_at=now,
        deadline=now + duration * 1000 if duration else None,
        registered=s.registered_count,
    )
    effects: list[Effect] = []
    if e.kind is VoteKind.SECRET and not e.legal_basis.strip():
        s.alerts += 1
        effects.append(Alert(kind="secret_without_basis", detail="secret ballot opened without a legal basis stated"))
    s.votes_opened += 1
    s.vote = vote
    effects.extend(s.floor.end_all(vote.opened_at, "vote_opened"))
    s.refresh_deadline()
    effects.append(VoteOpened(vote=vote.number))
    effects.append(vote_mode(vote))
    return tuple(effects)


def close_vote(s: SittingState, e: ev.CloseVote, now: int) -> Effects:
    return close_at(s, now)


def vote_time_up(s: SittingState, e: ev.VoteTimeUp, now: int) -> Effects:
    return close_at(s, now)  # ``now`` is the vote's deadline: it closed then, whenever it was noticed


def close_at(s: SittingState, at: int) -> Effects:
    """Close the open vote at ``at``: compute its result (or ask for the secret tally's seal)."""
    vote = s.vote
    assert vote is not None
    effects: list[Effect] = [ModeChanged(mode=Mode.IDLE)]
    if vote.secret:
        vote.deadline = None
        vote.closed_at = at
        if vote.counts_known:
            effects.append(SealSecretTally(vote=vote.number, counts=tuple(vote.tally)))
        effects.append(VoteClosed(vote=vote.number, adopted=None))
        return tuple(effects)
    result = result_of(s, vote, at)
    s.results[vote.number] = result
    effects.append(VoteClosed(vote=vote.number, adopted=result.adopted))
    return tuple(effects)


def result_of(s: SittingState, vote: VoteState, closed_at: int | None, cancelled: str | None = None) -> VoteResult:
    return vote.result(
        closed_at=closed_at,
        voters=s.voters,
        present=s.present(),
        composition=s.composition,
        cancelled=cancelled,
    )


def seal(s: SittingState, e: ev.SecretTallySealed, now: int) -> Effects:
    vote = s.vote
    if vote is None or not vote.secret or vote.sealed is not None or vote.number != e.vote:
        return s.reject(e, "nothing_to_seal", f"vote {e.vote} is not a closed secret vote awaiting its tally")
    if len(e.counts) != len(vote.tally) or sum(e.counts) != len(vote.choices) or min(e.counts) < 0:
        return s.reject(e, "seal_mismatch", f"sealed counts {e.counts} do not match {len(vote.choices)} ballots cast")
    if vote.counts_known and tuple(e.counts) != tuple(vote.tally):
        return s.reject(e, "seal_mismatch", f"sealed counts {e.counts} differ from the tally {tuple(vote.tally)}")
    vote.sealed = tuple(e.counts)
    for deputy in vote.choices:  # from here on nothing, not even memory, links a deputy to a choice
        vote.choices[deputy] = UNKNOWN
    vote.tally = [0] * len(vote.tally)
    result = result_of(s, vote, vote.closed_at if vote.closed_at is not None else s.clock)
    s.results[vote.number] = result
    return (VoteClosed(vote=vote.number, adopted=result.adopted),)


def announce(s: SittingState, e: ev.AnnounceResult, now: int) -> Effects:
    vote = s.vote
    if vote is None or vote.number not in s.results:
        return s.reject(e, "no_result", "the vote has no result yet (a secret tally is not sealed)")
    return NONE


def clear(s: SittingState, e: ev.ClearResult, now: int) -> Effects:
    s.vote = None
    return NONE


def cancel(s: SittingState, e: ev.CancelVote, now: int) -> Effects:
    if not e.reason.strip():
        return s.reject(e, "reason_required", "cancelling a vote needs a reason")
    refused = s.bad_text(e, [("reason", e.reason)], multiline=True)
    if refused is not None:
        return refused
    return _end(s, e.reason, now)


def annul(s: SittingState, e: ev.AnnulSecretVote, now: int) -> Effects:
    vote = s.vote
    if vote is None or not vote.secret or vote.number in s.results:
        return s.reject(e, "nothing_to_annul", "no unfinished secret vote")
    return _end(s, e.reason, now)


def _end(s: SittingState, reason: str, now: int) -> Effects:
    vote = s.vote
    assert vote is not None
    if vote.secret:  # a secret vote's partial counts are never published
        vote.choices = dict.fromkeys(vote.choices, UNKNOWN)
        vote.tally = [0] * len(vote.tally)
        vote.sealed = tuple(vote.tally)
    result = s.results.get(vote.number)
    if result is None:
        result = result_of(s, vote, now, cancelled=reason)
    else:
        result = msgspec.structs.replace(result, cancelled=reason, adopted=False)
    s.results[vote.number] = result
    s.vote = None
    s.refresh_deadline()
    return (VoteCancelled(vote=vote.number, reason=reason), ModeChanged(mode=Mode.IDLE))
