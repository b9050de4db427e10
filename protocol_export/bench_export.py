"""``chamber bench export``: how long the signed protocol and the open data of a big sitting take.

    chamber bench export --votes 100 --seats 450 --json

What it does, in order:

1. journals a sitting through the real engine (``Engine.process``, a manual clock) into a fresh SQLite
   store under ``--dir`` (default ``var/bench``; a real disk, as the council's store is): the chamber of
   ``chamber.synthetic`` with ``seats`` seats, an agenda of ``votes`` items, 95 % of the deputies carded
   and registered, then for each item a roll-call vote «в цілому» on it where most of the registered
   press За / Проти / Утримався (seeded: the same choices on every run), closed, announced and cleared,
   and the close of the sitting (``journal_s``, ``records``);
2. makes a demo key as ``chamber keys init`` does (``keys.make_demo_identity``, written with
   ``write_demo_identity`` into a temporary folder and read back with ``load_identity`` from a
   ``[signing]`` section naming it) — not timed: a council's key exists before its sittings;
3. ``pdf_s``: what ``chamber sign --sitting UID`` does — ``load_sitting`` (the chain verified, the
   records replayed), ``render_protocol`` with the demo notice, and the PAdES signature
   (``signing.render_signed``) — split into ``load_s``, ``render_s`` and ``sign_s``; ``pdf_cpu_s`` is the
   process's CPU time for the same (on a busy machine the wall clock counts the others' work too, and
   ``load_avg_1min`` says how busy it was when the run began);
4. counts the pages (pypdf), checks the signature is there and intact (pyHanko: ``signed``), and writes
   the signed file to ``pdf_path`` (``--dir``/protocol-<UTC time>.pdf), left on disk to be looked at;
5. ``opendata_s``: what ``chamber opendata --sitting UID --out DIR`` does — ``load_facts`` and
   ``write_opendata`` (the tables, Popolo, the records, the manifest) into a temporary folder;
6. ``total_s``: the whole run, journal and key included.  Goals: ``pdf_s`` <= 10 on a 2-core
   machine, ``total_s`` <= 50; ``pdf_goal_met`` says whether this run met the first.

The journal and the key are deleted at the end (``keep`` keeps the journal, for a profile of the
same records: ``python -m cProfile -s cumulative`` on ``chamber protocol --db ...``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol_export.keys import Identity

PDF_GOAL_S = 10.0
TOTAL_GOAL_S = 50.0
START_MS = 1_764_662_400_000  # 2025-12-02 08:00 UTC: 10:00 in Kyiv
SEED = 9


def journal_sitting(url: str, *, votes: int, seats: int, seed: int = SEED) -> str:
    """Journal the benchmark's sitting (step 1 of the module docstring) at ``url``; its uid."""
    from chamber import synthetic
    from chamber.core import events as ev
    from chamber.core.values import Key, VoteSubject
    from protocol_export.engine_feed import fed

    config = synthetic.load(seats)
    rng = random.Random(seed)
    with fed(url, START_MS) as batch:
        batch(ev.OpenSitting(roster=config.roster(), number=7, title="Сьоме пленарне засідання (бенчмарк)"))
        items = tuple(
            ev.AgendaItem(
                number=str(n),
                title=f"Про внесення змін до рішення ради № {100 + n} щодо бюджету територіальної громади на 2026 рік",
                draft=f"{700 + n}/{n % 7 + 1}",
            )
            for n in range(1, votes + 1)
        )
        batch(ev.SetAgenda(items=items))
        people = [d for d in config.deputies if d.seat is not None and d.cards]
        present = people[: max(1, len(people) * 95 // 100)]
        batch(*(ev.CardInserted(seat=d.seat or 0, uid=d.cards[0]) for d in present))
        batch(ev.OpenRegistration())
        batch(*(ev.KeyPressed(seat=d.seat or 0, key=Key.REGISTER) for d in present))
        batch(ev.CloseRegistration())
        choices = (Key.YES, Key.YES, Key.YES, Key.NO, Key.ABSTAIN)
        for item in items:
            batch(ev.SetCurrentItem(number=item.number), ev.OpenVote(subject=VoteSubject.WHOLE, duration_s=0))
            voters = [d for d in present if rng.random() < 0.93]
            batch(*(ev.KeyPressed(seat=d.seat or 0, key=rng.choice(choices)) for d in voters), step_ms=30_000)
            batch(ev.CloseVote(), ev.AnnounceResult(), ev.ClearResult(), step_ms=3_000)
        batch(ev.CloseSitting(), step_ms=60_000)
        return batch.uid


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def signature_intact(pdf: bytes, identity: Identity) -> bool:
    """One signature, by ``identity``, covering the whole file, its digest and CMS signature right."""
    from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    signatures = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    if len(signatures) != 1:
        return False
    # the demo certificate is its own trust root here: pyHanko would log a self-signed certificate's
    # path-building failure with a traceback, and whose key it is is not what is measured
    root = translate_pyca_cryptography_cert_to_asn1(identity.certificate)
    status = validate_pdf_signature(signatures[0], ValidationContext(trust_roots=[root], allow_fetching=False))
    coverage = getattr(status.coverage, "name", None)
    return bool(status.intact and status.valid and status.trusted and coverage == "ENTIRE_FILE")


def bench_export(
    *, votes: int = 100, seats: int = 450, directory: Path = Path("var/bench"), keep: bool = False
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its figures."""
    from pypdf import PdfReader

    from chamber import synthetic
    from chamber.config_sections import SigningConfig
    from chamber.journal import Journal
    from protocol_export import keys
    from protocol_export.facts import load_facts
    from protocol_export.opendata import write_opendata
    from protocol_export.signing import default_renderer, render_signed
    from protocol_export.source import load_sitting

    start = time.perf_counter()
    load_avg = os.getloadavg()[0]  # what else the machine was doing: the figures are wall-clock times
    directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=directory))
    try:
        url = f"sqlite:///{work / 'journal.db'}"
        uid, journal_s = _timed(lambda: journal_sitting(url, votes=votes, seats=seats))

        identity = keys.make_demo_identity(synthetic.council_name(seats))
        cert, key = keys.write_demo_identity(identity, work / "signing")
        identity = keys.load_identity(SigningConfig(certificate=str(cert), key=str(key)))

        rendering: list[float] = []

        def render(doc: Any, vote: int | None, notice: str | None) -> bytes:
            pdf, took = _timed(lambda: default_renderer(doc, vote, notice))
            rendering.append(took)
            return bytes(pdf)

        t0, cpu0 = time.perf_counter(), time.process_time()
        with Journal(url, create=False) as journal:
            doc, load_s = _timed(lambda: load_sitting(journal, uid))
            signed = render_signed(doc, identity, render=render)
        pdf_s, pdf_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0

        pages = len(PdfReader(io.BytesIO(signed)).pages)
        intact = signature_intact(signed, identity)
        pdf_path = directory / f"protocol-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{votes}x{seats}.pdf"
        pdf_path.write_bytes(signed)

        t0 = time.perf_counter()
        with Journal(url, create=False) as journal:
            facts = load_facts(journal, uid)
        written = write_opendata(facts, work / "opendata")
        opendata_s = time.perf_counter() - t0
        records = doc.last_seq
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    total_s = time.perf_counter() - start
    render_s = rendering[0] if rendering else 0.0
    return {
        "votes": votes,
        "seats": seats,
        "records": records,
        "journal_s": round(journal_s, 3),
        "pdf_s": round(pdf_s, 3),
        "pdf_cpu_s": round(pdf_cpu_s, 3),
        "load_s": round(load_s, 3),
        "render_s": round(render_s, 3),
        "sign_s": round(pdf_s - load_s - render_s, 3),
        "pages": pages,
        "pdf_bytes": len(signed),
        "signed": intact,
        "pdf_path": str(pdf_path),
        "opendata_s": round(opendata_s, 3),
        "opendata_files": len(written),
        "total_s": round(total_s, 3),
        "pdf_goal_s": PDF_GOAL_S,
        "pdf_goal_met": pdf_s <= PDF_GOAL_S,
        "total_goal_s": TOTAL_GOAL_S,
        "cpus": os.cpu_count(),
        "load_avg_1min": round(load_avg, 2),
        "journal_kept": str(work / "journal.db") if keep else None,
    }


def run_from_cli(args: argparse.Namespace) -> int:
    """``chamber bench export``: one JSON object with ``--json``, else one figure a line.  Exit 0, or 1
    when the written PDF is not signed (a figure of an unsigned protocol would not be the one asked)."""
    votes = 100 if args.votes is None else args.votes
    problems = [
        "--votes must be 1 or more" if votes < 1 else "",
        "--seats must be 2 to 10000" if not 2 <= args.seats <= 10_000 else "",
    ]
    if any(problems):
        print("chamber bench export: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir is not None else Path("var/bench")
    result = bench_export(votes=votes, seats=args.seats, directory=directory)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for k, v in result.items():
            print(f"{k:16} {v}")
    return 0 if result["signed"] else 1
