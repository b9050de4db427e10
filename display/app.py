"""The web app: ``create_app`` puts the parts of display/ together (docs/web-protocol.md).

``create_app(controller_or_engine, config, simulator_url=None)`` returns ``(app, socketio)`` and starts
nothing; ``WebServer`` (display.server) serves them on ``[web] host:port`` and starts the publisher
thread (display.publisher).  The engine has one owner: everything here reads ``engine.snapshot()`` or
the journal, and changes the sitting only with ``engine.submit``.

Where each part is
------------------
* display.web — the ``Web`` context the routes and namespaces share (``app.extensions["chamber"]``),
  who is logged in, the page's language, ``page`` / ``refused`` / ``login_required``;
* display.routes_auth — log-in and log-out, the CSRF check of every POST, the security headers;
* display.routes_hall — the start page, ``/hall``, ``/overlay``, ``/api/state``, ``/healthz``;
* display.routes_console — ``/console`` and the virtual seat ``/seat/<id>`` (simulator only);
* display.routes_public — ``/public/...`` and the sittings' files ``/public/files/...``;
* display.archive — the sittings replayed from the journal for the public pages;
* display.namespaces — the Socket.IO namespaces ``/hall`` and ``/console``;
* display.packets — the Socket.IO packet class (UTF-8 JSON, malformed events refused);
* display.server — ``WebServer``.

Pages are server-rendered templates (display/templates) given ``t`` (the strings of display.i18n in
the page's language), ``lang``, ``user``, ``csrf_token`` and their data.  Every POST needs the
session's CSRF token.  The names other modules import from here (``create_app``, ``WebServer``,
``Web``, ``SESSION_HOURS``, ``Archive``, ``Identity``) stay importable from display.app.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_socketio import SocketIO

from chamber.config import Config
from display import page_filters, routes_auth, routes_console, routes_hall, routes_public
from display.archive import Archive
from display.auth import UserStore, load_secret_key
from display.namespaces import ConsoleNamespace, HallNamespace
from display.packets import MALFORMED, Packet
from display.server import WebServer
from display.web import LANGS, SESSION_HOURS, Identity, Session, Web, current_lang, strings

_socketio_log = logging.getLogger("display.socketio")
_socketio_log.setLevel(logging.WARNING)

__all__ = [
    "LANGS",
    "MALFORMED",
    "SESSION_HOURS",
    "Archive",
    "ConsoleNamespace",
    "HallNamespace",
    "Identity",
    "Web",
    "WebServer",
    "create_app",
    "current_lang",
    "strings",
]


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
    app.session_interface = Session()
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
        serializer=Packet,
        # python-socketio's own warnings only (its info lines are one per packet): an event for a
        # namespace the client never joined (a /console command without a log-in) is dropped there,
        # and must leave a line in the log like every other refusal
        logger=_socketio_log,
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
    routes_auth.register(app, socketio, web)
    routes_hall.register(app, web)
    routes_console.register(app, web)
    routes_public.register(app, web)
    socketio.on_namespace(HallNamespace("/hall", web))
    socketio.on_namespace(ConsoleNamespace("/console", web))
    return app, socketio
