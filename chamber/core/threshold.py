"""Vote thresholds as data, with exact integer arithmetic.

A threshold is a fraction p/q of a base (composition, registered, cast, cast
without abstentions), either strict ("more than") or not ("at least").
``required(base)`` gives the smallest whole number of votes that passes; no
floating point is involved anywhere, so "more than half of 43" is 22 and "at
least two thirds of 43" is 29 on every machine.  A decision always needs at
least one vote in favour: "at least half of those who voted" when nobody voted
(or everybody abstained, for the base without abstentions) is not adopted.
``unreachable(composition, voters)`` says why a threshold no vote can ever meet
(more than all of its base, or more votes than can be cast) is impossible; the
config loader and the OpenVote handler refuse such thresholds with it.
"""

from __future__ import annotations

import msgspec

from chamber.core.values import Base


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    num: int = 1
    den: int = 2
    base: Base = Base.COMPOSITION
    strict: bool = True  # True: more than num/den; False: at least num/den

    def __post_init__(self) -> None:
        if self.den <= 0 or self.num <= 0 or self.num > self.den:
            raise ValueError(f"threshold fraction must satisfy 0 < p <= q, got {self.num}/{self.den}")

    def required(self, base_value: int) -> int:
        """The smallest count n >= 1 with n/base > p/q (strict) or n/base >= p/q."""
        p, q = self.num, self.den
        if self.strict:
            return (p * base_value) // q + 1
        return max(1, -((-p * base_value) // q))  # ceil without floats; never 0: nobody voting adopts nothing

    def passes(self, count: int, base_value: int) -> bool:
        return count >= self.required(base_value)

    def unreachable(self, composition: int, voters: int | None = None, *, counting: str = "votes") -> str | None:
        """Why no vote can ever meet this threshold, or None when some vote can.

        ``composition`` is the council's total composition and ``voters`` how many deputies can vote
        (default: the composition; fewer when the head is counted but does not vote).  The votes in
        favour are at most ``min(composition, voters)``.  Of the composition the count is known: it is
        reachable when ``required(composition)`` is at most that.  The other bases count only those
        who registered or voted, so the base can be as small as the votes in favour: reachable unless
        the threshold asks for more than all of its base (``p == q`` and strict) or nobody can vote.
        ``counting`` names what is counted in the reason ("votes"; "deputies" for a quorum).
        """
        can_vote = composition if voters is None else min(composition, voters)
        word = self.describe()
        if self.base is Base.COMPOSITION:
            need = self.required(composition)
            if need <= can_vote:
                return None
            if can_vote == composition:
                return f"{word} needs {need} {counting}, but the composition is {composition}"
            return f"{word} needs {need} {counting}, but only {can_vote} of the composition of {composition} can vote"
        if self.strict and self.num >= self.den:
            than, when = _MORE_THAN_ALL[self.base]
            return (
                f"{word} needs {than} ({self.required(composition)} with all {composition} of the composition {when})"
            )
        if can_vote < 1:
            return f"{word} needs at least one vote in favour, but nobody in the composition of {composition} can vote"
        return None

    def describe(self) -> str:
        """English description, e.g. 'more than 1/2 of composition'."""
        word = "more than" if self.strict else "at least"
        return f"{word} {self.num}/{self.den} of {self.base.value}"

    def describe_uk(self) -> str:
        word = "більше ніж" if self.strict else "не менше ніж"
        base = {
            Base.COMPOSITION: "загального складу",
            Base.REGISTERED: "зареєстрованих",
            Base.CAST: "тих, хто проголосував",
            Base.CAST_WITHOUT_ABSTENTIONS: "тих, хто голосував за або проти",
        }[self.base]
        return f"{word} {self.num}/{self.den} {base}"


_MORE_THAN_ALL = {
    Base.REGISTERED: ("more votes than there are registered deputies", "registered"),
    Base.CAST: ("more votes in favour than votes cast", "voting"),
    Base.CAST_WITHOUT_ABSTENTIONS: ("more votes in favour than votes for and against", "voting"),
}


def base_value(base: Base, composition: int, registered: int, yes: int, no: int, abstain: int) -> int:
    """The number a threshold's fraction is taken of."""
    if base is Base.COMPOSITION:
        return composition
    if base is Base.REGISTERED:
        return registered
    if base is Base.CAST:
        return yes + no + abstain
    return yes + no
