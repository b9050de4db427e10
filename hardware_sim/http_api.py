"""A small JSON API on loopback to press buttons, move cards and inject faults in a running simulator.

How it works
------------
:class:`PressApi` runs a stdlib :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 (port 0 picks a
free port) in a daemon thread.  Every handler validates its input and answers JSON; a bad request
(bad JSON, unknown seat, unknown key, bad fault value …) is a 400 ``{"error": "..."}``, an unknown path
a 404; nothing a client sends can crash the server.

    POST /press     {"seat": 5, "key": "yes" | "no" | "abstain" | "register" | "speak" | ... | 2}
    POST /card      {"seat": 5, "uid": "0A1B2C3D"}   insert;  {"seat": 5, "uid": null}  remove
    POST /move_card {"from": 5, "to": 6}
    POST /presence  {"seat": 5, "present": true}
    POST /power     {"seat": 5, "action": "cycle" | "off" | "on"}
    POST /fault     {"line": "A", "unit": 3, "dead": true, "crc_rate": 0.1, ...}  ("unit" optional)
    POST /clear_faults {"line": "A", "unit": 3}  (both optional)
    GET  /state     per seat: LEDs, mic, mode, text (decoded), card, pending events, counters
    GET  /pending   {"total": n, "seats": {"5": 2, ...}}: key events the consoles hold unacknowledged
                    (cheap: for waiting on the controller while the bus is busy; /state decodes everything)
    GET  /lines     line id -> the pty path (or host:port) the controller opens
    GET  /stats     per line: requests, replies, faults injected by kind
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hardware_sim.faults import FAULT_NAMES
from hardware_sim.simulator import Simulator, parse_key

MAX_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f'"{name}" must be an integer, got {json.dumps(value)}')
    return value


def _seat(sim: Simulator, body: dict[str, Any], name: str = "seat") -> int:
    seat = _int(body, name)
    if seat not in sim.seats:
        raise ApiError(f"no seat {seat} in the config")
    return seat


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # A kept-alive client otherwise waits ~40 ms for every answer: the headers and the body go out as
    # two writes, and Nagle holds the body until the client's delayed ACK of the headers.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and the CLI print their own output

    # ------------------------------------------------------------------ plumbing

    def _reply(self, status: HTTPStatus, payload: object) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            raise ApiError(f"body must be 0 … {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError("body must be a JSON object")
        return body

    def _dispatch(self, method: str) -> None:
        try:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            handler = getattr(self, f"_{method}_{path.strip('/').replace('/', '_')}", None)
            if handler is None:
                raise ApiError(f"no {method.upper()} {path}", HTTPStatus.NOT_FOUND)
            result = handler(self._body()) if method == "post" else handler()
            self._reply(HTTPStatus.OK, result)
        except ApiError as exc:
            self._reply(exc.status, {"error": str(exc)})
        except (ValueError, KeyError) as exc:  # the simulator's own validation
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(message)})
        except Exception as exc:  # never let a client kill the thread without an answer
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:
        self._dispatch("get")

    def do_POST(self) -> None:
        self._dispatch("post")

    # ------------------------------------------------------------------ endpoints

    def _get_state(self) -> object:
        return {str(seat): state for seat, state in self.server.sim.state().items()}

    def _get_pending(self) -> object:
        pending = self.server.sim.pending()
        return {"total": sum(pending.values()), "seats": {str(seat): n for seat, n in sorted(pending.items())}}

    def _get_lines(self) -> object:
        return self.server.sim.lines

    def _get_stats(self) -> object:
        return self.server.sim.stats()

    def _post_press(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        seat = _seat(sim, body)
        if "key" not in body or isinstance(body["key"], bool) or not isinstance(body["key"], int | str):
            raise ApiError('"key" must be a key name ("yes", "no", "abstain", "register", "speak", ...) or code')
        key = parse_key(body["key"])
        latched = sim.press(seat, key)
        return {"seat": seat, "key": int(key), "latched": latched}

    def _post_card(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        seat = _seat(sim, body)
        if "uid" not in body:
            raise ApiError('"uid" is required: hex text to insert a card, null to remove it')
        uid = body["uid"]
        if uid is None:
            return {"seat": seat, "removed": sim.remove_card(seat)}
        if not isinstance(uid, str):
            raise ApiError('"uid" must be hex text or null')
        sim.insert_card(seat, uid)
        return {"seat": seat, "card": sim.console(seat).card}

    def _post_move_card(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        return {"card": sim.move_card(_seat(sim, body, "from"), _seat(sim, body, "to"))}

    def _post_presence(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        seat = _seat(sim, body)
        present = body.get("present")
        if not isinstance(present, bool):
            raise ApiError('"present" must be true or false')
        sim.set_presence(seat, present)
        return {"seat": seat, "present": present}

    def _post_power(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        seat = _seat(sim, body)
        action = body.get("action", "cycle")
        console = sim.console(seat)
        if action == "cycle":
            console.power_cycle()
        elif action == "off":
            console.power_off()
        elif action == "on":
            console.power_on()
        else:
            raise ApiError('"action" must be "cycle", "off" or "on"')
        return {"seat": seat, "powered": console.powered}

    def _post_fault(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        line = body.pop("line", None)
        if not isinstance(line, str) or line not in sim.lines:
            raise ApiError(f'"line" must be one of {sorted(sim.lines)}, got {json.dumps(line)}')
        unit = body.pop("unit", None)
        if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int)):
            raise ApiError('"unit" must be an integer or absent')
        if not body:
            raise ApiError(f"give at least one fault: {', '.join((*FAULT_NAMES, 'garbage'))}")
        sim.set_fault(line, unit, **body)
        return {"line": line, "unit": unit, "set": sorted(body)}

    def _post_clear_faults(self, body: dict[str, Any]) -> object:
        sim = self.server.sim
        line = body.get("line")
        unit = body.get("unit")
        if line is not None and line not in sim.lines:
            raise ApiError(f'"line" must be one of {sorted(sim.lines)}')
        if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int)):
            raise ApiError('"unit" must be an integer or absent')
        sim.clear_faults(line, unit)
        return {"cleared": True}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        super().__init__(address, _Handler)


class PressApi:
    """The API server for one simulator.  ``url`` is valid after :meth:`start`."""

    def __init__(self, sim: Simulator, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, port), sim)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
