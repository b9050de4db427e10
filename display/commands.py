"""Console commands: from a browser's JSON object to an engine input, checked, run, and answered.

A command is the engine's own input in its journal JSON form (``{"type": "OpenVote", ...}``), plus
two web-only commands: ``AcknowledgeAlert`` (marks an alert seen; not an input of the sitting) and
``ImportAgenda`` (a CSV text that becomes ``SetAgenda``).  ``CommandRunner.run`` goes through, in
order, and stops at the first refusal:

1. the shape: a JSON object with a string ``type`` (``bad_command``);
2. what the web may never send: the seat events (``KeyPressed``, ``CardInserted``, ...) come only from
   the consoles, and ``Tick``, ``SecretBallotCast``, ``SecretTallySealed`` and ``AnnulSecretVote`` only
   from the engine itself — a forged seal would publish made-up secret counts (``bad_command``);
3. the role matrix of docs/web-protocol.md (``forbidden``), before anything is decoded;
4. decoding with msgspec against the input's own struct: unknown fields, wrong types, a threshold
   that is no fraction are refused (``bad_command``); ``OpenSitting`` gets the roster from config.toml
   and refuses one from the browser;
5. ``engine.submit(input)``: the engine journals it, applies it and answers; its refusal comes back
   with the engine's reason code.

The reply is ``{"ok": true}`` or ``{"ok": false, "reason", "message", "detail"}`` (``message`` in the
session's language from display.reasons, ``detail`` the engine's English text).  ``Result.forged``
says the web layer refused it (steps 1-4): the namespace then also sends an ``error`` event and logs
it, since the console's own page never sends such a command.  An agenda CSV that cannot be taken is
the secretary's file, not a malformed command: ``bad_agenda``, not a forgery.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import msgspec

from chamber.config import Config
from chamber.core import events as ev
from chamber.engine import Outcome
from display import reasons
from display.publisher import AlertBook
from display.state import Chamber

log = logging.getLogger("display.commands")

SUBMIT_TIMEOUT_S = 10.0
MAX_CSV_BYTES = 256 * 1024
MAX_AGENDA_ITEMS = 1000
_WHY_MAX = 300  # msgspec's error names the field; a page does not need more than this of it
#: The longest text a command may carry in one field (a title, a reason, an agenda item's title): above
#: every form's maxlength (200-500) and any real draft decision's title, far below what would bloat the
#: journal, the protocol and every page that shows it (the socket's packet limit is about 1 MiB).
TEXT_MAX = 1000


# --- web-only commands ---------------------------------------------------------------------------------


class AcknowledgeAlert(msgspec.Struct, frozen=True, tag=True, kw_only=True, forbid_unknown_fields=True):
    id: int


class ImportAgenda(msgspec.Struct, frozen=True, tag=True, kw_only=True, forbid_unknown_fields=True):
    csv: str


WebCommand = AcknowledgeAlert | ImportAgenda
WEB_COMMANDS: dict[str, type[AcknowledgeAlert] | type[ImportAgenda]] = {
    "AcknowledgeAlert": AcknowledgeAlert,
    "ImportAgenda": ImportAgenda,
}

#: Inputs only the consoles (through the line loops) or the engine itself may make.
NOT_FROM_WEB = frozenset(
    {cls.__name__ for cls in ev.SEAT_EVENTS} | {"SecretBallotCast", "Tick", "SecretTallySealed", "AnnulSecretVote"}
)
ENGINE_COMMANDS = frozenset(set(ev.INPUT_TYPES) - NOT_FROM_WEB)
FLOOR_COMMANDS = frozenset(
    {"RequestFloor", "WithdrawRequest", "GrantFloor", "NextSpeaker", "RevokeFloor", "ExtendSpeech", "ChairPriority"}
)

#: What each role may send (docs/web-protocol.md, «Roles»).  User management is not a console command
#: (``chamber users`` on the controller), so chair and secretary send the same commands.
ROLE_COMMANDS: dict[str, frozenset[str]] = {
    "secretary": ENGINE_COMMANDS | set(WEB_COMMANDS),
    "chair": ENGINE_COMMANDS | set(WEB_COMMANDS),
    "operator": FLOOR_COMMANDS | {"AcknowledgeAlert"},
    "observer": frozenset(),
}


def allowed(role: str, command_type: str) -> bool:
    return command_type in ROLE_COMMANDS.get(role, frozenset())


# --- decoding ------------------------------------------------------------------------------------------


class Refused(Exception):
    """The web layer refuses a command: ``code`` is the reply's reason, ``why`` the English detail."""

    def __init__(self, code: str, why: str) -> None:
        super().__init__(why)
        self.code = code
        self.why = why


def _fields(cls: type[Any]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(cls)}


def command_type(obj: object) -> tuple[dict[str, Any], str]:
    """The command as a dict and its type; a JSON text is parsed first (a client may send either)."""
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise Refused("bad_command", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Refused("bad_command", f"a command is a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise Refused("bad_command", 'a command needs a "type" (a string)')
    if kind in NOT_FROM_WEB:
        raise Refused("bad_command", f"{kind} comes only from the seat consoles or the engine, never from the web")
    if kind not in ENGINE_COMMANDS and kind not in WEB_COMMANDS:
        raise Refused("bad_command", f"unknown command type {kind[:60]!r}")
    return obj, kind


def decode(obj: dict[str, Any], kind: str, config: Config) -> ev.Input | WebCommand:
    """The input (or web command) of a command whose type is known and allowed."""
    cls: type[Any] = WEB_COMMANDS.get(kind) or ev.INPUT_TYPES[kind]
    unknown = set(obj) - _fields(cls) - {"type"}
    if unknown:
        raise Refused("bad_command", f"{kind} has no field(s) {', '.join(sorted(unknown))[:_WHY_MAX]}")
    if kind == "OpenSitting":
        if "roster" in obj:
            # who sits where and by which rules is config.toml's, journaled with the sitting; not a browser's
            raise Refused("bad_command", "OpenSitting takes its roster from config.toml, not from the command")
        obj = {**obj, "roster": msgspec.to_builtins(config.roster())}
    try:
        if kind in WEB_COMMANDS:
            return msgspec.convert(obj, WEB_COMMANDS[kind])
        # the journal's own decoder: what the web sends is exactly what a replay reads
        command = ev.decode_input(msgspec.json.encode(obj))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError) as exc:
        raise Refused("bad_command", str(exc)[:_WHY_MAX]) from None
    check_sizes(command, kind)
    return command


def check_sizes(command: Any, where: str) -> None:
    """Refuse (``too_long``) a command with a text over ``TEXT_MAX`` characters or an agenda of more than
    ``MAX_AGENDA_ITEMS`` items (as an imported CSV): the core journals what it is given, so the limit is
    kept at its door."""
    if isinstance(command, ev.SetAgenda) and len(command.items) > MAX_AGENDA_ITEMS:
        raise Refused("too_long", f"{where}.items: {len(command.items)} agenda items, at most {MAX_AGENDA_ITEMS}")
    if isinstance(command, str):
        if len(command) > TEXT_MAX:
            raise Refused("too_long", f"{where}: {len(command)} characters, at most {TEXT_MAX}")
    elif isinstance(command, msgspec.Struct):
        for name in command.__struct_fields__:
            if name != "roster":  # config.toml's, checked when the config is loaded
                check_sizes(getattr(command, name), f"{where}.{name}")
    elif isinstance(command, tuple):
        for i, item in enumerate(command):
            check_sizes(item, f"{where}[{i}]")


def agenda_from_csv(text: str) -> ev.SetAgenda:
    """``number,title,draft`` per line (draft optional; ``;`` or tab as separator too, as spreadsheets
    export); a first line naming the columns is skipped."""
    if len(text.encode()) > MAX_CSV_BYTES:
        raise Refused("bad_agenda", f"the agenda CSV is larger than {MAX_CSV_BYTES // 1024} KiB")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:  # one column, or too little text to tell: the plain comma
        dialect = csv.excel
    items: list[ev.AgendaItem] = []
    try:
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), dialect))
    except csv.Error as exc:
        raise Refused("bad_agenda", f"agenda CSV: {exc}") from None
    for line, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if not items and cells[0].lower() in ("number", "номер", "№", "no", "n"):
            continue  # a header
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise Refused("bad_agenda", f"agenda CSV line {line}: needs a number and a title")
        if len(cells) > 3 and any(cells[3:]):
            raise Refused("bad_agenda", f"agenda CSV line {line}: only number, title and draft")
        items.append(ev.AgendaItem(number=cells[0], title=cells[1], draft=cells[2] if len(cells) > 2 else ""))
        if len(items) > MAX_AGENDA_ITEMS:
            raise Refused("bad_agenda", f"more than {MAX_AGENDA_ITEMS} agenda items")
    if not items:
        raise Refused("bad_agenda", "the agenda CSV holds no items")
    return ev.SetAgenda(items=tuple(items))


# --- running ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    reply: dict[str, Any]
    forged: bool = False  # refused by the web layer: also an ``error`` event and a warning in the log


class CommandRunner:
    def __init__(
        self,
        engine: Any,
        config: Config,
        chamber: Chamber,
        alerts: AlertBook,
        *,
        timeout_s: float = SUBMIT_TIMEOUT_S,
    ) -> None:
        self.engine = engine
        self.config = config
        self.chamber = chamber
        self.alerts = alerts
        self.timeout_s = timeout_s

    def refusal(self, code: str, why: str, lang: str, **context: object) -> dict[str, Any]:
        ctx = self._context()
        ctx.update(context)
        ctx.setdefault("why", why)
        return {"ok": False, "reason": code, "message": reasons.message(code, lang, ctx), "detail": why}

    def _context(self) -> dict[str, object]:
        """Numbers some sentences name, as the snapshot has them now."""
        snap = self.engine.snapshot()
        composition = snap.composition or self.chamber.composition
        return {
            "registered": snap.registered,
            "composition": composition,
            "needed": self.chamber.quorum.required(composition),
            "max_open_mics": self.chamber.max_open_mics,
            "phase": snap.phase.value,
        }

    def checked(self, obj: object, *, user: str, role: str, lang: str) -> tuple[Any, str, Any] | Result:
        """(body, type name, decoded command) of a command this role may send, or the refusal of a
        malformed or forbidden one (logged, and flagged as a forgery)."""
        try:
            body, kind = command_type(obj)
            if not allowed(role, kind):
                raise Refused("forbidden", f"role {role} may not send {kind}")
            return body, kind, decode(body, kind, self.config)
        except Refused as exc:
            log.warning("web: command from %s (%s) refused: %s: %s", user, role, exc.code, exc.why)
            return Result(self.refusal(exc.code, exc.why, lang, role=role), forged=True)

    def run(self, obj: object, *, user: str, role: str, lang: str) -> Result:
        checked = self.checked(obj, user=user, role=role, lang=lang)
        if isinstance(checked, Result):
            return checked
        command = checked[2]
        if isinstance(command, AcknowledgeAlert):
            if not self.alerts.acknowledge(command.id):
                return Result(self.refusal("unknown_alert", f"no alert {command.id}", lang))
            log.info("web: %s (%s) acknowledged alert %d", user, role, command.id)
            return Result({"ok": True})
        if isinstance(command, ImportAgenda):
            try:
                command = agenda_from_csv(command.csv)
                check_sizes(command, "ImportAgenda")
            except Refused as exc:  # a CSV that does not parse is the secretary's file, not a forgery
                return Result(self.refusal(exc.code, exc.why, lang))
        return self._submit(command, user=user, role=role, lang=lang)

    def _submit(self, command: ev.Input, *, user: str, role: str, lang: str) -> Result:
        name = type(command).__name__
        try:
            outcome: Outcome = self.engine.submit(command).result(self.timeout_s)
        except FutureTimeout:
            log.error("web: %s (%s) %s: no answer from the engine in %.0f s", user, role, name, self.timeout_s)
            return Result(self.refusal("timeout", f"no answer in {self.timeout_s:.0f} s", lang))
        except Exception as exc:  # the journal could not be written: nothing was applied
            log.error("web: %s (%s) %s: %s", user, role, name, exc)
            return Result(self.refusal("engine_error", str(exc)[:_WHY_MAX], lang))
        rejected = outcome.rejection
        if rejected is not None:
            log.info("web: %s (%s) %s rejected: %s (%s)", user, role, name, rejected.reason, rejected.detail)
            return Result(self.refusal(rejected.reason, rejected.detail, lang, seat=rejected.seat))
        log.info("web: %s (%s) %s accepted (journal seq %s)", user, role, name, outcome.seq)
        return Result({"ok": True, "seq": outcome.seq})
