"""Routes of logging in and out, and what every request goes through: the CSRF check of every POST and
the security headers of every answer (and the ``lang`` cookie when ``?lang=`` chose a language).

Log-in is a CSRF-protected form checked against the users table (argon2id, display.auth) and the log-in
guard (failures per name and per address); it starts a new session.  Log-out revokes the session id,
so a copied cookie dies with it, and closes that session's ``/console`` connections.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, make_response, redirect, request, session
from flask_socketio import SocketIO

from display import reasons
from display.auth import new_token, same_token
from display.web import LANGS, SAFE_METHODS, Web, current_lang, page, refused, safe_next

log = logging.getLogger("display.app")  # the web server's one log name (see display.web)


def register(app: Flask, socketio: SocketIO, web: Web) -> None:
    @app.before_request
    def _csrf() -> Response | None:
        if request.method in SAFE_METHODS:
            return None
        given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        if same_token(session.get("csrf"), given):
            return None
        log.warning(
            "web: %s %s from %s refused: CSRF token missing or wrong", request.method, request.path, request.remote_addr
        )
        if request.path == "/login":  # a page kept open past its session: show the form again, with a token
            session["csrf"] = new_token()
            return page(web, "login.html", "login", 400, error=reasons.message("csrf", current_lang()), next=None)
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

    @app.get("/login")
    def login_form() -> Response:
        if "csrf" not in session:
            session["csrf"] = new_token()
        return page(web, "login.html", "login", error=None, next=safe_next(request.args.get("next")))

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
                web,
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
            return page(web, "login.html", "login", 401, error=error, next=safe_next(request.form.get("next")))
        web.guard.succeeded(name)
        session.clear()  # a new session: one planted before the log-in cannot ride on it
        session.update(user=user.name, stamp=user.stamp, sid=new_token(), csrf=new_token())
        session.permanent = True
        log.info("web: %s (%s) logged in from %s", user.name, user.role, address)
        return make_response(redirect(safe_next(request.form.get("next")) or "/console"))

    @app.post("/logout")
    def logout() -> Response:
        sid = session.get("sid")
        if isinstance(sid, str):
            with web.lock:
                web.revoked.add(sid)
                gone = [s for s, who in web.sockets.items() if who.session_id == sid]
            web.seen.forget(sid)
            for s in gone:  # its console pages stop too, not only this one
                socketio.server.disconnect(s, namespace="/console")
            log.info("web: %s logged out", session.get("user"))
        session.clear()
        return make_response(redirect("/"))
