"""Routes of the staff: the secretary console (logged in) and the virtual seat (logged in, only while the
simulator runs; an observer may look at it but not press).

A virtual seat's presses go through ``POST /seat/<id>/press|card|presence`` to the simulator's press API
on loopback, exactly as a finger on a simulated console would: through the bus, the line loop and the
engine; ``/seat/<id>/state`` reads the simulated console's own registers back.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from flask import Flask, Response, abort, jsonify, request

from display import state as st
from display.web import Web, login_required, page, refused

log = logging.getLogger("display.app")  # the web server's one log name (see display.web)


def register(app: Flask, web: Web) -> None:
    @app.get("/console")
    def console() -> Response:
        who = login_required(web)
        if isinstance(who, Response):
            return who
        return page(web, "console.html", "console", signed=web.files.signed)

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
        who = login_required(web)
        if isinstance(who, Response):
            return who
        return page(web, "seat.html", "seat", seat=info, seat_id=seat_id)

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
        if who.role == "observer":  # an observer watches: a press at a seat is an act in the sitting
            log.warning("web: %s (observer) refused at virtual seat %d: %s", who.name, seat_id, action)
            return refused("forbidden", 403, "an observer cannot act at a seat", role=who.role)
        if action not in ("press", "card", "presence"):
            abort(404)
        body = request.get_json(silent=True)
        body = dict(body) if isinstance(body, dict) else {}
        if action == "card" and "uid" not in body:
            body["uid"] = info["card"]  # the seat's own deputy's card
        body["seat"] = seat_id
        log.info("web: %s at virtual seat %d: %s %s", who.name, seat_id, action, json.dumps(body))
        return jsonify(_simulator(web, "POST", "/" + action, body))


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
