"""protocol_export.source: a sitting read from the journal alone, as the documents see it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from export_fixtures import journal_sitting

from chamber.core.values import VoteKind
from chamber.journal import Journal
from protocol_export.source import SourceError, load_sitting


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    path = tmp_path_factory.mktemp("export") / "j.db"
    url = f"sqlite:///{path}"
    return url, journal_sitting(url), path


def test_the_sitting_as_the_documents_see_it(journaled: tuple[str, str, Path]) -> None:
    url, uid, _ = journaled
    with Journal(url, create=False) as journal:
        doc = load_sitting(journal, uid)
    results = {r.number: r for r in doc.snapshot.results}
    assert [r.kind for r in results.values()] == [
        VoteKind.ROLL_CALL,
        VoteKind.ROLL_CALL,
        VoteKind.ROLL_CALL,
        VoteKind.ROLL_CALL,
        VoteKind.SECRET,
        VoteKind.RATING,
        VoteKind.OPEN,
    ]
    assert results[1].counts == (30, 3, 2) and results[1].adopted
    assert results[3].cancelled == "збій пульта № 7 під час голосування"
    assert results[4].revote_of == 3 and results[4].counts == (20, 15, 4)
    assert results[5].counts == (28, 6, 3) and results[5].per_name == ()  # secret: counts only
    assert results[6].winner == 2
    assert len(results[1].per_name) == 43  # every deputy of the composition has an outcome
    assert doc.number == 12 and doc.closed_at_ms is not None
    assert any(t.effect.kind in ("card_elsewhere", "wrong_seat") for t in doc.alerts)
    assert any(t.effect.reason == "no_card" for t in doc.refusals)
    assert doc.first_seq == 1 and doc.head.seq == doc.last_seq
    assert doc.head_text.startswith(f"{doc.last_seq}:") and len(doc.head.hash) == 64
    assert len(doc.snapshot.speeches) == 2


def test_what_the_snapshot_does_not_keep(journaled: tuple[str, str, Path]) -> None:
    """Registration times, who took part in a secret vote and a vote's legal basis come from the journal."""
    url, uid, _ = journaled
    with Journal(url, create=False) as journal:
        doc = load_sitting(journal, uid)
    (first,) = doc.snapshot.rounds
    marks = [m for m in doc.registrations if m.round == first.number]
    assert sorted(m.deputy for m in marks) == list(first.registered)  # one mark per deputy, the first press
    assert all(first.opened_at <= m.at_ms <= first.closed_at for m in marks)
    manual = [m for m in marks if m.seat is None]
    assert [(m.deputy, m.reason) for m in manual] == list(first.manual) == [(manual[0].deputy, "несправний пульт")]
    assert all(m.seat is not None and not m.reason for m in marks if m not in manual)
    secret = next(r for r in doc.snapshot.results if r.kind is VoteKind.SECRET)
    voters = doc.secret_ballots[secret.number]
    assert len(voters) == sum(secret.counts) == 37 and set(voters) <= set(first.registered)
    assert list(doc.secret_ballots) == [secret.number]  # no other vote is secret
    assert doc.legal_bases == {secret.number: "ч. 1 ст. 50 Закону «Про місцеве самоврядування в Україні»"}
    no_card = next(t for t in doc.refusals if t.effect.reason == "no_card")
    assert no_card.deputy is None  # nobody's card was in that seat


def test_a_tampered_journal_backs_no_document(journaled: tuple[str, str, Path], tmp_path: Path) -> None:
    url, uid, path = journaled
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal SET at_ms = at_ms + 1 WHERE seq = 5")
    with Journal(f"sqlite:///{copy}", create=False) as journal, pytest.raises(SourceError, match="verification"):
        load_sitting(journal, uid)
    with Journal(url, create=False) as journal, pytest.raises(SourceError, match="no sitting"):
        load_sitting(journal, "nope")
