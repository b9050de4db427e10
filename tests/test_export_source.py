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
