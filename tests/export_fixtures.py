"""A journaled sitting with everything the documents must show, for the protocol_export tests.

``journal_sitting(url)`` runs the real Engine (its ``process``, no thread) with a manual clock over a
journal at ``url`` and the council of config.toml: cards (one at a second seat: an alert), a
registration round and a manual registration, an agenda, a roll-call vote «за основу» (adopted), a
roll-call vote «в цілому» cancelled with a reason and repeated (re-vote), a press without a card
(refused), a secret vote (counts only), a rating vote, an open vote, speeches with a time limit, and
the close of the sitting.  Returns the sitting's uid.  ``fake_recordings(directory, doc)`` writes a
recordings index (and files) for its speeches, as the recorder would.  The same calls always give the same records
but for the uid and the times' origin: documents compare the same journal to itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, SpeechKind, VoteKind, VoteSubject
from chamber.engine import Outcome
from protocol_export.engine_feed import fed
from protocol_export.recording_files import Recording, save_index
from protocol_export.source import SittingDoc

ROOT = Path(__file__).resolve().parent.parent
START_MS = 1_764_662_400_000  # 2025-12-02 08:00 UTC: 10:00 in Kyiv


def council() -> Config:
    return load_config(ROOT / "config.toml")


def journal_sitting(url: str, config: Config | None = None) -> str:
    config = config or council()
    with fed(url, START_MS) as feed:

        def do(event: ev.Input, step_ms: int = 1_000, ok: bool = True) -> Outcome:
            return feed(event, step_ms=step_ms, ok=ok)[0]

        deputies = [d for d in config.deputies if d.seat is not None and d.cards]
        do(ev.OpenSitting(roster=config.roster(), number=12, title="Дванадцята сесія, пленарне засідання"))
        do(
            ev.SetAgenda(
                items=(
                    ev.AgendaItem(number="1", title="Про затвердження порядку денного"),
                    ev.AgendaItem(
                        number="2",
                        title="Про внесення змін до бюджету Житомирської міської територіальної громади на 2026 рік",
                        draft="757/2",
                    ),
                    ev.AgendaItem(number="3", title="Про обрання секретаря ради", draft="758"),
                )
            )
        )
        present = deputies[:40]
        for d in present:
            do(ev.CardInserted(seat=d.seat or 0, uid=d.cards[0]), 100)
        absent = deputies[40]
        # a card at a second seat: the first deputy's card turns up in an absent colleague's slot
        do(ev.CardInserted(seat=absent.seat or 0, uid=present[0].cards[0]), 100, ok=False)
        do(ev.CardRemoved(seat=absent.seat or 0), 100)
        do(ev.OpenRegistration())
        for d in present[:-1]:
            do(ev.KeyPressed(seat=d.seat or 0, key=Key.REGISTER), 150)
        do(ev.RegisterDeputy(deputy=present[-1].id, reason="несправний пульт"))
        do(ev.CloseRegistration(), 5_000)

        def vote(open_: ev.OpenVote, keys: list[Key], *, cancel: str | None = None) -> None:
            do(open_)
            for d, key in zip(present, keys, strict=False):
                do(ev.KeyPressed(seat=d.seat or 0, key=key), 200)
            if cancel is not None:
                do(ev.CancelVote(reason=cancel), 2_000)
                return
            do(ev.CloseVote(), 3_000)
            do(ev.AnnounceResult())
            do(ev.ClearResult(), 5_000)

        do(ev.SetCurrentItem(number="1"))
        vote(
            ev.OpenVote(subject=VoteSubject.WHOLE, title="Про затвердження порядку денного", duration_s=0),
            [Key.YES] * 30 + [Key.NO] * 3 + [Key.ABSTAIN] * 2,
        )
        do(ev.SetCurrentItem(number="2"))
        do(ev.KeyPressed(seat=absent.seat or 0, key=Key.SPEAK), 500, ok=False)  # no card in that slot
        do(ev.GrantFloor(seat=present[3].seat or 0, kind=SpeechKind.REPORT, limit_s=300), 1_000)
        do(ev.RevokeFloor(seat=present[3].seat or 0), 240_000)
        do(ev.KeyPressed(seat=present[5].seat or 0, key=Key.SPEAK), 1_000)
        do(ev.NextSpeaker())
        do(ev.Tick(), 190_000)  # the speech runs into its limit
        vote(ev.OpenVote(subject=VoteSubject.BASIS, duration_s=0), [Key.YES] * 25 + [Key.NO] * 10)
        vote(
            ev.OpenVote(subject=VoteSubject.WHOLE, duration_s=0),
            [Key.YES] * 5,
            cancel="збій пульта № 7 під час голосування",
        )
        vote(
            ev.OpenVote(subject=VoteSubject.WHOLE, duration_s=0, revote_of=3),
            [Key.YES] * 20 + [Key.NO] * 15 + [Key.ABSTAIN] * 4,
        )
        do(ev.SetCurrentItem(number="3"))
        vote(
            ev.OpenVote(
                kind=VoteKind.SECRET,
                title="Обрання секретаря ради",
                duration_s=0,
                legal_basis="ч. 1 ст. 50 Закону «Про місцеве самоврядування в Україні»",
            ),
            [Key.YES] * 28 + [Key.NO] * 6 + [Key.ABSTAIN] * 3,
        )
        vote(
            ev.OpenVote(
                kind=VoteKind.RATING,
                title="Дата наступного засідання",
                duration_s=0,
                proposals=("15 грудня", "22 грудня", "29 грудня"),
                threshold=Threshold(num=1, den=2, base=Base.CAST),
            ),
            [Key.P1] * 10 + [Key.P2] * 22 + [Key.P3] * 5,
        )
        vote(
            ev.OpenVote(kind=VoteKind.OPEN, subject=VoteSubject.PROCEDURAL, title="Про перерву", duration_s=0),
            [Key.YES] * 12 + [Key.NO] * 20,
        )
        do(ev.CloseSitting(), 10_000)
        return feed.uid


def fake_recordings(directory: Path, doc: SittingDoc, *, extra: bool = True) -> list[Recording]:
    """A recordings index for ``doc``'s speeches as the recorder writes it (files of made-up bytes, their
    SHA-256 and sizes): one file a speech, the first in two parts (a restart mid-speech), and with
    ``extra`` a recording of a speech the sitting's protocol does not print (a later one)."""
    folder = directory / doc.uid
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Recording] = []

    def add(seat: int, start_ms: int, end_ms: int | None, item: str | None, complete: bool = True) -> None:
        number = len(made) + 1
        name = f"{number:03d}-{item or 'none'}-seat-{seat}.opus"
        data = hashlib.sha256(f"{doc.uid}/{number}".encode()).digest() * (40 + number)
        (folder / name).write_bytes(data)
        made.append(
            Recording(
                number=number,
                file=name,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                duration_s=((end_ms or start_ms + 60_000) - start_ms + 500) / 1000,
                format="opus",
                samplerate=48000,
                channels=1,
                sitting=doc.uid,
                seat=seat,
                deputy=None,
                speaker="",
                kind="speech",
                item=item,
                item_title="",
                start_ms=start_ms,
                end_ms=end_ms,
                recorded_from_ms=start_ms - 500,
                journal_seq=None,
                ended_by="",
                complete=complete,
            )
        )

    for i, sp in enumerate(doc.snapshot.speeches):
        add(sp.seat, sp.start, sp.end, sp.item, complete=i != 0)
        if i == 0:
            add(sp.seat, sp.start, sp.end, sp.item)  # the rest of it, after a restart
    if extra:
        add(1, doc.snapshot.clock + 60_000, doc.snapshot.clock + 120_000, None)
    save_index(directory, doc.uid, made)
    return made
