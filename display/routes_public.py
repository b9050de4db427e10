"""Routes of the public pages: the sittings, their votes with the names, each deputy's record, and the
sittings' files (protocol, result sheets, open data).

The pages are read from the journal through the public archive (display.archive), never from the
engine; they show finished votes only.  The files are made from the journal as it stands by
protocol_export.site_files in a worker process of their own (``Web.files``) and kept while the
sitting's head stays.  The speech recordings the protocol lists (``files/<uid>/recordings/...``) are
served from ``[recording] directory`` as they are, by the names the index lists and nothing else
(``site_files.recording_source``), and the sitting page lists them as ``chamber publish``'s does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from flask import Flask, Response, abort, make_response, send_file

from chamber.core.speakers import SpeechRecord
from display import state as st
from display.web import Web, page
from protocol_export import site_files, site_pages

log = logging.getLogger("display.app")  # the web server's one log name (see display.web)


def register(app: Flask, web: Web) -> None:
    # --- public pages ------------------------------------------------------------------------------

    @app.get("/public")
    def public_index() -> Response:
        sittings = [web.archive.summary(uid) for uid in reversed(web.archive.sittings())]
        return page(web, "public_index.html", "public", sittings=sittings, deputies=web.chamber.deputies)

    def documents() -> st.JSON:
        """What the sitting and vote pages say of the documents (the same as ``chamber publish``'s)."""
        return {"signed": web.files.signed, "opendata": site_files.opendata_names()}

    def recordings(uid: str, speeches: Sequence[SpeechRecord]) -> list[st.JSON]:
        """The sitting page's ``documents.recordings``: what the protocol lists, as the static site's."""
        from protocol_export.recording_list import load_listed

        if web.files.recordings is None or not site_pages.SAFE_UID.fullmatch(uid):
            return []
        try:
            listed = load_listed(web.files.recordings, uid, speeches)
        except ValueError as exc:  # an index that cannot be read (or a uid that names no folder)
            log.error("public pages: sitting %s: the recordings are not listed: %s", uid, exc)
            return []
        people = {int(k): str(d["name"]) for k, d in web.chamber.deputies.items()}
        return site_pages.recording_rows(speeches, listed, people)

    def recording_file(uid: str, name: str) -> Response:
        """``recordings/<name>``: a recording the protocol lists, or their SHA256SUMS."""
        snap = web.archive.replayed(uid).snapshot
        assert snap is not None
        try:
            found = site_files.recording_source(web.files.recordings, uid, snap.speeches, name)
        except site_files.RecordingChanged as exc:  # not the file the protocol vouches for: not served
            log.error("public files: %s", exc)
            abort(409)
        except ValueError as exc:
            log.error("public files: sitting %s: the recordings cannot be listed: %s", uid, exc)
            abort(503)
        if found is None:
            abort(404)
        mime = site_files.mime_of(name)
        if isinstance(found, Path):  # conditional: a player may ask for a range of a long file
            # absolute: Flask would take a relative path against the app's package, not the working
            # directory the folder was read from
            resp = send_file(found.resolve(), mimetype=mime, conditional=True, etag=True, max_age=0)
        else:
            resp = make_response(found)
            resp.headers["Content-Type"] = mime
        resp.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return resp

    @app.get("/public/files/<uid>/<path:name>")
    def public_file(uid: str, name: str) -> Response:
        """A sitting's protocol, result sheets and open data (protocol_export.site_files), rendered
        from the journal as it stands and kept while its head stays; its speech recordings."""
        if uid not in web.archive.sittings():
            abort(404)
        folder, _, rest = name.partition("/")
        if folder == site_files.RECORDINGS_DIR:
            return recording_file(uid, rest)
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
            web,
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
            documents={**documents(), "recordings": recordings(uid, snap.speeches)},
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
            web,
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
            web,
            "public_deputy.html",
            "public",
            deputy={"id": deputy_id, **deputy},
            record=record,
            attendance={"rounds": rounds, "registered": registered},
        )
