"""Plain-text account of a sitting (Ukrainian first, English second) for the terminal.

Used by ``chamber replay`` and ``chamber demo``.  It reads only a Snapshot
and the roster's names; the PDF protocol (protocol_export) is the formal one.
"""

from __future__ import annotations

from chamber.core.phases import Phase
from chamber.core.roster import Roster
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.core.values import SpeechKind, VoteKind, VoteSubject
from chamber.core.voting import VoteResult

KIND_UK = {
    VoteKind.ROLL_CALL: "поіменне",
    VoteKind.OPEN: "відкрите",
    VoteKind.SECRET: "таємне",
    VoteKind.RATING: "рейтингове",
}

PHASE_UK = {
    Phase.NO_SITTING: "засідання не відкрите / no sitting",
    Phase.IDLE: "засідання триває / in session",
    Phase.REGISTRATION: "реєстрація / registration",
    Phase.VOTE_OPEN: "голосування / vote open",
    Phase.VOTE_CLOSED: "голосування закрито / vote closed",
    Phase.RESULT_SHOWN: "результат оголошено / result shown",
}

SUBJECT_UK = {
    VoteSubject.BASIS: "за основу",
    VoteSubject.WHOLE: "в цілому",
    VoteSubject.PROCEDURAL: "процедурне",
    VoteSubject.AMENDMENT: "поправка",
}

SPEECH_UK = {
    SpeechKind.POINT_OF_ORDER: "з процедурного питання",
    SpeechKind.REPLY: "репліка",
    SpeechKind.SPEECH: "виступ",
    SpeechKind.REPORT: "доповідь",
}

#: why a speech ended (SpeechRecord.ended_by); an unknown code is printed as it is
ENDED_UK = {
    "revoked": "мікрофон вимкнено",
    "time_limit": "час вичерпано",
    "next_speaker": "наступний промовець",
    "chair_priority": "пріоритет головуючого",
    "seat_offline": "пульт не на зв'язку",
    "sitting_closed": "засідання закрито",
    "vote_opened": "відкрито голосування",
}


def describe(sitting: Sitting) -> str:
    return describe_snapshot(sitting.snapshot(), sitting.roster)


def describe_snapshot(snap: Snapshot, roster: Roster | None, per_name: bool = False) -> str:
    names = {d.id: d.full_name for d in roster.deputies} if roster else {}
    out = [
        f"Засідання № {snap.number} {snap.title} — {PHASE_UK[snap.phase]}",
        f"Склад ради / composition: {snap.composition}; зареєстровано / registered: {snap.registered}; "
        f"кворум / quorum: {'є / yes' if snap.quorum else 'немає / no'}",
    ]
    for r in snap.rounds:
        out.append(f"  Реєстрація {r.number}: {r.count} зареєстровано, кворум {'є' if r.quorum else 'немає'}")
    for result in snap.results:
        out.extend(describe_result(result, names, per_name))
    if snap.speeches:
        out.append("Виступи / speeches:")
        for sp in snap.speeches:
            who = names.get(sp.deputy, f"seat {sp.seat}") if sp.deputy is not None else f"seat {sp.seat}"
            length = (sp.end - sp.start) // 1000 if sp.end is not None else 0
            ended = ENDED_UK.get(sp.ended_by or "", sp.ended_by or "триває / going on")
            out.append(f"  місце {sp.seat:>3} {who}: {SPEECH_UK[sp.kind]}, {length} с, кінець: {ended}")
    out.append(f"Відхилено натискань / rejected inputs: {snap.rejections}; тривоги / alerts: {snap.alerts}")
    return "\n".join(out)


def describe_result(result: VoteResult, names: dict[int, str], per_name: bool = False) -> list[str]:
    head = f"Голосування № {result.number} ({KIND_UK[result.kind]}, {SUBJECT_UK[result.subject]})"
    if result.item:
        head += f", питання {result.item}"
    lines = [f"{head}: {result.title}"]
    if result.cancelled is not None:
        lines.append(f"  СКАСОВАНО / cancelled: {result.cancelled}")
        return lines
    if result.kind is VoteKind.RATING:
        for i, (proposal, count) in enumerate(zip(result.proposals, result.counts, strict=True), 1):
            lines.append(f"  {i}. {proposal}: {count}")
    else:
        yes, no, abstain = result.counts
        lines.append(
            f"  За {yes}, Проти {no}, Утримались {abstain}, Не голосували {result.did_not_vote}, "
            f"Відсутні {result.absent}"
        )
    lines.append(
        f"  Поріг / threshold: {result.threshold.describe_uk()} = {result.required}; "
        f"РІШЕННЯ: {result.result_uk.upper()}"
    )
    if per_name and result.kind is VoteKind.ROLL_CALL:
        for choice in result.per_name:
            lines.append(f"    {names.get(choice.deputy, str(choice.deputy)):40} {choice.outcome.label_uk}")
    return lines
