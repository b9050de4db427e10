"""Texts that reach the sitting in commands (titles, agenda, reasons) are shown on the hall screen,
printed in the protocol and echoed in logs: control characters and terminal escape sequences are
refused with the field and the character named, never stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import make_roster, ready

from chamber.core import events as ev
from chamber.core.phases import Phase
from chamber.engine import Engine
from chamber.journal import Journal

ESC = "\x1b[2J"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (ev.SetAgenda(items=(ev.AgendaItem(number="1", title=f"Про бюджет{ESC}"),)), "items[0].title"),
        (ev.SetAgenda(items=(ev.AgendaItem(number="1\x07", title="Про бюджет"),)), "items[0].number"),
        (ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Т", draft="757/2\x85"),)), "items[0].draft"),
        (ev.RegisterDeputy(deputy=1, reason=f"за заявою{ESC}"), "reason"),
    ],
)
def test_a_command_with_a_control_character_is_refused(command: ev.Input, field: str) -> None:
    d = ready(5)
    if isinstance(command, ev.RegisterDeputy):
        d.ok(ev.OpenRegistration())
    refusal = d.reject(command)
    assert refusal.reason == "bad_text" and refusal.detail.startswith(field), refusal.detail
    assert "U+" in refusal.detail
    assert not d.sitting.agenda


def test_a_reason_may_have_several_lines_but_no_escape() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    assert d.reject(ev.CancelVote(reason=f"збій{ESC}")).reason == "bad_text"
    d.ok(ev.CancelVote(reason="збій пульта\nперегололосування"))


def test_a_sitting_refused_for_its_title_is_not_opened_and_the_next_one_is(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    engine = Engine(journal)
    engine.start()
    try:
        refused = engine.execute(ev.OpenSitting(roster=make_roster(5), title=f"Засідання{ESC}"))
        assert refused.rejection is not None and refused.rejection.reason == "bad_text"
        assert engine.sitting_uid is None and engine.sitting.phase is Phase.NO_SITTING
        assert engine.execute(ev.OpenSitting(roster=make_roster(5), title="Засідання")).accepted
        assert engine.sitting_uid is not None
    finally:
        engine.stop()
        journal.close()
