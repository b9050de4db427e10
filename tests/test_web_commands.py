"""Console commands (display.commands): decoding, what the web may never send, the role matrix, the
engine's answers in Ukrainian and English, the web-only AcknowledgeAlert and ImportAgenda.

The runner drives a real Engine over a temporary SQLite journal; the test itself plays the line loop
where a seat event is needed (the web cannot send one, which is the point of several tests here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from test_web_state import web_config

from chamber.config import Config
from chamber.core import events as ev
from chamber.core.sitting import Sitting
from chamber.core.values import Key, VoteKind
from chamber.engine import Engine, EngineError
from chamber.journal import Journal
from display import commands as cmd
from display import reasons
from display import state as st
from display.publisher import AlertBook, Publisher


class Chamber:
    def __init__(self, tmp_path: Path) -> None:
        self.config: Config = web_config(5)
        self.journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
        self.engine = Engine(self.journal)
        self.engine.start()
        chamber = st.chamber_of(self.config)
        self.publisher = Publisher(self.engine, chamber, lambda *a, **k: None, clock=lambda: 0)
        self.engine.subscribe(self.publisher.on_effects)
        self.runner = cmd.CommandRunner(self.engine, self.config, chamber, self.publisher.alerts)

    def run(self, command: object, role: str = "secretary", lang: str = "uk") -> cmd.Result:
        return self.runner.run(command, user="test", role=role, lang=lang)

    def ok(self, command: dict[str, Any], role: str = "secretary") -> None:
        result = self.run(command, role)
        assert result.reply["ok"] is True, result.reply

    def ready(self) -> None:
        """A sitting with every deputy carded and registered (the cards and keys as the line loops send them)."""
        self.ok({"type": "OpenSitting", "title": "Засідання"})
        for i in range(1, 6):
            self.engine.execute(ev.CardInserted(seat=i, uid=f"{i:08X}"))
        self.ok({"type": "OpenRegistration"})
        for i in range(1, 6):
            self.engine.execute(ev.KeyPressed(seat=i, key=Key.REGISTER))
        self.ok({"type": "CloseRegistration"})

    def close(self) -> None:
        self.engine.stop()
        self.journal.close()


@pytest.fixture
def chamber(tmp_path: Path) -> Iterator[Chamber]:
    c = Chamber(tmp_path)
    try:
        yield c
    finally:
        c.close()


def test_open_sitting_takes_the_roster_from_the_config(chamber: Chamber) -> None:
    chamber.ok({"type": "OpenSitting", "number": 3, "title": "Позачергове"})
    [record] = list(chamber.journal.records(chamber.engine.sitting_uid or ""))
    first = ev.decode_input(record.payload)
    assert isinstance(first, ev.OpenSitting) and first.roster == chamber.config.roster() and first.number == 3
    forged = chamber.run({"type": "OpenSitting", "roster": {"council": {"name": "x", "composition": 1}}})
    assert forged.forged and forged.reply["reason"] == "bad_command"


@pytest.mark.parametrize(
    "command",
    [
        {"type": "KeyPressed", "seat": 1, "key": 2},
        {"type": "CardInserted", "seat": 1, "uid": "00000001"},
        {"type": "SeatWentOffline", "seat": 1},
        {"type": "SecretBallotCast", "seat": 1},
        {"type": "SecretTallySealed", "vote": 1, "counts": [5, 0, 0]},
        {"type": "AnnulSecretVote", "reason": "x"},
        {"type": "Tick"},
    ],
)
def test_seat_and_engine_inputs_never_come_from_the_web(chamber: Chamber, command: dict[str, Any]) -> None:
    result = chamber.run(command)
    assert result.forged and result.reply["ok"] is False and result.reply["reason"] == "bad_command"
    assert "never from the web" in result.reply["detail"]
    assert chamber.engine.journal.sittings() == []  # nothing journaled


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("not json {", "not JSON"),
        ('["OpenVote"]', "a command is a JSON object"),
        (42, "a command is a JSON object"),
        ({"title": "no type"}, '"type"'),
        ({"type": 5}, '"type"'),
        ({"type": "DropTable"}, "unknown command type"),
        ({"type": "OpenVote", "secret_extra": 1}, "no field(s) secret_extra"),
        ({"type": "OpenVote", "duration_s": "sixty"}, "duration_s"),
        ({"type": "OpenVote", "kind": "by_show_of_hands"}, "kind"),
        ({"type": "OpenVote", "threshold": {"num": 3, "den": 2}}, "threshold"),
        ({"type": "GrantFloor"}, "seat"),
        ({"type": "AcknowledgeAlert", "id": "five"}, "id"),
        ({"type": "ImportAgenda"}, "csv"),
    ],
)
def test_malformed_commands_are_refused_before_the_engine(chamber: Chamber, command: object, why: str) -> None:
    result = chamber.run(command)
    assert result.forged and result.reply["reason"] == "bad_command", result.reply
    assert why in result.reply["detail"], result.reply
    assert result.reply["message"].startswith("Неправильна команда")
    assert_ukrainian(result.reply["message"])
    assert chamber.run(command, lang="en").reply["message"].startswith("Malformed command: ")


def assert_ukrainian(message: str) -> None:
    """A sentence the secretary reads: Ukrainian, with nothing left in English for want of a pattern (a
    field's or a command's name, and an exception's own text in brackets, stay as they are)."""
    assert "англійською" not in message, message
    assert re.search(r"[А-ЯІЇЄҐа-яіїєґ]{3}", message), message


def test_a_command_may_come_as_json_text(chamber: Chamber) -> None:
    assert chamber.run('{"type": "OpenSitting", "title": "Текстом"}').reply["ok"] is True


@pytest.mark.parametrize("role", ["observer", "operator"])
def test_roles_that_may_not_open_a_vote(chamber: Chamber, role: str) -> None:
    chamber.ready()
    result = chamber.run({"type": "OpenVote", "title": "Про бюджет"}, role=role)
    assert result.forged and result.reply["reason"] == "forbidden"
    assert result.reply["message"] == f"Ваша роль ({role}) не дозволяє цю дію"
    assert chamber.engine.snapshot().vote is None


def test_the_role_matrix() -> None:
    engine_commands = set(ev.INPUT_TYPES) - cmd.NOT_FROM_WEB
    for command in engine_commands | {"AcknowledgeAlert", "ImportAgenda"}:
        assert cmd.allowed("secretary", command) and cmd.allowed("chair", command), command
        assert not cmd.allowed("observer", command), command
        assert not cmd.allowed("nobody", command), command
    assert {c for c in engine_commands | {"AcknowledgeAlert", "ImportAgenda"} if cmd.allowed("operator", c)} == {
        "RequestFloor", "WithdrawRequest", "GrantFloor", "NextSpeaker", "RevokeFloor", "ExtendSpeech",
        "ChairPriority", "AcknowledgeAlert",
    }  # fmt: skip
    for command in cmd.NOT_FROM_WEB:
        assert not any(cmd.allowed(role, command) for role in cmd.ROLE_COMMANDS), command


def test_every_role_checked_for_every_command(chamber: Chamber) -> None:
    """Observers are refused everything, before decoding; the operator all but the floor."""
    for kind in sorted(cmd.ENGINE_COMMANDS | set(cmd.WEB_COMMANDS)):
        assert chamber.run({"type": kind}, role="observer").reply["reason"] == "forbidden", kind
        if kind not in cmd.FLOOR_COMMANDS and kind != "AcknowledgeAlert":
            assert chamber.run({"type": kind}, role="operator").reply["reason"] == "forbidden", kind


def test_the_engines_refusal_comes_back_with_its_reason_in_both_languages(chamber: Chamber) -> None:
    chamber.ok({"type": "OpenSitting"})
    uk = chamber.run({"type": "OpenVote", "title": "Про бюджет"}, lang="uk")
    assert not uk.forged
    assert uk.reply == {
        "ok": False,
        "reason": "no_quorum",
        "message": "Немає кворуму: зареєстровано 0 із 5, потрібно 3",
        "detail": "no quorum: 0 registered of 5",
    }
    en = chamber.run({"type": "OpenVote", "title": "Про бюджет"}, lang="en")
    assert en.reply["message"] == "No quorum: 0 registered of 5, 3 needed"
    phase = chamber.run({"type": "CloseVote"}, lang="en").reply
    assert phase["reason"] == "not_allowed" and phase["message"] == "Not allowed now (phase: idle)"


def test_a_vote_opened_and_closed_from_the_web(chamber: Chamber) -> None:
    chamber.ready()
    reply = chamber.run(
        {
            "type": "OpenVote",
            "kind": "roll_call",
            "subject": "basis",
            "title": "Про бюджет",
            "threshold": {"num": 2, "den": 3, "base": "composition", "strict": False},
            "duration_s": 0,
        },
        role="chair",
    ).reply
    assert reply["ok"] is True and isinstance(reply["seq"], int)
    vote = chamber.engine.snapshot().vote
    assert vote is not None and vote.threshold.num == 2 and vote.threshold.strict is False
    chamber.ok({"type": "CloseVote"})


def test_acknowledging_an_alert(chamber: Chamber) -> None:
    chamber.ok({"type": "OpenSitting"})
    chamber.engine.execute(ev.CardInserted(seat=1, uid="FFFFFFFF"))  # nobody's card: an alert
    [alert] = chamber.publisher.alerts.items()
    assert alert["kind"] == "unknown_card" and alert["seat"] == 1 and alert["acknowledged"] is False
    assert chamber.run({"type": "AcknowledgeAlert", "id": alert["id"]}, role="operator").reply == {"ok": True}
    assert chamber.publisher.alerts.items()[0]["acknowledged"] is True
    missing = chamber.run({"type": "AcknowledgeAlert", "id": 999}).reply
    assert missing["reason"] == "unknown_alert" and not chamber.run({"type": "AcknowledgeAlert", "id": 999}).forged


def test_an_agenda_imported_from_csv(chamber: Chamber) -> None:
    chamber.ok({"type": "OpenSitting"})
    text = '\ufeffномер;назва;проєкт\n1;Про бюджет;757/2\n2;"Про тарифи; водопостачання";\n\n2.1;Поправка\n'
    chamber.ok({"type": "ImportAgenda", "csv": text})
    agenda = chamber.engine.snapshot().agenda
    assert [(i.number, i.title, i.draft) for i in agenda] == [
        ("1", "Про бюджет", "757/2"),
        ("2", "Про тарифи; водопостачання", ""),
        ("2.1", "Поправка", ""),
    ]
    chamber.ok({"type": "ImportAgenda", "csv": "1,Звіт голови\n"})
    assert [i.title for i in chamber.engine.snapshot().agenda] == ["Звіт голови"]


@pytest.mark.parametrize(
    ("text", "reason", "why"),
    [
        ("", "bad_agenda", "no items"),
        ("1\n", "bad_agenda", "needs a number and a title"),
        ("1,Звіт,757,зайве\n", "bad_agenda", "only number, title and draft"),
        ("1,Звіт\n1,Знову\n", "duplicate_item", "unique"),
        ("1,Звіт\x1b[31m\n", "bad_text", "U+001B"),
    ],
)
def test_an_agenda_csv_that_cannot_be_taken(chamber: Chamber, text: str, reason: str, why: str) -> None:
    chamber.ok({"type": "OpenSitting"})
    result = chamber.run({"type": "ImportAgenda", "csv": text})
    assert result.reply["reason"] == reason and why in result.reply["detail"], result.reply
    assert not result.forged  # the secretary's file, not a forgery
    assert_ukrainian(result.reply["message"])


def test_texts_over_the_limit_are_refused_before_the_journal(chamber: Chamber) -> None:
    """The core journals what it is given: a megabyte title would be in the journal, the protocol and
    every page for good.  The web keeps texts to ``TEXT_MAX`` characters and agendas to
    ``MAX_AGENDA_ITEMS`` items, and says so in the page's language."""
    chamber.ready()
    records = len(list(chamber.journal.records(chamber.engine.sitting_uid or "")))
    long = "Про бюджет " + "х" * cmd.TEXT_MAX
    for command in (
        {"type": "OpenVote", "title": long},
        {"type": "CancelVote", "reason": long},
        {"type": "SetAgenda", "items": [{"number": "1", "title": "Бюджет"}, {"number": "2", "title": long}]},
        {"type": "SetAgenda", "items": [{"number": str(i), "title": "п"} for i in range(cmd.MAX_AGENDA_ITEMS + 1)]},
        {"type": "OpenVote", "title": "так", "proposals": ["а", long]},
    ):
        result = chamber.run(command)
        assert result.reply["reason"] == "too_long", (command["type"], result.reply)
        assert result.reply["message"].startswith("Задовгий текст: "), result.reply
        assert "англійською" not in result.reply["message"]
    csv = chamber.run({"type": "ImportAgenda", "csv": f"1,{long}\n"})
    assert csv.reply["reason"] == "too_long" and not csv.forged  # the secretary's file, not a forgery
    assert len(list(chamber.journal.records(chamber.engine.sitting_uid or ""))) == records  # none journaled
    chamber.ok({"type": "OpenVote", "title": "х" * cmd.TEXT_MAX})  # the limit itself is taken


@pytest.mark.parametrize(
    "why",
    [
        "not JSON: Expecting value: line 1 column 1 (char 0)",
        "a command is a JSON object, got list",
        'a command needs a "type" (a string)',
        "KeyPressed comes only from the seat consoles or the engine, never from the web",
        "unknown command type 'DropTable'",
        "OpenVote has no field(s) secret_extra",
        "OpenSitting takes its roster from config.toml, not from the command",
        "the agenda CSV is larger than 256 KiB",
        "agenda CSV line 3: needs a number and a title",
        "agenda CSV line 3: only number, title and draft",
        "more than 1000 agenda items",
        "OpenVote.title: 1001 characters, at most 1000",
        "SetAgenda.items[2].title: 5000 characters, at most 1000",
        "SetAgenda.items: 1001 agenda items, at most 1000",
        "the agenda CSV holds no items",
        "the packet's JSON does not parse: Expecting value",
        "an event is a JSON array starting with its name",
        "malformed packet",
        "no event 'vote' on /hall",
        "Expected `int | null`, got `str` - at `$.duration_s`",
        "Expected `int` >= 1 - at `$.seat`",
        "Object missing required field `seat`",
        "Object contains unknown field `x`",
        "Invalid enum value 'by_show_of_hands' - at `$.kind`",
        "threshold fraction must satisfy 0 < p <= q, got 3/2 - at `$.threshold`",
    ],
)
def test_every_why_the_web_layer_writes_reads_in_ukrainian(why: str) -> None:
    """display.reasons.why_uk has a sentence for each ``why`` display.commands and display.app write
    (the two lists are kept together: a new ``Refused`` text needs a pattern, or this list misses it)."""
    assert_ukrainian(reasons.why_uk(why))


def test_every_refused_text_of_the_web_layer_is_in_the_list_above() -> None:
    import inspect

    source = inspect.getsource(cmd) + inspect.getsource(reasons)
    written = re.findall(r'Refused\(\s*"bad_[a-z_]+",\s*f?"([^"]+)"', source)  # the codes that show a why
    assert len(written) >= 12, written
    for text in written:
        sample = re.sub(r"\{[^}]*\}", "7", text)  # a formatted field stands for a number or a name
        assert "англійською" not in reasons.why_uk(sample), text


# --- alerts in words ----------------------------------------------------------------------------------


def test_every_alert_the_core_raises_reads_in_both_languages() -> None:
    """The core's English alert details, made by the core itself, each read by display.alert_words."""
    from factories import Driver

    from chamber.core.effects import Alert
    from display import alert_words

    config = web_config(5, extra="")
    d = Driver(config.roster())
    alerts: list[Alert] = []

    def keep(effects: Any) -> None:
        alerts.extend(e for e in effects if isinstance(e, Alert))

    keep(d.apply(ev.CardInserted(seat=1, uid="DEADBEEF")))  # unknown_card
    keep(d.apply(ev.CardInserted(seat=1, uid="00000001")))
    keep(d.apply(ev.CardInserted(seat=2, uid="00000001")))  # card_elsewhere
    keep(d.apply(ev.CardRemoved(seat=1)))
    keep(d.apply(ev.CardRemoved(seat=2)))
    keep(d.apply(ev.CardInserted(seat=3, uid="00000001")))  # wrong_seat (assigned seating) or accepted
    keep(d.apply(ev.SeatWentOffline(seat=4)))  # seat_offline
    keep(d.apply(ev.MicUnitChanged(seat=5, online=False)))  # mic_unit_offline
    keep(d.apply(ev.OpenVote(kind=VoteKind.SECRET, title="Таємне")))  # secret_without_basis
    keep(d.apply(ev.CardInserted(seat=5, uid="00000005")))
    keep(d.apply(ev.KeyPressed(seat=5, key=Key.REGISTER, seq=1, boot=1)))
    keep(d.apply(ev.KeyPressed(seat=5, key=Key.NO, seq=1, boot=1)))  # event_conflict: the same number, another key
    # the core's own format of an internal error (a defect cannot be made on purpose)
    alerts.append(Alert(kind="internal_error", detail="internal error handling CloseVote: KeyError: 7"))
    alerts.append(Alert(kind="internal_error", detail="internal error at a deadline: ValueError: x"))
    kinds = {a.kind for a in alerts}
    assert {"unknown_card", "card_elsewhere", "seat_offline", "mic_unit_offline", "internal_error"} <= kinds, kinds
    for alert in alerts:
        got = alert_words.read(alert.kind, alert.detail)
        assert got is not None, alert
        uk, en = got
        assert re.match(r"[А-ЯІЇЄҐ]", uk) and uk != alert.detail and en, (alert, uk)
    # a detail no pattern reads is still Ukrainian first, the engine's text after it
    uk, en = alert_words.words("seat_offline", "the console fell off the bus")
    assert uk.startswith("Пульт не відповідає") and en.endswith("the console fell off the bus")
    uk, _ = alert_words.words("brand_new_kind", "something")
    assert uk.startswith("Сповіщення")


def test_the_console_gets_each_alert_in_both_languages(chamber: Chamber) -> None:
    chamber.ready()
    chamber.engine.execute(ev.CardInserted(seat=1, uid="DEADBEEF"))
    [alert] = chamber.publisher.alerts.items()
    assert alert["kind"] == "unknown_card" and alert["detail"] == "unknown card DEADBEEF at seat 1"
    assert alert["detail_uk"] == "Картку DEADBEEF на місці 1 не закріплено за жодним депутатом"
    assert alert["detail_en"] == "Card DEADBEEF at seat 1 belongs to no deputy"


def test_the_csv_parser_alone() -> None:
    assert cmd.agenda_from_csv("Number,Title,Draft\n7,Сесія,\n").items == (ev.AgendaItem(number="7", title="Сесія"),)
    assert len(cmd.agenda_from_csv("\n".join(f"{i}\tПитання {i}" for i in range(1, 50))).items) == 49
    with pytest.raises(cmd.Refused):
        cmd.agenda_from_csv("x" * (cmd.MAX_CSV_BYTES + 1))


class _Stub:
    """An engine whose Futures fail or never answer (the journal down; a stuck engine)."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def submit(self, event: ev.Input) -> Future[Any]:
        fut: Future[Any] = Future()
        if self.fail:
            fut.set_exception(EngineError("journal write failed: disk full"))
        return fut

    def snapshot(self) -> Any:
        return Sitting().snapshot()


@pytest.mark.parametrize(("fail", "reason"), [(True, "engine_error"), (False, "timeout")])
def test_an_engine_that_fails_or_does_not_answer(fail: bool, reason: str) -> None:
    config = web_config(3)
    chamber = st.chamber_of(config)
    runner = cmd.CommandRunner(_Stub(fail), config, chamber, AlertBook(), timeout_s=0.05)
    reply = runner.run({"type": "OpenRegistration"}, user="t", role="secretary", lang="en").reply
    assert reply["ok"] is False and reply["reason"] == reason
    if fail:
        assert reply["message"].startswith("The command could not be journaled") and "disk full" in reply["message"]
