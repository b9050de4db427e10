"""What the web app's routes and Socket.IO namespaces share: the ``Web`` context, who is logged in, the
page's language, and the helpers every page route uses.

``Web`` (``app.extensions["chamber"]``) holds the engine, the config's chamber, the publisher, the
command runner, the public archive and the sitting's files, the users and the log-in guard, and the
``/console`` connections; ``Web.identify`` reads the logged-in user from the session, the users table
having the last word.  ``page`` renders a template with what every page gets (``t``, ``lang``, ``user``,
``csrf_token``, ...); ``refused`` is a JSON refusal in the page's language; ``login_required`` sends a
visitor to ``/login``.  Every module of the web app logs as ``display.app``: one name to follow the web
server by, whichever part wrote the line.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import (
    Flask,
    Response,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface

from chamber.config import Config
from chamber.engine import SteadyClock
from display import reasons
from display import state as st
from display.archive import Archive
from display.auth import LoginGuard, Logouts, StoredLogouts, UserStore
from display.command_ids import SeenCommands
from display.commands import CommandRunner
from display.publisher import Publisher, line_health
from protocol_export import site_files  # light: the renderer and pyHanko are imported when a file is made

try:
    from display.i18n import STRINGS
except ImportError:  # the pages engineer's module; the server runs without it
    STRINGS = {}


LANGS = ("uk", "en")
SESSION_HOURS = 12
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class Identity:
    """A logged-in user as the session and the users table agree on them now."""

    name: str
    role: str
    csrf: str
    session_id: str
    lang: str = "uk"
    csrf_ok: bool = False  # a /console connection that gave the token in its auth


class Session(SecureCookieSessionInterface):
    """The session cookie is Secure when the page was served over TLS, directly or behind a proxy that
    says so; HttpOnly and SameSite=Lax always (the app's config)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        if not has_request_context():
            return False
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return request.is_secure or proto == "https"


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
        # process (never on the engine's interpreter), kept while the sitting's head stays; the
        # protocols list the speech recordings of [recording] directory (as chamber protocol and
        # publish do, whether or not this controller records now) and the recordings are served
        place = config.council.place or config.council.name
        recordings = str(config.recording.directory)
        self.files = site_files.FileCache(
            engine.journal,
            identity=lambda: site_files.signing_identity(config.signing),
            location=place,
            maker=site_files.process_maker(engine.journal, config.signing, place, recordings),
            recordings=recordings,
        )
        self.sockets: dict[str, Identity] = {}  # /console connection sid -> who
        # session ids logged out: a copied cookie must not live on, across a restart either
        self.revoked: Logouts = StoredLogouts(engine.journal.engine, SESSION_HOURS * 3600)
        self.seen = SeenCommands()  # the command ids each session sent: none is applied twice
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


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would make our log-in page a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


# --- what every page route uses ---------------------------------------------------------------------


def page(web: Web, template: str, title_key: str, status: int = 200, **ctx: Any) -> Response:
    """``template`` rendered with what every page gets, in the page's language."""
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


def refused(code: str, status: int, why: str = "", **context: object) -> Response:
    """A JSON refusal (``{"ok": false, "reason", "message", "detail"}``) in the page's language;
    ``context`` fills the sentence's other fields (``display.reasons.fields``)."""
    lang = current_lang()
    message = reasons.message(code, lang, {**context, "why": why})
    body = {"ok": False, "reason": code, "message": message, "detail": why}
    return make_response(jsonify(body), status)


def login_required(web: Web) -> Identity | Response:
    """The logged-in user, or a redirect to ``/login`` (back here afterwards)."""
    who = web.identify()
    if who is not None:
        return who
    resp = redirect("/login?next=" + urllib.parse.quote(request.path))
    return make_response(resp)
