"""Cross-checks over the whole config file: the problems no single section can see on its own.

How it works
------------
:func:`_cross_check` takes the sections and items that passed validation on their own (each item with
its index in the file) and returns every problem found as ``(key, what is wrong)`` pairs, where key is
a dotted path such as ``seats[2].line``; it never raises.  It checks, in order: lines defined twice;
seats defined twice, on undefined lines or claiming the chair twice; console and microphone unit ids
used twice on one line; deputy ids, cards and open-data ids used twice, two heads, deputies on
undefined or shared seats or without a seat under assigned seating; generic seat modules
(:func:`_check_generic_seats`); the composition against the deputies list; the warning time against the
speech limits and the quorum base; then :func:`_check_thresholds`: a quorum or vote threshold no vote can
meet (exact integers against the composition, and against the deputies who can vote when the head does
not), and a quorum looser than the law's "more than half of the composition" (art. 46).

Items that failed validation are not passed in, but their ids are (``extra_seat_ids``,
``extra_line_ids``) so that one broken seat does not make every deputy sitting there "unknown", and
``deputies_complete=False`` turns off the checks that need the full deputies list.  The loader in
:mod:`chamber.config` formats the pairs as ``"{file}: {key}: {what}"``; ``Config``'s own validator
joins them into one ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from chamber.config_sections import (
    _CORE_RULES,
    CouncilConfig,
    DeputyConfig,
    LineConfig,
    RulesConfig,
    SeatConfig,
    ThresholdConfig,
    _toml_repr,
)
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, VoteSubject

__all__: list[str] = []

_Problem = tuple[str, str]


def _who(index: int, deputy: DeputyConfig) -> str:
    return f"deputies[{index}] (id {deputy.id}, {deputy.full_name})"


def _cross_check(
    council: CouncilConfig | None,
    deputies: list[tuple[int, DeputyConfig]],
    seats: list[tuple[int, SeatConfig]],
    lines: list[tuple[int, LineConfig]],
    rules: RulesConfig | None,
    *,
    extra_seat_ids: Iterable[int] = (),
    extra_line_ids: Iterable[str] = (),
    deputies_complete: bool = True,
    raw_composition: int | None = None,
) -> list[_Problem]:
    """Checks across items.  ``extra_*`` are ids of items that failed validation on their own:
    they count as defined so that one broken item does not cause a cascade of "not defined" errors.
    ``raw_composition``: the composition of a [council] that failed validation for another key, so
    that the thresholds are still checked against it.
    """
    problems: list[_Problem] = []

    line_ids: dict[str, int] = {}
    for i, line in lines:
        if line.id in line_ids:
            problems.append((f"lines[{i}].id", f'line "{line.id}" is defined twice (also lines[{line_ids[line.id]}])'))
        else:
            line_ids[line.id] = i
    known_lines = set(line_ids) | set(extra_line_ids)

    seat_ids: dict[int, int] = {}
    units: dict[tuple[str, int], tuple[int, SeatConfig, str]] = {}
    chair: tuple[int, SeatConfig] | None = None
    for i, seat in seats:
        if seat.id in seat_ids:
            problems.append((f"seats[{i}].id", f"seat {seat.id} is defined twice (also seats[{seat_ids[seat.id]}])"))
        else:
            seat_ids[seat.id] = i
        if seat.line not in known_lines:
            # quoted and escaped: the ids of lines that failed validation are raw text (a control character)
            defined = ", ".join(_toml_repr(name) for name in sorted(known_lines)) or "none"
            problems.append((f"seats[{i}].line", f'line "{seat.line}" is not defined (defined lines: {defined})'))
        if seat.chair:
            if chair is not None:
                problems.append(
                    (
                        f"seats[{i}].chair",
                        f"only one seat can be the chair; seat {chair[1].id} (seats[{chair[0]}]) already is",
                    )
                )
            else:
                chair = (i, seat)
    # Console units first, then separate microphone units: a microphone unit that collides with a
    # console is reported on the microphone, whichever seat comes first in the file.
    claims = [(i, seat, "unit", seat.unit, "console") for i, seat in seats]
    claims += [
        (i, seat, "mic_unit", seat.mic_unit, "microphone")
        for i, seat in seats
        if seat.mic_unit is not None and seat.mic_unit != seat.unit
    ]
    for i, seat, field, unit, role in claims:
        other = units.get((seat.line, unit))
        if other is not None:
            j, other_seat, other_role = other
            problems.append(
                (
                    f"seats[{i}].{field}",
                    f'{role} unit {unit} on line "{seat.line}" is already used by seat {other_seat.id} '
                    f"(seats[{j}], {other_role} unit); seat {seat.id} and seat {other_seat.id} collide",
                )
            )
        else:
            units[(seat.line, unit)] = (i, seat, role)
    known_seats = set(seat_ids) | set(extra_seat_ids)

    deputy_ids: dict[int, int] = {}
    cards: dict[str, tuple[int, DeputyConfig]] = {}
    open_ids: dict[str, tuple[int, DeputyConfig]] = {}
    seated: dict[int, tuple[int, DeputyConfig]] = {}
    head: tuple[int, DeputyConfig] | None = None
    seating = rules.seating if rules is not None else _CORE_RULES.seating
    for i, deputy in deputies:
        first_at = deputy_ids.get(deputy.id)
        if first_at is not None:
            problems.append(
                (
                    f"deputies[{i}].id",
                    f"deputy id {deputy.id} is used twice (also deputies[{first_at}])",
                )
            )
        else:
            deputy_ids[deputy.id] = i
        for k, card in enumerate(deputy.cards):
            holder = cards.get(card)
            if holder is None:
                cards[card] = (i, deputy)
            elif holder[0] == i:
                problems.append((f"deputies[{i}].cards[{k}]", f"card {card} is listed twice for this deputy"))
            else:
                problems.append(
                    (
                        f"deputies[{i}].cards[{k}]",
                        f"card {card} is given to two deputies: {_who(*holder)} and {_who(i, deputy)}",
                    )
                )
        if deputy.open_data_id:
            same_id = open_ids.get(deputy.open_data_id)
            if same_id is not None:
                problems.append(
                    (
                        f"deputies[{i}].open_data_id",
                        f'open_data_id "{deputy.open_data_id}" is used by two deputies: '
                        f"{_who(*same_id)} and {_who(i, deputy)}",
                    )
                )
            else:
                open_ids[deputy.open_data_id] = (i, deputy)
        if deputy.role is Role.HEAD:
            if head is not None:
                problems.append(
                    (
                        f"deputies[{i}].role",
                        f'only one deputy can be "head"; {_who(*head)} already is',
                    )
                )
            else:
                head = (i, deputy)
        if deputy.seat is not None:
            if deputy.seat not in known_seats:
                problems.append((f"deputies[{i}].seat", f"seat {deputy.seat} is not defined in [[seats]]"))
            sitter = seated.get(deputy.seat)
            if sitter is not None:
                problems.append(
                    (
                        f"deputies[{i}].seat",
                        f"seat {deputy.seat} is assigned to two deputies: {_who(*sitter)} and {_who(i, deputy)}",
                    )
                )
            else:
                seated[deputy.seat] = (i, deputy)
        elif seating is Seating.ASSIGNED and deputy.role is Role.DEPUTY:
            problems.append(
                (
                    f"deputies[{i}].seat",
                    f'missing: rules.seating is "assigned", so every deputy needs a seat ({_who(i, deputy)})',
                )
            )

    problems += _check_generic_seats(seats, seated, rules, deputies_complete)

    head_does_not_vote = False
    if council is not None and deputies_complete:
        members = sum(1 for _, deputy in deputies if deputy.role is Role.DEPUTY)
        heads = 1 if head is not None and council.head_in_composition else 0
        # the head counted in the composition but not voting: one fewer can vote than the composition
        head_does_not_vote = heads == 1 and not council.head_votes
        if council.composition != members + heads:
            head_does_not_vote = False  # reported above; count the voters as the composition
            if head is None:
                how = "and no head"
            elif council.head_in_composition:
                how = "+ 1 head (head_in_composition = true)"
            else:
                how = "(the head is not counted: head_in_composition = false)"
            problems.append(
                (
                    "council.composition",
                    f"composition is {council.composition} but [[deputies]] lists {members} "
                    f"{'deputy' if members == 1 else 'deputies'} {how}, "
                    f"which makes {members + heads}",
                )
            )

    if rules is not None:
        limits = rules.speech_limits_s.to_core()
        shortest = min(limits, key=lambda kind: limits[kind])
        if rules.warning_s >= limits[shortest]:
            problems.append(
                (
                    "rules.warning_s",
                    f"{rules.warning_s} must be smaller than the shortest speech limit "
                    f"(rules.speech_limits_s.{shortest.value} = {limits[shortest]})",
                )
            )
        if rules.quorum.base is not Base.COMPOSITION:
            problems.append(
                (
                    "rules.quorum.base",
                    f'quorum is counted of the composition (art. 46): base must be "composition", '
                    f'got "{rules.quorum.base.value}"',
                )
            )
        composition = council.composition if council is not None else raw_composition
        problems += _check_thresholds(rules, composition, head_does_not_vote)
    return problems


_ART_46 = (
    "is looser than the law: a plenary sitting is competent when more than half of the composition take part "
    '(Law of Ukraine "Про місцеве самоврядування в Україні", art. 46)'
)
_LAW_FIX = 'use fraction = "1/2" with strict = true, or a larger fraction'


def _check_thresholds(rules: RulesConfig, composition: int | None, head_does_not_vote: bool) -> list[_Problem]:
    """Thresholds no vote can meet (checked against the composition, with exact integers), and a
    quorum looser than art. 46 (more than half of the composition)."""
    problems: list[_Problem] = []
    quorum = rules.quorum.to_core()
    if composition is not None:
        why = quorum.unreachable(composition, counting="deputies")
        if why is not None:
            problems.append(("rules.quorum", f"{rules.quorum.as_toml()} can never be met: {why}"))
    half = Threshold(num=1, den=2, base=Base.COMPOSITION, strict=True)
    # looser than "more than 1/2": a smaller fraction, or exactly 1/2 counted "at least"
    looser = quorum.num * 2 < quorum.den or (quorum.num * 2 == quorum.den and not quorum.strict)
    if looser:
        word = "more than" if quorum.strict else "at least"
        if composition is None:
            how = f"{word} {quorum.num}/{quorum.den} is not more than half"
        elif quorum.required(composition) < half.required(composition):
            need = quorum.required(composition)
            how = (
                f"{word} {quorum.num}/{quorum.den} of the composition of {composition} is {need} "
                f"{'deputy' if need == 1 else 'deputies'}, the law needs {half.required(composition)}"
            )
        else:  # equal here by rounding; some other composition shows the difference
            other = next(
                n for n in range(composition + 1, composition + 2 * quorum.den + 2) if quorum.required(n) <= n // 2
            )
            how = (
                f"{word} {quorum.num}/{quorum.den} of the composition would make half of it or fewer a quorum "
                f"(e.g. {quorum.required(other)} of {other}); with a composition of {composition} it needs "
                f"{quorum.required(composition)} only by rounding"
            )
        problems.append(("rules.quorum", f"{rules.quorum.as_toml()} {_ART_46}; {how}; {_LAW_FIX}"))
    if composition is None:
        return problems
    voters = composition - 1 if head_does_not_vote else composition
    for subject in VoteSubject:
        threshold: ThresholdConfig = getattr(rules.thresholds, subject.value)
        core = threshold.to_core()
        why = core.unreachable(composition, voters)
        if why is not None:
            if core.unreachable(composition) is None:  # it is only the head's vote that is missing
                why += " (council.head_votes = false: the head does not vote)"
            problems.append((f"rules.thresholds.{subject.value}", f"{threshold.as_toml()} can never be met: {why}"))
    return problems


def _check_generic_seats(
    seats: list[tuple[int, SeatConfig]],
    seated: dict[int, tuple[int, DeputyConfig]],
    rules: RulesConfig | None,
    deputies_complete: bool,
) -> list[_Problem]:
    """A generic module (section 8 of the register map) reports "a card is in", never a UID: the
    deputy is taken to be the one assigned to the seat, so assigned seating, a deputy at the seat
    with a card, and no separate microphone unit (the module's coil 6 is the microphone relay)."""
    generic = [(i, seat) for i, seat in seats if seat.generic]
    if not generic:
        return []
    problems: list[_Problem] = []
    seating = rules.seating if rules is not None else _CORE_RULES.seating
    if seating is not Seating.ASSIGNED:
        listed = ", ".join(f"seats[{i}] (seat {seat.id})" for i, seat in generic[:5])
        more = f" and {len(generic) - 5} more" if len(generic) > 5 else ""
        problems.append(
            (
                "rules.seating",
                f'must be "assigned" when a seat has profile = "generic" (a generic module reports no card '
                f'UID, so the deputy is taken to be the one assigned to the seat), got "{seating.value}"; '
                f"generic: {listed}{more}",
            )
        )
    for i, seat in generic:
        if seat.mic_unit is not None and seat.mic_unit != seat.unit:
            problems.append(
                (
                    f"seats[{i}].mic_unit",
                    f'a seat with profile = "generic" switches its microphone with the module\'s coil 6; '
                    f"a separate microphone unit ({seat.mic_unit}) is not supported",
                )
            )
        if seating is not Seating.ASSIGNED:
            continue
        sitter = seated.get(seat.id)
        if sitter is None:
            if deputies_complete:  # a broken deputy entry may be the one assigned here
                problems.append(
                    (
                        f"seats[{i}].profile",
                        f'profile = "generic" needs a deputy assigned to seat {seat.id} (a [[deputies]] entry '
                        f"with seat = {seat.id}): the module reports no card UID",
                    )
                )
        elif not sitter[1].cards:
            problems.append(
                (
                    f"deputies[{sitter[0]}].cards",
                    f'missing: seat {seat.id} is a generic module (seats[{i}].profile = "generic"), so '
                    f"{_who(*sitter)} assigned there needs at least one card",
                )
            )
    return problems
