"""The public pages of the web app rendered into files: same templates, same look, relative links.

How it works:

* The templates are the web app's own (display/templates: ``public_index.html``, ``public_sitting.html``,
  ``public_vote.html``, ``public_deputy.html``), rendered by the Jinja environment of a bare
  ``Flask("display")`` with the filters of display.page_filters installed: the same loader, autoescape
  and filters as ``create_app``, without a request, an engine or a config.
* The contexts are built here as display/app.py's ``/public`` routes build theirs — ``summary_of`` as
  ``Archive.summary``, the votes as ``display.state.result_dict``, the deputies in the shape of
  ``display.state.chamber_of`` — but from the ``SittingDoc`` (protocol_export.source): the journal
  alone, the roster as journaled when the sitting opened, not today's config file.  A test renders the
  web app's page and this one from one journal and compares them.
* Links: the templates write site paths (``/public/vote/<uid>/<n>``, ``/static/css/public.css``) and
  ``?lang=en``.  :func:`relink` turns each into a relative link to the file the static site has for it
  (:func:`site_path`), so the folder works wherever it is uploaded and opened from disk.  A site path
  with no file is an error (:class:`SiteError`), not a dead link: a template that grows a new link must
  grow its place in the site here too.  Ukrainian pages are at the root, English ones under ``en/``;
  ``?lang=en`` links a page to its counterpart; ``static/`` and ``files/`` are shared.
* Nothing reads a clock: the same journal gives the same pages, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from flask import Flask
from jinja2 import Environment

from chamber.core.phases import Phase
from chamber.core.roster import Roster
from chamber.core.voting import VoteResult
from display import page_filters
from display import state as st
from display.i18n import STRINGS
from protocol_export.source import SittingDoc

if TYPE_CHECKING:
    from chamber.core.speakers import SpeechRecord
    from protocol_export.recording_list import Listed

LANGS = ("uk", "en")  # as display/app.py: Ukrainian first
LANG_DIR = {"uk": "", "en": "en/"}

JSON = dict[str, Any]

#: A sitting uid that can be a folder name (the engine's are ``20251202-0123456789ab``).
SAFE_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_Route = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_PAGE_ROUTES: tuple[_Route, ...] = (
    (re.compile(r"/public/?"), lambda m: "index.html"),
    (re.compile(r"/public/sitting/([^/?#]+)"), lambda m: f"sitting/{m[1]}/index.html"),
    (re.compile(r"/public/vote/([^/?#]+)/([0-9]+)"), lambda m: f"vote/{m[1]}/{m[2]}.html"),
    (re.compile(r"/public/deputy/([0-9]+)"), lambda m: f"deputy/{m[1]}.html"),
)
_SHARED_ROUTES: tuple[_Route, ...] = (
    (re.compile(r"/public/files/(.+)"), lambda m: f"files/{m[1]}"),
    (re.compile(r"/static/(.+)"), lambda m: f"static/{m[1]}"),
)
_LINK = re.compile(r'(\s(?:href|src)=")([^"]*)(")')


class SiteError(Exception):
    """The site cannot be made as asked: a link with no file behind it, a uid that is no folder name."""


# --------------------------------------------------------------------------- where each page lives


def page_path(kind: str, lang: str = "uk", *args: object) -> str:
    """The file of a page: ``page_path("vote", "en", uid, 3)`` -> ``en/vote/UID/3.html``."""
    paths = {
        "index": "index.html",
        "sitting": "sitting/{}/index.html",
        "vote": "vote/{}/{}.html",
        "deputy": "deputy/{}.html",
    }
    return LANG_DIR[lang] + paths[kind].format(*args)


@lru_cache(maxsize=65536)  # a big site has ~10^5 links, most of them to the same few hundred pages
def site_path(href: str, lang: str) -> str | None:
    """The site file (relative to the site's root) a web path of the public pages stands for, in the
    page's language ``lang``; None for a link that is not a site path (``data:``, ``#``, another host)."""
    if not href.startswith("/") or href.startswith("//"):
        return None
    for pattern, target in _SHARED_ROUTES:
        match = pattern.fullmatch(href)
        if match:
            return target(match)
    for pattern, target in _PAGE_ROUTES:
        match = pattern.fullmatch(href)
        if match:
            return LANG_DIR[lang] + target(match)
    raise SiteError(f"the static site has no file for the link {href!r}")


def counterpart(path: str, lang: str) -> str:
    """The same page in language ``lang``: ``vote/U/3.html`` <-> ``en/vote/U/3.html``."""
    for prefix in LANG_DIR.values():
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return LANG_DIR[lang] + path


def relink(html: str, path: str, lang: str) -> str:
    """``html`` of the page at ``path`` (in ``lang``) with every site link made relative to it: up to
    the site's root, then down to the target (``../../deputy/5.html`` from ``vote/U/3.html``), the same
    form for every link of a page (and no ``posixpath.relpath``, whose ``abspath`` calls cost more than
    the rest of a page)."""
    up = "../" * path.count("/")

    def one(match: re.Match[str]) -> str:
        href = match[2]
        asked = re.fullmatch(r"\?lang=(uk|en)", href)
        if asked:
            target: str | None = counterpart(path, asked[1])
        elif href.startswith("?"):
            raise SiteError(f"{path}: a static page has no query: {href!r}")
        else:
            target = site_path(href, lang)
        if target is None:
            return match[0]
        return f"{match[1]}{up}{target}{match[3]}"

    return _LINK.sub(one, html)


# --------------------------------------------------------------------------- what the pages show


def council_of(roster: Roster) -> JSON:
    """``display.state.chamber_of(...).council``, from the journaled roster."""
    council = roster.council
    return {"name": council.name, "convocation": council.convocation, "composition": council.composition}


def deputies_of(roster: Roster) -> dict[str, JSON]:
    """``display.state.chamber_of(...).deputies``, from the journaled roster."""
    return {
        str(d.id): {
            "name": d.full_name,
            "short": st.short_name(d.full_name),
            "faction": d.faction,
            "seat": d.seat,
            "role": d.role.value,
        }
        for d in roster.deputies
    }


def summary_of(doc: SittingDoc) -> JSON:
    """What ``display.app.Archive.summary`` says of a sitting."""
    snap = doc.snapshot
    return {
        "uid": doc.uid,
        "number": snap.number,
        "title": snap.title,
        "opened_at_ms": doc.opened_at_ms,
        "date": page_filters.kyiv_date(doc.opened_at_ms),
        "open": snap.phase is not Phase.NO_SITTING,
        "votes": len(snap.results),
        "records": doc.last_seq,
        "head": doc.head_text,
        "broken": None,  # load_sitting refuses a journal that fails its chain
    }


def _votes(doc: SittingDoc) -> list[VoteResult]:
    return sorted(doc.snapshot.results, key=lambda r: r.number)


def sitting_context(doc: SittingDoc, documents: JSON | None = None) -> JSON:
    snap = doc.snapshot
    return {
        "sitting": summary_of(doc),
        "agenda": [{"number": i.number, "title": i.title, "draft": i.draft} for i in snap.agenda],
        "votes": [st.result_dict(r) for r in _votes(doc)],
        "rounds": [
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
        "deputies": deputies_of(doc.roster),
        "documents": documents,
    }


def vote_context(doc: SittingDoc, result: VoteResult, documents: JSON | None = None) -> JSON:
    deputies = deputies_of(doc.roster)
    vote = st.result_dict(result)
    names = [
        {"deputy": int(d), **deputies.get(d, {"name": f"#{d}"}), "outcome": outcome}
        for d, outcome in vote["per_name"].items()
    ]
    return {"sitting": summary_of(doc), "vote": vote, "names": names, "deputies": deputies, "documents": documents}


def recordings_of(doc: SittingDoc) -> list[JSON]:
    """The speech recordings the protocol lists, for the sitting page's ``documents.recordings``:
    file, speaker, agenda item, the speech's start and the recording's length (the page links
    ``/public/files/<uid>/recordings/<file>``)."""
    people = {d.id: d.full_name for d in doc.roster.deputies}
    return recording_rows(doc.snapshot.speeches, doc.recordings, people)


def recording_rows(speeches: Sequence[SpeechRecord], listed: Iterable[Listed], people: Mapping[int, str]) -> list[JSON]:
    """:func:`recordings_of` from the parts: the speech log, the recordings its protocol lists
    (protocol_export.recording_list ``load_listed``) and the deputies' names by id; the web app
    passes its replayed speeches and the config's names, the static site the journal's."""
    from protocol_export.recording_list import by_speech

    out: list[JSON] = []
    for speech, parts in zip(speeches, by_speech(speeches, listed), strict=True):
        for rec in parts:
            out.append(
                {
                    "number": rec.number,
                    "file": rec.file,
                    "speaker": people.get(speech.deputy, "") if speech.deputy is not None else "",
                    "seat": speech.seat,
                    "item": speech.item,
                    "kind": str(speech.kind),
                    "start_ms": speech.start,
                    "duration_ms": rec.duration_ms,
                    "bytes": rec.bytes,
                    "sha256": rec.sha256,
                    "complete": rec.complete,
                }
            )
    return sorted(out, key=lambda r: r["number"])


class Records:
    """What the deputies' pages read from the sittings ``docs`` (in the order they were held): each vote
    made into its dict once, not once per deputy (450 deputies x 100 votes x a dict of 450 names each
    was most of the time of a big site)."""

    def __init__(self, docs: Sequence[SittingDoc]) -> None:
        self.sittings = [(doc, [st.result_dict(r) for r in _votes(doc)]) for doc in docs]


def deputy_context(deputy_id: int, deputy: Mapping[str, Any], records: Records) -> JSON:
    """«Ваш депутат» over the sittings of ``records``, as the web app counts it."""
    record: list[JSON] = []
    rounds = registered = 0
    key = str(deputy_id)
    for doc, votes in records.sittings:
        snap = doc.snapshot
        for r in snap.rounds:
            rounds += 1
            registered += deputy_id in r.registered
        for vote in votes:
            outcome = vote["per_name"].get(key)
            if outcome is not None:
                record.append({"sitting": doc.uid, "sitting_number": snap.number, "vote": vote, "outcome": outcome})
    return {
        "deputy": {"id": deputy_id, **deputy},
        "record": record,
        "attendance": {"rounds": rounds, "registered": registered},
    }


def index_context(docs: Sequence[SittingDoc], deputies: Mapping[str, JSON]) -> JSON:
    """The sittings newest first, as ``/public`` lists them."""
    return {"sittings": [summary_of(doc) for doc in reversed(docs)], "deputies": dict(deputies)}


def all_deputies(docs: Iterable[SittingDoc]) -> dict[str, JSON]:
    """Every deputy of the rosters of ``docs``; a later sitting's roster has the last word on a name."""
    out: dict[str, JSON] = {}
    for doc in docs:
        out.update(deputies_of(doc.roster))
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


# --------------------------------------------------------------------------- rendering


@cache
def environment() -> Environment:
    """The web app's Jinja environment for the public templates (see the module docstring)."""
    app = Flask("display")
    page_filters.install(app)
    return app.jinja_env


def render_page(template: str, path: str, lang: str, council: JSON, context: Mapping[str, Any]) -> str:
    """One page as the web app's ``page()`` renders it for a visitor who is not logged in, its links
    made relative to ``path``."""
    t = dict(STRINGS.get(lang) or STRINGS["uk"])
    html = (
        environment()
        .get_template(template)
        .render(
            t=t,
            lang=lang,
            langs=LANGS,
            title=t.get("public", "public"),
            user=None,
            csrf_token="",
            simulator=False,
            council=council,
            **context,
        )
    )
    return relink(html, path, lang)
