"""Video chapters (issue 9): offsets from the stream's start, first at 00:00:00, 10 s apart, titles on one
line; the journaled sitting of tests/export_fixtures.py; WebVTT; chamber chapters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from export_fixtures import START_MS, journal_sitting

from chamber.cli import main
from chamber.journal import Journal
from protocol_export import chapters as ch
from protocol_export.facts import Facts, load_facts

START = datetime.fromtimestamp(START_MS / 1000, UTC)  # 08:00 UTC; the sitting opens a second later
LINE = re.compile(r"(\d{2}):([0-5]\d):([0-5]\d) (\S.*)")


@pytest.fixture(scope="module")
def sitting(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('chapters') / 'j.db'}"
    return url, journal_sitting(url)


@pytest.fixture(scope="module")
def facts(sitting: tuple[str, str]) -> Facts:
    url, uid = sitting
    with Journal(url, create=False) as journal:
        return load_facts(journal, uid)


def parse(text: str) -> list[tuple[int, str]]:
    out = []
    for line in text.splitlines():
        m = LINE.fullmatch(line)
        assert m, line
        out.append((int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]), m[4]))
    return out


def test_a_stream_started_two_minutes_early(facts: Facts) -> None:
    listed = ch.chapters(facts, START - timedelta(minutes=2))
    text = ch.text_chapters(listed)
    lines = parse(text)
    assert lines[0] == (0, "Початок трансляції")
    assert lines[1][0] == 121 and lines[1][1].startswith("Відкриття засідання")  # opened at START + 1 s
    assert "Реєстрація: зареєстровано 40, кворум є" in lines[1][1]  # 6 s later: joined to the opening
    titles = [t for _, t in lines]
    assert any(t.startswith("Питання 1.") and "Прийнято — за 30, проти 3, утр. 2" in t for t in titles)
    assert any(t.startswith("Питання 2.") and t.endswith("Доповідь: Ткаченко І. В.") for t in titles)
    assert "Голосування (за основу): Прийнято — за 25, проти 10, утр. 0" in titles
    # the cancelled vote and its re-vote four seconds later share a chapter, the result kept whole
    assert "Голосування скасовано · Повторне голосування (в цілому): Не прийнято — за 20, проти 15, утр. 4" in titles
    assert any(t.startswith("Таємне голосування") and "за 28, проти 6, утр. 3" in t for t in titles)
    assert any("обрано «22 грудня» (22)" in t for t in titles)
    assert titles[-1] == "Закриття засідання"
    assert ch.youtube_ready(listed)


def test_chapter_times_are_the_journals(facts: Facts) -> None:
    stream = START - timedelta(minutes=2)
    speech = facts.doc.snapshot.speeches[1]  # a deputy's speech, alone in its chapter
    at = (speech.start - START_MS) // 1000 + 120
    assert (at, "Виступ: Мельник Н. С.") in parse(ch.text_chapters(ch.chapters(facts, stream)))
    close = facts.doc.closed_at_ms
    assert close is not None
    assert ch.sitting_end_s(facts, stream) == (close - START_MS) // 1000 + 120


def test_a_stream_started_mid_sitting_opens_on_what_was_going_on(facts: Facts) -> None:
    speech = facts.doc.snapshot.speeches[1]
    stream = datetime.fromtimestamp((speech.start + 30_000) / 1000, UTC)  # 30 s into the speech
    lines = parse(ch.text_chapters(ch.chapters(facts, stream)))
    assert lines[0] == (0, "Виступ: Мельник Н. С.")
    assert all(t != "Початок трансляції" for _, t in lines)


def test_a_naive_start_is_kyiv_time(facts: Facts) -> None:
    kyiv = ch.parse_stream_start("2025-12-02T09:58:00")  # EET, UTC+2 in December
    assert kyiv == ch.parse_stream_start("2025-12-02T07:58:00+00:00")
    assert ch.chapters(facts, kyiv) == ch.chapters(facts, START - timedelta(minutes=2))
    with pytest.raises(ValueError):
        ch.parse_stream_start("02.12.2025 09:58")


def test_every_start_time_gives_chapters_a_platform_takes(facts: Facts) -> None:
    """From two minutes before the opening to two after the close, every 7 s (bounded: ~120 starts)."""
    close = facts.doc.closed_at_ms
    assert close is not None
    for ms in range(START_MS - 120_000, close + 120_000, 7_000):
        listed = ch.chapters(facts, datetime.fromtimestamp(ms / 1000, UTC))
        assert listed[0].start_s == 0
        assert all(b.start_s - a.start_s >= ch.MIN_GAP_S for a, b in pairwise(listed))
        assert all(0 < len(c.title) <= ch.MAX_TITLE and c.title == " ".join(c.title.split()) for c in listed)
        parse(ch.text_chapters(listed))  # every line «HH:MM:SS Title»
        if ms > close:
            assert [c.title for c in listed] == ["Закриття засідання"] and not ch.youtube_ready(listed)


def test_joining_never_cuts_a_votes_result() -> None:
    vote = (3, "Голосування (в цілому): Прийнято — за 30, проти 3, утр. 2")
    item = (2, "Питання 1. " + "Про затвердження програми розвитку " * 3)
    joined = ch._join(item, vote)
    assert joined is not None and joined.endswith(vote[1]) and len(joined) <= ch.MAX_TITLE
    assert "…" in joined
    long_vote = (3, "Голосування «" + "д" * 80 + "»: Прийнято")
    assert ch._join(vote, long_vote) is None  # two votes that do not fit: one will be dropped


def test_shorten_cuts_after_a_word() -> None:
    assert ch.shorten("Про внесення змін до бюджету громади", 20) == "Про внесення змін…"
    assert ch.shorten("рядок\nз переносом", 40) == "рядок з переносом"


def test_webvtt_chapters(facts: Facts) -> None:
    stream = START - timedelta(minutes=2)
    listed = ch.chapters(facts, stream)
    vtt = ch.webvtt_chapters(listed, ch.sitting_end_s(facts, stream))
    assert vtt.startswith("WEBVTT\n\n")
    cues = re.findall(r"(\d+)\n(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n([^\n]+)\n", vtt)
    assert [c[0] for c in cues] == [str(i) for i in range(1, len(listed) + 1)]
    assert cues[0][1] == "00:00:00.000"
    assert all(a[2] == b[1] for a, b in pairwise(cues))  # each ends where the next begins
    assert all(c[1] < c[2] for c in cues)
    assert [c[3] for c in cues] == [c.title for c in listed]
    escaped = ch.webvtt_chapters([ch.Chapter(0, "A <b> & --> B")], 5)
    assert "A &lt;b&gt; &amp; --&gt; B" in escaped and "00:00:00.000 --> 00:00:10.000" in escaped


def test_chamber_chapters(sitting: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, uid = sitting
    assert main(["chapters", "--db", url, "--sitting", uid, "--stream-start", "2025-12-02T09:58:00"]) == 0
    lines = parse(capsys.readouterr().out)
    assert lines[0] == (0, "Початок трансляції") and len(lines) >= 3
    out = tmp_path / "ch.vtt"
    args = ["chapters", "--db", url, "--sitting", uid, "--stream-start", "2025-12-02T08:00:00Z", "--vtt"]
    assert main([*args, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("WEBVTT\n\n1\n00:00:00.000 --> ")
    assert main(["chapters", "--db", url, "--sitting", uid, "--stream-start", "2025-12-02T10:30:00+02:00"]) == 0
    assert "YouTube shows chapters only from three on" in capsys.readouterr().err  # after the close: one
    assert main(["chapters", "--db", url, "--sitting", "nope", "--stream-start", "2025-12-02T09:58:00"]) == 1
    with pytest.raises(SystemExit):
        main(["chapters", "--db", url, "--sitting", uid, "--stream-start", "вчора"])
