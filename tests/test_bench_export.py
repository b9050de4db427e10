"""chamber bench export, bounded: 5 roll-call votes on a 43-seat synthetic chamber, and that chamber.

The full benchmark (100 votes, 450 seats) is docs/BENCHMARKS.md's; here the command runs the same code
on a small sitting and its JSON is checked for what the issue asks of it (``pdf_s``, ``pages``,
``signed``, ``pdf_path`` left on disk, ``opendata_s``), and the PDF it left for being the signed
protocol of that sitting.  The synthetic chamber is checked at two sizes: 450 seats is the chamber the
other tests have always used, and a small one is a valid council too.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from chamber import synthetic
from chamber.cli import main
from chamber.journal import Journal
from protocol_export import verify
from protocol_export.bench_export import journal_sitting
from protocol_export.source import load_sitting


def test_bench_export_prints_one_json_object_and_leaves_the_signed_pdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "export", "--votes", "5", "--seats", "43", "--json", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["votes"] == 5 and result["seats"] == 43 and result["signed"] is True
    for key in ("pdf_s", "load_s", "render_s", "sign_s", "opendata_s", "journal_s", "total_s"):
        assert isinstance(result[key], float) and result[key] >= 0, key
    assert 0 < result["load_s"] + result["render_s"] <= result["pdf_s"] <= result["total_s"]
    assert result["pdf_goal_s"] == 10 and result["pdf_goal_met"] == (result["pdf_s"] <= 10)
    pdf = Path(result["pdf_path"])
    assert pdf.parent == tmp_path and pdf.is_file() and pdf.stat().st_size == result["pdf_bytes"]
    data = pdf.read_bytes()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == result["pages"] > 5  # 43 names a vote, five votes: pages of its own
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Голосування № 5" in text and "DEMO" in text  # the whole protocol, a demo key's notice on it
    checked = verify.check_signatures(data, [])
    assert checked.ok and len(checked.signatures) == 1 and checked.signatures[0].intact
    assert result["opendata_files"] == 13
    assert [p.name for p in tmp_path.iterdir()] == [pdf.name]  # the journal and the key are gone


def test_bench_export_refuses_sizes_it_cannot_make(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "export", "--votes", "0", "--seats", "43"]) == 2
    assert main(["bench", "export", "--votes", "1", "--seats", "1"]) == 2
    err = capsys.readouterr().err
    assert "--votes must be 1 or more" in err and "--seats must be 2 to 10000" in err


def test_the_benchmark_sitting_has_the_votes_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    uid = journal_sitting(url, votes=3, seats=20)
    with Journal(url, create=False) as journal:
        doc = load_sitting(journal, uid)
    results = doc.snapshot.results
    assert [r.number for r in results] == [1, 2, 3] and all(r.kind.value == "roll_call" for r in results)
    assert [r.item for r in results] == ["1", "2", "3"] and doc.closed_at_ms is not None
    assert all(len(r.per_name) == 20 for r in results)  # every deputy has a line: voted, did not, absent
    assert doc.snapshot.rounds[0].count == 19  # 95 % of the chamber registered


def test_the_synthetic_chamber_at_450_seats_and_at_43() -> None:
    big = synthetic.load(450)
    assert len(big.deputies) == len(big.seats) == 450 and len(big.lines) == 8
    factions = {name: sum(1 for d in big.deputies if d.faction == name) for name, _ in synthetic.FACTIONS}
    assert factions == {name: size + (name == "") for name, size in synthetic.FACTIONS}  # and the head
    assert synthetic.config_text(450) == synthetic.config_text(450)  # the same text on every run
    small = synthetic.load(43)
    assert len(small.deputies) == 43 and len(small.lines) == 1 and small.council.composition == 43
    assert len({d.full_name for d in small.deputies}) == 43
    assert [d.full_name for d in small.deputies][:5] == [d.full_name for d in big.deputies][:5]  # one seed
    assert synthetic.council_name(43) == "Навчальна палата на 43 місця"
    assert synthetic.council_name(21) == "Навчальна палата на 21 місце"
    assert synthetic.council_name(11) == "Навчальна палата на 11 місць"
    with pytest.raises(ValueError):
        synthetic.config_text(1)
