"""``WebServer``: the web app on Werkzeug's threaded server in a thread of its own, with its publisher.

Flask-SocketIO runs ``async_mode="threading"`` with websockets through simple-websocket; eventlet and
gevent would monkey-patch pyserial's blocking reads in the daemon's process.  The listening socket is
bound here, not by Werkzeug (which answers a port in use with ``sys.exit(1)``), so the daemon gets an
``OSError`` to log and carries on running the hall without its pages.
"""

from __future__ import annotations

import socket
import threading

from flask import Flask
from flask_socketio import SocketIO
from werkzeug.serving import BaseWSGIServer, make_server

from display.web import Web


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
