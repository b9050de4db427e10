"""The web server: Flask routes and the Socket.IO namespaces of docs/web-protocol.md, in the daemon's process.

``create_app(controller_or_engine, config, simulator_url=None)`` returns ``(app, socketio)`` and starts
nothing; ``WebServer`` serves them on ``[web] host:port`` with Werkzeug's threaded server (Flask-SocketIO
``async_mode="threading"``, websockets through simple-websocket; eventlet and gevent would
monkey-patch pyserial's blocking reads) and starts the publisher thread (display.publisher).

What each part does
-------------------
* Pages are server-rendered templates (display/templates, the pages engineer's) given ``t`` (the
  strings of display.i18n in the page's language), ``lang``, ``user``, ``csrf_token`` and their data.
* ``/hall`` (namespace) is public and read-only: ``state`` on connect, then the publisher's
  patches; ``resync`` gets the state again; any other event is refused with an ``error`` event and a
  log line.  ``/console`` needs a logged-in session (checked against the users table on connect and
  on every command); ``command`` runs through display.commands and is answered in its ack.
* Every POST needs the session's CSRF token; a ``/console`` connection gives it in its ``auth``
  (``{"csrf": token}``), or each command carries it as ``csrf``.
* ``/public/...`` pages are read from the journal: each sitting is replayed through the pure core
  (``Sitting``, never the engine's own) and kept, so a later request applies only the records
  written since.  They show finished votes only.
* ``/seat/<id>`` (logged in, only with the simulator) is a virtual console; its presses go through
  ``POST /seat/<id>/press|card|presence`` to the simulator's press API on loopback, exactly as a
  finger on a simulated console would: through the bus, the line loop and the engine.

The engine has one owner: everything here reads ``engine.snapshot()`` or the journal, and changes
the sitting only with ``engine.submit``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from flask import (
    Flask,
    Response,
    abort,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface
from flask_socketio import ConnectionRefusedError, Namespace, SocketIO
from socketio import packet as sio_packet
from werkzeug.serving import BaseWSGIServer, make_server

from chamber.config import Config
from chamber.core.events import decode_input
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.engine import SteadyClock
from chamber.journal import Journal
from display import page_filters, reasons
from display import state as st
from display.auth import LoginGuard, UserStore, load_secret_key, new_token, same_token
from display.commands import CommandRunner
from display.publisher import Publisher, line_health
from protocol_export import site_files  # light: the renderer and pyHanko are imported when a file is made

try:
    from display.i18n import STRINGS
except ImportError:  # the pages engineer's module; the server runs without it
    STRINGS = {}

log = logging.getLogger("display.app")

LANGS = ("uk", "en")
SESSION_HOURS = 12
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class Identity:
    """A logged-in user as the session and the users table agree on them now."""

    name: str
    role: str
    csrf: str
    session_id: str
    lang: str = "uk"
    csrf_ok: bool = False  # a /console connection that gave the token in its auth


class _Session(SecureCookieSessionInterface):
    """The session cookie is Secure when the page was served over TLS, directly or behind a proxy that
    says so; HttpOnly and SameSite=Lax always (the app's config)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        if not has_request_context():
            return False
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return request.is_secure or proto == "https"


# --- Socket.IO packets ----------------------------------------------------------------------------

#: The event name a packet gets whose JSON does not parse, or is not ``[name, ...]``: the namespaces
#: refuse it like any unknown event (an ``error`` back, a log line) instead of the Socket.IO server
#: failing inside its decoder.
MALFORMED = "<malformed>"


class _Packet(sio_packet.Packet):  # type: ignore[misc]  # python-socketio has no type hints
    json = st.Utf8Json

    def decode(self, encoded_packet: Any) -> int:
        try:
            count: int = super().decode(encoded_packet)
        except ValueError as exc:  # bad JSON (JSONDecodeError is a ValueError), or a broken header
            if self.namespace is None or self.packet_type not in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
                raise
            self.data = [MALFORMED, f"the packet's JSON does not parse: {exc}"]
            return 0
        if self.packet_type == sio_packet.EVENT and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            self.data = [MALFORMED, "an event is a JSON array starting with its name"]
        return count


# --- the public archive -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Replayed:
    sitting: Sitting
    seq: int = 0
    head: str = ""
    opened_at_ms: int = 0
    snapshot: Snapshot | None = None
    broken: str | None = None  # a record that cannot be decoded: the replay stops before it


class Archive:
    """Sittings replayed from the journal for the public pages (incrementally; thread-safe)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._cache: dict[str, _Replayed] = {}
        self._lock = threading.Lock()

    def sittings(self) -> list[str]:
        return self._journal.sittings()

    def replayed(self, uid: str) -> _Replayed:
        with self._lock:
            entry = self._cache.get(uid)
            if entry is None:
                entry = self._cache[uid] = _Replayed(Sitting())
            if entry.broken is None:
                for rec in self._journal.records(uid, after_seq=entry.seq):
                    try:
                        event = decode_input(rec.payload)
                    except msgspec.DecodeError as exc:
                        entry.broken = f"record {rec.seq} cannot be decoded: {exc}"
                        log.error("public pages: sitting %s: %s", uid, entry.broken)
                        break
                    if entry.seq == 0:
                        entry.opened_at_ms = rec.at_ms
                    entry.sitting.apply(event, rec.at_ms)
                    entry.seq, entry.head = rec.seq, rec.hash
                    entry.snapshot = None
            if entry.snapshot is None:
                entry.snapshot = entry.sitting.snapshot()
            return entry

    def summary(self, uid: str) -> st.JSON:
        entry = self.replayed(uid)
        snap = entry.snapshot
        assert snap is not None
        return {
            "uid": uid,
            "number": snap.number,
            "title": snap.title,
            "opened_at_ms": entry.opened_at_ms,
            "date": page_filters.kyiv_date(entry.opened_at_ms),  # the day in Kyiv, where the sitting was
            "open": snap.phase.value != "no_sitting",
            "votes": len(snap.results),
            "records": entry.seq,
            "head": f"{entry.seq}:{entry.head}",
            "broken": entry.broken,
        }


# --- the shared context ----------------------------------------------------------------------------


class Web:
    """Everything the routes and the namespaces share (``app.extensions["chamber"]``)."""

    def __init__(
        self,
        engine: Any,
        config: Config,
        *,
        lines: dict[str, Any],
        simulator_url: str | None,
        users: UserStore,
        emit: Callable[..., Any],
        login_limit: int,
    ) -> None:
        self.engine = engine
        self.config = config
        self.chamber = st.chamber_of(config)
        self.simulator_url = simulator_url.rstrip("/") if simulator_url else None
        self.users = users
        self.guard = LoginGuard(limit=login_limit)
        clock = SteadyClock()  # as the engine's: wall time once, then monotonic
        self.publisher = Publisher(
            engine,
            self.chamber,
            emit,
            clock=clock,
            health=(lambda: line_health(lines.values())) if lines else None,
            simulator=self.simulator_url is not None,
        )
        engine.subscribe(self.publisher.on_effects)
        self.runner = CommandRunner(engine, config, self.chamber, self.publisher.alerts)
        self.archive = Archive(engine.journal)
        # the sittings' PDFs and open data for /public/files/...: made from the journal in a worker
        # process (never on the engine's interpreter), kept while the sitting's head stays
        place = config.council.place or config.council.name
        self.files = site_files.FileCache(
            engine.journal,
            identity=lambda: site_files.signing_identity(config.signing),
            location=place,
            maker=site_files.process_maker(engine.journal, config.signing, place),
        )
        self.sockets: dict[str, Identity] = {}  # /console connection sid -> who
        self.revoked: set[str] = set()  # session ids logged out (a copied cookie must not live on)
        self.lock = threading.Lock()

    def identify(self) -> Identity | None:
        """The logged-in user of this request's session, or None; the table has the last word."""
        name, stamp, sid = session.get("user"), session.get("stamp"), session.get("sid")
        if not isinstance(name, str) or not isinstance(sid, str):
            return None
        with self.lock:
            if sid in self.revoked:
                return None
        user = self.users.get(name)
        if user is None or user.stamp != stamp:
            return None
        return Identity(name=user.name, role=user.role, csrf=str(session.get("csrf", "")), session_id=sid)


def current_lang() -> str:
    asked = request.args.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get("lang")
    return kept if kept in LANGS else "uk"


def strings(lang: str) -> dict[str, str]:
    return dict(STRINGS.get(lang) or STRINGS.get("uk") or {})


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would make our log-in page a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


# --- the app ----------------------------------------------------------------------------------------


def create_app(
    controller_or_engine: Any,
    config: Config,
    *,
    simulator_url: str | None = None,
    secure_cookies: bool = False,
    users: UserStore | None = None,
    login_limit: int = 5,
) -> tuple[Flask, SocketIO]:
    """The Flask app and its SocketIO (nothing started: see ``WebServer``).

    ``controller_or_engine``: a ``chamber.daemon.Controller`` (its line loops give the console the
    lines' health) or a bare ``chamber.engine.Engine``.  ``simulator_url``: the simulator's press API
    (``/seat/<id>`` exists only with it).  ``secure_cookies``: always mark the session cookie Secure
    (it is anyway on a request that came over TLS or says ``X-Forwarded-Proto: https``).
    """
    engine = getattr(controller_or_engine, "engine", controller_or_engine)
    lines: dict[str, Any] = dict(getattr(controller_or_engine, "lines", {}) or {})
    app = Flask("display")
    app.session_interface = _Session()
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # /api/state: Cyrillic as UTF-8, not \u escapes
    app.config.update(
        SECRET_KEY=load_secret_key(config.web.secret_key_file),
        SESSION_COOKIE_NAME="chamber_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    socketio = SocketIO(
        app,
        async_mode="threading",
        # One connection's commands run one after another, in the order the secretary gave them
        # (a handler thread per event could run "close registration" before "open registration").
        async_handlers=False,
        max_http_buffer_size=1024 * 1024,
        serializer=_Packet,
        logger=False,
        engineio_logger=False,
    )
    store = users or UserStore(engine.journal.engine)
    web = Web(
        engine,
        config,
        lines=lines,
        simulator_url=simulator_url,
        users=store,
        emit=socketio.emit,
        login_limit=login_limit,
    )
    app.extensions["chamber"] = web
    page_filters.install(app)  # Kyiv local time and the Ukrainian alphabet for the public pages
    _routes(app, socketio, web)
    socketio.on_namespace(HallNamespace("/hall", web))
    socketio.on_namespace(ConsoleNamespace("/console", web))
    return app, socketio


def _routes(app: Flask, socketio: SocketIO, web: Web) -> None:
    def page(template: str, title_key: str, status: int = 200, **ctx: Any) -> Response:
        lang = current_lang()
        t = strings(lang)
        who = web.identify()
        resp = make_response(
            render_template(
                template,
                t=t,
                lang=lang,
                langs=LANGS,
                title=t.get(title_key, title_key),
                user=None if who is None else {"name": who.name, "role": who.role},
                csrf_token=session.get("csrf", ""),
                simulator=web.simulator_url is not None,
                council=web.chamber.council,
                **ctx,
            ),
            status,
        )
        return resp

    def refused(code: str, status: int, why: str = "") -> Response:
        lang = current_lang()
        body = {"ok": False, "reason": code, "message": reasons.message(code, lang, {"why": why}), "detail": why}
        return make_response(jsonify(body), status)

    def login_required() -> Identity | Response:
        who = web.identify()
        if who is not None:
            return who
        resp = redirect("/login?next=" + urllib.parse.quote(request.path))
        return make_response(resp)

    @app.before_request
    def _csrf() -> Response | None:
        if request.method in _SAFE_METHODS:
            return None
        given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        if same_token(session.get("csrf"), given):
            return None
        log.warning(
            "web: %s %s from %s refused: CSRF token missing or wrong", request.method, request.path, request.remote_addr
        )
        if request.path == "/login":  # a page kept open past its session: show the form again, with a token
            session["csrf"] = new_token()
            return page("login.html", "login", 400, error=reasons.message("csrf", current_lang()), next=None)
        return refused("csrf", 400, "CSRF token missing or wrong")

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.path.startswith(("/console", "/login", "/seat", "/api")):
            resp.headers["Cache-Control"] = "no-store"
        asked = request.args.get("lang")
        if asked in LANGS and request.cookies.get("lang") != asked:
            resp.set_cookie("lang", asked, max_age=365 * 86400, samesite="Lax")
        return resp

    @app.get("/")
    def index() -> Response:
        return page("index.html", "app_name")

    @app.get("/login")
    def login_form() -> Response:
        if "csrf" not in session:
            session["csrf"] = new_token()
        return page("login.html", "login", error=None, next=_safe_next(request.args.get("next")))

    @app.post("/login")
    def login() -> Response:
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        address = request.remote_addr or "?"
        lang = current_lang()
        wait = web.guard.retry_after(name, address)
        if wait is not None:
            log.warning("web: log-in as %r from %s refused: too many failures (retry in %d s)", name, address, wait)
            resp = page(
                "login.html",
                "login",
                429,
                next=None,
                error=reasons.message("rate_limited", lang, {"retry_after": wait}),
            )
            resp.headers["Retry-After"] = str(wait)
            return resp
        user = web.users.authenticate(name, password)
        if user is None:
            web.guard.failed(name, address)
            log.warning("web: failed log-in as %r from %s", name, address)
            error = reasons.message("bad_login", lang)  # the same words for a wrong name: it says nothing
            return page("login.html", "login", 401, error=error, next=_safe_next(request.form.get("next")))
        web.guard.succeeded(name)
        session.clear()  # a new session: one planted before the log-in cannot ride on it
        session.update(user=user.name, stamp=user.stamp, sid=new_token(), csrf=new_token())
        session.permanent = True
        log.info("web: %s (%s) logged in from %s", user.name, user.role, address)
        return make_response(redirect(_safe_next(request.form.get("next")) or "/console"))

    @app.post("/logout")
    def logout() -> Response:
        sid = session.get("sid")
        if isinstance(sid, str):
            with web.lock:
                web.revoked.add(sid)
                gone = [s for s, who in web.sockets.items() if who.session_id == sid]
            for s in gone:  # its console pages stop too, not only this one
                socketio.server.disconnect(s, namespace="/console")
            log.info("web: %s logged out", session.get("user"))
        session.clear()
        return make_response(redirect("/"))

    @app.get("/console")
    def console() -> Response:
        who = login_required()
        if isinstance(who, Response):
            return who
        return page("console.html", "console", signed=web.files.signed)

    @app.get("/hall")
    def hall() -> Response:
        return page("hall.html", "hall")

    @app.get("/overlay")
    def overlay() -> Response:
        return page("overlay.html", "overlay")

    @app.get("/api/state")
    def api_state() -> Response:
        return jsonify(web.publisher.hall.whole(web.publisher.now_ms()))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True})

    # --- the virtual seat (simulator only) -----------------------------------------------------------

    def seat_or_404(seat_id: int) -> st.JSON:
        if web.simulator_url is None or seat_id not in web.chamber.seats:
            abort(404)
        x, y, chair = web.chamber.seats[seat_id]
        deputy = next((d for d in web.config.deputies if d.seat == seat_id), None)
        return {
            "id": seat_id,
            "x": x,
            "y": y,
            "chair": chair,
            "deputy": None if deputy is None else deputy.id,
            "name": None if deputy is None else deputy.full_name,  # the page names its deputy without a script
            "faction": None if deputy is None else deputy.faction,
            "card": deputy.cards[0] if deputy is not None and deputy.cards else None,
        }

    @app.get("/seat/<int:seat_id>")
    def seat(seat_id: int) -> Response:
        info = seat_or_404(seat_id)
        who = login_required()
        if isinstance(who, Response):
            return who
        return page("seat.html", "seat", seat=info, seat_id=seat_id)

    @app.get("/seat/<int:seat_id>/state")
    def seat_state(seat_id: int) -> Response:
        seat_or_404(seat_id)
        if web.identify() is None:
            return refused("not_logged_in", 401)
        reply = _simulator(web, "GET", "/state")
        seats = reply.get("seats", reply) if isinstance(reply, dict) else {}
        return jsonify(seats.get(str(seat_id), {}) if isinstance(seats, dict) else {})

    @app.post("/seat/<int:seat_id>/<action>")
    def seat_action(seat_id: int, action: str) -> Response:
        info = seat_or_404(seat_id)
        who = web.identify()
        if who is None:
            return refused("not_logged_in", 401)
        if action not in ("press", "card", "presence"):
            abort(404)
        body = request.get_json(silent=True)
        body = dict(body) if isinstance(body, dict) else {}
        if action == "card" and "uid" not in body:
            body["uid"] = info["card"]  # the seat's own deputy's card
        body["seat"] = seat_id
        log.info("web: %s at virtual seat %d: %s %s", who.name, seat_id, action, json.dumps(body))
        return jsonify(_simulator(web, "POST", "/" + action, body))

    # --- public pages ------------------------------------------------------------------------------

    @app.get("/public")
    def public_index() -> Response:
        sittings = [web.archive.summary(uid) for uid in reversed(web.archive.sittings())]
        return page("public_index.html", "public", sittings=sittings, deputies=web.chamber.deputies)

    def documents() -> st.JSON:
        """What the sitting and vote pages say of the documents (the same as ``chamber publish``'s)."""
        return {"signed": web.files.signed, "opendata": site_files.opendata_names()}

    @app.get("/public/files/<uid>/<path:name>")
    def public_file(uid: str, name: str) -> Response:
        """A sitting's protocol, result sheets and open data (protocol_export.site_files), rendered
        from the journal as it stands and kept while its head stays."""
        if uid not in web.archive.sittings():
            abort(404)
        from concurrent.futures.process import BrokenProcessPool

        from protocol_export.source import SourceError

        try:
            data = web.files.get(uid, name)
        except SourceError as exc:  # a journal that fails verification backs no document
            log.error("public files: %s", exc)
            abort(409)
        except BrokenProcessPool:  # the worker died (out of memory?): the next request starts another
            log.error("public files: the worker process making %s/%s died", uid, name)
            abort(503)
        if data is None:
            abort(404)
        resp = make_response(data)
        resp.headers["Content-Type"] = site_files.mime_of(name)
        resp.headers["Content-Disposition"] = f'inline; filename="{name.rsplit("/", 1)[-1]}"'
        return resp

    @app.get("/public/sitting/<uid>")
    def public_sitting(uid: str) -> Response:
        if uid not in web.archive.sittings():
            abort(404)
        snap = web.archive.replayed(uid).snapshot
        assert snap is not None
        return page(
            "public_sitting.html",
            "public",
            sitting=web.archive.summary(uid),
            agenda=[{"number": i.number, "title": i.title, "draft": i.draft} for i in snap.agenda],
            votes=[st.result_dict(r) for r in sorted(snap.results, key=lambda r: r.number)],
            rounds=[
                {
                    "number": r.number,
                    "opened_at_ms": r.opened_at,
                    "closed_at_ms": r.closed_at,
                    "count": r.count,
                    "quorum": r.quorum,
                    "registered": list(r.registered),
                }
                for r in snap.rounds
            ],
            deputies=web.chamber.deputies,
            documents=documents(),
        )

    @app.get("/public/vote/<uid>/<int:number>")
    def public_vote(uid: str, number: int) -> Response:
        if uid not in web.archive.sittings():
            abort(404)
        snap = web.archive.replayed(uid).snapshot
        assert snap is not None
        result = next((r for r in snap.results if r.number == number), None)
        if result is None:
            abort(404)
        vote = st.result_dict(result)
        names = [
            {"deputy": int(d), **web.chamber.deputies.get(d, {"name": f"#{d}"}), "outcome": outcome}
            for d, outcome in vote["per_name"].items()
        ]
        return page(
            "public_vote.html",
            "public",
            sitting=web.archive.summary(uid),
            vote=vote,
            names=names,
            deputies=web.chamber.deputies,
            documents=documents(),
        )

    @app.get("/public/deputy/<int:deputy_id>")
    def public_deputy(deputy_id: int) -> Response:
        deputy = web.chamber.deputies.get(str(deputy_id))
        if deputy is None:
            abort(404)
        record: list[st.JSON] = []
        rounds = registered = 0
        for uid in web.archive.sittings():
            snap = web.archive.replayed(uid).snapshot
            assert snap is not None
            for r in snap.rounds:
                rounds += 1
                registered += deputy_id in r.registered
            for result in sorted(snap.results, key=lambda r: r.number):
                vote = st.result_dict(result)
                outcome = vote["per_name"].get(str(deputy_id))
                if outcome is not None:
                    record.append({"sitting": uid, "sitting_number": snap.number, "vote": vote, "outcome": outcome})
        return page(
            "public_deputy.html",
            "public",
            deputy={"id": deputy_id, **deputy},
            record=record,
            attendance={"rounds": rounds, "registered": registered},
        )


def _simulator(web: Web, method: str, path: str, body: st.JSON | None = None) -> Any:
    assert web.simulator_url is not None
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        web.simulator_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # our own loopback URL
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:  # the simulator explains a bad request in its JSON
        try:
            return json.loads(exc.read() or b"{}")
        except ValueError:
            return {"error": f"simulator: HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"error": f"simulator: {exc}"}


# --- Socket.IO namespaces ------------------------------------------------------------------------------


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
        result = web.runner.run(data, user=who.name, role=who.role, lang=lang)
        if result.forged:
            assert self.socketio is not None
            self.socketio.emit("error", {"event": "command", **result.reply}, namespace=self.namespace, to=sid)
        return result.reply


# --- serving -------------------------------------------------------------------------------------------


class WebServer:
    """The app on a Werkzeug threaded server in a thread of its own, with the publisher."""

    def __init__(self, app: Flask, socketio: SocketIO, host: str, port: int) -> None:
        self.app = app
        self.socketio = socketio
        self.host = host
        # Bound here, not by Werkzeug, which answers a port in use with sys.exit(1): the daemon must
        # get an OSError to log, and carry on running the hall without its pages.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family, backlog=128) as listener:
            bound = listener.getsockname()[1]
            self._server: BaseWSGIServer = make_server(host, bound, app, threaded=True, fd=listener.fileno())
        self.port: int = bound
        self._thread: threading.Thread | None = None

    @property
    def web(self) -> Web:
        web: Web = self.app.extensions["chamber"]
        return web

    def url(self, path: str = "") -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{path}"

    def start(self) -> None:
        self.web.publisher.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.web.publisher.stop()
        self.web.files.close()
