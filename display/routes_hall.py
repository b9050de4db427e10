"""Routes of the screens for everyone: the start page, the hall screen, the stream overlay, the public
state as JSON and the health check.  The hall and the overlay are pages whose state comes over the
``/hall`` namespace (display.namespaces); ``/api/state`` is that state at once."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from display.web import Web, page


def register(app: Flask, web: Web) -> None:
    @app.get("/")
    def index() -> Response:
        return page(web, "index.html", "app_name")

    @app.get("/hall")
    def hall() -> Response:
        return page(web, "hall.html", "hall")

    @app.get("/overlay")
    def overlay() -> Response:
        return page(web, "overlay.html", "overlay")

    @app.get("/api/state")
    def api_state() -> Response:
        return jsonify(web.publisher.hall.whole(web.publisher.now_ms()))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True})
