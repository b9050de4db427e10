"""The Socket.IO namespaces of docs/web-protocol.md.

* ``/hall`` is public and read-only: ``state`` on connect, then the publisher's patches; ``resync``
  gets the state again; any other event is refused with an ``error`` event and a log line.
* ``/console`` needs a logged-in session (checked against the users table on connect and on every
  command); ``command`` runs through the command runner (display.commands) and is answered in its ack.
  The CSRF token comes in the connection's ``auth`` (``{"csrf": token}``) or with each command.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace

from display import command_ids, reasons
from display import state as st
from display.auth import same_token
from display.packets import MALFORMED
from display.web import LANGS, Identity, Web

log = logging.getLogger("display.app")  # the web server's one log name (see display.web)


class _Guarded(Namespace):  # type: ignore[misc]  # flask_socketio has no type hints
    """A namespace that answers only the events it names; anything else is a forgery or a bug of a
    page: refused with an ``error`` event, logged, never applied."""

    EVENTS: frozenset[str] = frozenset({"connect", "disconnect", "resync"})

    def __init__(self, namespace: str, web: Web) -> None:
        super().__init__(namespace)
        self.web = web

    def trigger_event(self, event: str, *args: Any) -> Any:
        if event in self.EVENTS:
            return super().trigger_event(event, *args)
        sid = str(args[0]) if args else ""
        if event == MALFORMED:
            return self.refuse(sid, event, "bad_command", str(args[1]) if len(args) > 1 else "malformed packet")
        code = "read_only" if self.namespace == "/hall" else "bad_command"
        return self.refuse(sid, event, code, f"no event {str(event)[:60]!r} on {self.namespace}")

    def refuse(self, sid: str, event: str, code: str, why: str, lang: str = "uk") -> st.JSON:
        log.warning("web: %s event %r from %s refused: %s: %s", self.namespace, str(event)[:60], sid, code, why)
        message = reasons.message(code, lang, {"why": why})
        reply = {"ok": False, "reason": code, "message": message, "detail": why}
        assert self.socketio is not None
        self.socketio.emit("error", {"event": str(event)[:60], **reply}, namespace=self.namespace, to=sid)
        return reply


class HallNamespace(_Guarded):
    """``/hall``: public and read-only."""

    def on_connect(self, auth: object = None) -> None:
        self.web.publisher.hall.send_whole(request.sid, self.web.publisher.now_ms())  # type: ignore[attr-defined]

    def on_disconnect(self, reason: object = None) -> None:
        return None

    def on_resync(self, *_: object) -> None:
        self.web.publisher.hall.send_whole(request.sid, self.web.publisher.now_ms())  # type: ignore[attr-defined]


class ConsoleNamespace(_Guarded):
    """``/console``: a logged-in session's state and commands."""

    EVENTS = frozenset({"connect", "disconnect", "resync", "command"})

    def on_connect(self, auth: object = None) -> None:
        web = self.web
        who = web.identify()
        if who is None:
            log.warning("web: /console connection from %s without a log-in refused", request.remote_addr)
            raise ConnectionRefusedError({"reason": "not_logged_in", "message": reasons.message("not_logged_in", "uk")})
        given = auth.get("csrf") if isinstance(auth, dict) else None
        who.csrf_ok = same_token(who.csrf, given)
        if given is not None and not who.csrf_ok:
            log.warning("web: /console connection of %s gave a wrong CSRF token", who.name)
        asked = auth.get("lang") if isinstance(auth, dict) else None
        kept = request.cookies.get("lang")
        who.lang = asked if isinstance(asked, str) and asked in LANGS else kept if kept in LANGS else "uk"
        sid: str = request.sid  # type: ignore[attr-defined]
        with web.lock:
            web.sockets[sid] = who
        self._send_state(sid, who)

    def _send_state(self, sid: str, who: Identity) -> None:
        extra = {"user": {"name": who.name, "role": who.role}}
        self.web.publisher.console.send_whole(sid, self.web.publisher.now_ms(), console_extra=extra)

    def on_disconnect(self, reason: object = None) -> None:
        with self.web.lock:
            self.web.sockets.pop(request.sid, None)  # type: ignore[attr-defined]

    def on_resync(self, *_: object) -> None:
        sid: str = request.sid  # type: ignore[attr-defined]
        who = self.web.sockets.get(sid)
        if who is not None:
            self._send_state(sid, who)

    def on_command(self, data: object = None, *_: object) -> st.JSON:
        web = self.web
        sid: str = request.sid  # type: ignore[attr-defined]
        known = web.sockets.get(sid)
        who = web.identify()  # the role now, not at connect: it may have changed, or the user logged out
        if known is None or who is None or who.session_id != known.session_id:
            return self.refuse(sid, "command", "not_logged_in", "the session ended", known.lang if known else "uk")
        lang = known.lang
        if isinstance(data, dict) and "csrf" in data:
            token, data = data.get("csrf"), {k: v for k, v in data.items() if k != "csrf"}
            if not same_token(who.csrf, token):
                return self.refuse(sid, "command", "csrf", "the command's CSRF token is wrong", lang)
        elif not known.csrf_ok:
            return self.refuse(sid, "command", "csrf", "no CSRF token in the connection or the command", lang)
        command_id = None
        if isinstance(data, dict) and "command_id" in data:
            command_id, data = data.get("command_id"), {k: v for k, v in data.items() if k != "command_id"}
            if not command_ids.valid(command_id):
                why = "a command_id is 1 to 64 letters, digits, '-' or '_'"
                return self.refuse(sid, "command", "bad_command", why, lang)
            assert isinstance(command_id, str)
            earlier = web.seen.claim(who.session_id, command_id)
            if earlier is not None:
                return self._replayed(sid, who, command_id, earlier, lang)
        try:
            result = web.runner.run(data, user=who.name, role=who.role, lang=lang)
        except BaseException:
            if command_id is not None:  # no reply to give a repeat: let it be tried again
                web.seen.release(who.session_id, command_id)
            raise
        if command_id is not None:
            web.seen.settle(who.session_id, command_id, result.reply)
        if result.forged:
            assert self.socketio is not None
            self.socketio.emit("error", {"event": "command", **result.reply}, namespace=self.namespace, to=sid)
        return result.reply

    def _replayed(self, sid: str, who: Identity, command_id: str, earlier: st.JSON, lang: str) -> st.JSON:
        """A command whose id this session sent before: not run again (display.command_ids)."""
        if command_ids.running(earlier):
            return self.refuse(sid, "command", "replayed", f"command {command_id} is being carried out", lang)
        log.warning("web: %s sent command %s again: not carried out twice", who.name, command_id)
        return {**earlier, "replayed": True}
