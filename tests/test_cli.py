"""The chamber command: exit codes and output people and scripts rely on."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pytest

from chamber.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "config.toml")]) == 0
    assert "composition 43" in capsys.readouterr().out


def test_check_config_rejects_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("composition = 43", "composition = 44"), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(broken)])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "broken.toml" in err and "council.composition" in err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check-config", str(tmp_path / "nope.toml")])
    assert exc.value.code != 0
    assert "not found" in capsys.readouterr().err


def test_demo_then_verify_then_replay_then_tamper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--config", str(ROOT / "config.toml"), "--db", url, "--fast"]) == 0
    out = capsys.readouterr().out
    assert "ПРИЙНЯТО" in out and "НЕ ПРИЙНЯТО" in out
    assert "replayed state equals live state: так / yes" in out

    assert main(["journal", "verify", "--db", url]) == 0
    assert "intact" in capsys.readouterr().out

    assert main(["replay", "--db", url, "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["phase"] == "no_sitting" and len(snap["results"]) == 2
    assert snap["results"][0]["adopted"] is True and snap["results"][1]["adopted"] is False

    from chamber.journal import Journal

    journal = Journal(url)
    with journal.engine.begin() as conn:
        # turn one deputy's За into Проти, as a forger would
        rows = conn.exec_driver_sql("SELECT seq, payload FROM journal WHERE type = 'KeyPressed'").all()
        seq, payload = next((q, bytes(p)) for q, p in rows if b'"key":2' in bytes(p))
        conn.exec_driver_sql(
            "UPDATE journal SET payload = ? WHERE seq = ?", (bytes(payload).replace(b'"key":2', b'"key":3'), seq)
        )
    journal.close()
    assert main(["journal", "verify", "--db", url]) == 1
    out = capsys.readouterr().out
    assert f"seq {seq}: changed" in out


def test_bench_core_prints_one_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(
        [
            "bench",
            "core",
            "--json",
            "--seats",
            "50",
            "--presses",
            "2000",
            "--rounds",
            "1",
            "--no-engine",
            "--dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("events_per_s", "journal_appends_per_s", "journal_batched_appends_per_s"):
        assert isinstance(result[key], int) and result[key] > 0
    assert result["recount_matches"] is True


def test_bench_bus_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    """A small run of the real thing (two simulator processes with wire time, the real controller):
    the figures are there and consistent; their size is for docs/BENCHMARKS.md, not for a test.  At 16
    seats on 2 lines the run must be valid and exit 0.  A host that falls behind (another test suite on
    the same cores) makes a run invalid, exit 3, which is the bench telling the truth, not the code
    failing: such a run is made once more, and a second invalid one fails the test.  (The exit codes
    themselves are checked without timing in test_bench_bus_exit_codes.)"""
    args = ["bench", "bus", "--json", "--seats", "16", "--lines", "2", "--baud", "115200", "--seconds", "1"]
    runs = []
    for _ in range(2):
        code = main(args)
        result = json.loads(capsys.readouterr().out)
        assert result["valid"] is (result["offline_verdicts"] == 0)
        runs.append((code, result["offline_verdicts"]))
        if result["valid"]:
            break
    assert code == 0, f"exit codes and offline verdicts of the runs: {runs}"
    assert result["lost_presses"] == 0 and result["duplicate_journal_records"] == 0
    assert "duplicate_event" not in result["refused_presses"]
    assert result["presses"] > 0 and result["journaled_presses"] == result["presses"]
    assert result["polls"] > 0 and result["cycles"] > 0
    assert result["wire_limit_ms"] == pytest.approx(8 * ((8 + 13) * 11 / 115200 + 2 * 0.00175) * 1000, abs=0.01)
    assert result["ratio"] == pytest.approx(result["cycle_ms"] / result["wire_limit_ms"], abs=0.002)
    assert result["sim_reply_late_ms"] >= 0.0 and result["ratio_net_of_sim"] <= result["ratio"]
    assert result["ratio"] >= 1.0  # nothing polls faster than the wire allows


@pytest.mark.parametrize(
    ("valid", "lost", "code"),
    [(True, 0, 0), (False, 0, 3), (True, 2, 1), (False, 2, 1)],  # a lost press is worse than bad timing
)
def test_bench_bus_exit_codes(
    valid: bool, lost: int, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``chamber bench bus`` exits with for each kind of result, with the run itself stubbed: no
    timing decides it, so exactly one code passes each case."""
    fake = types.ModuleType("chamber.bench_bus")
    fake.bench_bus = lambda **_: {"valid": valid, "lost_presses": lost, "offline_verdicts": 0 if valid else 3}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chamber.bench_bus", fake)
    assert main(["bench", "bus", "--json", "--seats", "16", "--lines", "2", "--baud", "115200"]) == code
    captured = capsys.readouterr()
    assert json.loads(captured.out)["valid"] is valid
    assert ("timing is not valid" in captured.err) is (code == 3)


def test_a_store_that_cannot_be_opened_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", "--db", "sqlite:////proc/no-such-dir/chamber.db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chamber: store sqlite:////proc/no-such-dir/chamber.db: cannot open:"), err
    assert "Traceback" not in err
    assert main(["journal", "verify", "--db", "postgresql://chamber:secret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "cannot open" in err and "secret" not in err  # the password is not printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lines", "0"], "--lines must be 1 or more"),
        (["--fault-rate", "2"], "--fault-rate must be 0 … 1"),
        (["--baud", "12345"], "--baud must be one of"),
        (["--seats", "3", "--lines", "4"], "--seats must be at least --lines"),
    ],
)
def test_bench_bus_refuses_bad_arguments(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["bench", "bus", *args]) == 2
    assert message in capsys.readouterr().err


def test_sim_takes_its_own_options_as_the_readme_writes_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["sim", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "missing.toml" in err and "unrecognized arguments" not in err


def test_console_script_is_installed() -> None:
    exe = shutil.which("chamber") or str(Path(__import__("sys").executable).parent / "chamber")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "check-config" in proc.stdout


def test_bus_demo_runs_the_sitting_through_simulated_consoles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    assert main(["demo", "--bus", "--config", str(ROOT / "config.toml"), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "ПРИЙНЯТО" in out and "кінець: час вичерпано" in out
    # LEDs read back from a simulated console's registers, named
    assert "горять / lit: " in out and "картку прийнято / card accepted" in out and "Led." not in out
    assert "replayed state equals live state: так / yes" in out


def demo_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--config", str(ROOT / "config.toml"), "--db", url, "--fast"]) == 0
    capsys.readouterr()
    return url


def test_verify_and_replay_of_a_sitting_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = demo_journal(tmp_path, capsys)
    assert main(["journal", "verify", "--db", url, "--sitting", "nope"]) == 1
    assert "sitting nope: no such sitting" in capsys.readouterr().err
    assert main(["replay", "--db", url, "--sitting", "nope"]) == 1
    assert "sitting nope: no such sitting" in capsys.readouterr().err


def test_audit_tools_do_not_create_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped path must not verify as an intact, empty journal (nor leave a new file behind)."""
    missing = tmp_path / "var" / "typo.db"
    for command in (["journal", "verify"], ["replay"]):
        assert main([*command, "--db", f"sqlite:///{missing}"]) == 2
        err = capsys.readouterr().err
        assert "cannot open" in err and f"no journal database at {missing}" in err, err
    assert not missing.exists() and not missing.parent.exists()


def test_replay_refuses_a_tampered_journal_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = demo_journal(tmp_path, capsys)
    from chamber.journal import Journal

    journal = Journal(url)
    with journal.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM journal WHERE seq = 5")
    journal.close()
    assert main(["replay", "--db", url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fails verification" in captured.err and "seq 5: removed" in captured.err
    assert "--force" in captured.err
    assert main(["replay", "--db", url, "--force"]) == 1  # replayed, but still not a clean result
    captured = capsys.readouterr()
    assert "records replayed (journal NOT intact)" in captured.out


def test_replay_of_a_record_that_cannot_be_decoded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A payload changed together with its hashes (a forger who knows the scheme, or a codec bug)
    passes the chain; replay must still end in a message, not a traceback."""
    url = demo_journal(tmp_path, capsys)
    from chamber.chain import record_hash
    from chamber.journal import Journal

    journal = Journal(url)
    uid = journal.sittings()[-1]
    records = list(journal.records(uid))
    with journal.engine.begin() as conn:
        prev = records[2].prev_hash
        for i, rec in enumerate(records[2:], start=2):
            payload = b'{"type":"NoSuchEvent"}' if i == 2 else rec.payload
            digest = record_hash(prev, uid, rec.seq, rec.at_ms, rec.type, payload)
            conn.exec_driver_sql(
                "UPDATE journal SET payload = ?, prev_hash = ?, hash = ? WHERE sitting = ? AND seq = ?",
                (payload, prev, digest, uid, rec.seq),
            )
            prev = digest
        conn.exec_driver_sql("UPDATE chain_head SET hash = ? WHERE sitting = ?", (prev, uid))
    journal.close()
    assert main(["journal", "verify", "--db", url]) == 0  # the chain itself is consistent
    capsys.readouterr()
    assert main(["replay", "--db", url]) == 1
    err = capsys.readouterr().err
    assert f"record {records[2].seq} ({records[2].type}) cannot be decoded" in err and "Traceback" not in err


def test_the_terminal_report_names_subjects_speeches_and_endings_in_ukrainian() -> None:
    from chamber.core.phases import Phase
    from chamber.core.values import SpeechKind, VoteSubject
    from chamber.report import ENDED_UK, PHASE_UK, SPEECH_UK, SUBJECT_UK

    assert set(SUBJECT_UK) == set(VoteSubject) and set(SPEECH_UK) == set(SpeechKind) and set(PHASE_UK) == set(Phase)
    # every reason the core gives for the end of a speech has its words
    core = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "chamber" / "core").glob("*.py"))
    codes = set(re.findall(r'\b(?:end|end_all)\([^)]*"([a-z_]+)"', core))
    assert codes and codes <= set(ENDED_UK), codes - set(ENDED_UK)


def test_demo_refuses_a_journal_that_holds_sittings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = demo_journal(tmp_path, capsys)
    for extra in ([], ["--bus"]):
        assert main(["demo", *extra, "--config", str(ROOT / "config.toml"), "--db", url, "--fast"]) == 2
        assert "already holds 1 sitting(s)" in capsys.readouterr().err


def test_verify_does_not_write_into_a_database_that_is_not_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-app.db"
    with contextlib.closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (other, empty):
        assert main(["journal", "verify", "--db", f"sqlite:///{path}"]) == 2
        assert "not a chamber journal" in capsys.readouterr().err
    with contextlib.closing(sqlite3.connect(other)) as db:
        assert [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["invoices"]


def test_verify_finds_a_sitting_deleted_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'three.db'}"
    from chamber.bench import demo_roster
    from chamber.core import events as ev
    from chamber.engine import Engine
    from chamber.journal import Journal

    journal = Journal(url)
    engine = Engine(journal)
    engine.start()
    uids = []
    for number in (1, 2, 3):
        assert engine.execute(ev.OpenSitting(roster=demo_roster(4), number=number)).accepted
        uids.append(engine.sitting_uid)
        assert engine.execute(ev.CloseSitting()).accepted
    engine.stop()
    journal.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "three.db")) as db, db:
        for table, column in (("journal", "sitting"), ("chain_head", "sitting"), ("sittings", "uid")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (uids[1],))
    assert main(["journal", "verify", "--db", url]) == 1
    out = capsys.readouterr().out
    assert "sitting number 2 in order of creation is missing" in out
    assert f"sitting {uids[0]}: intact" in out and f"sitting {uids[2]}: intact" in out


def test_usb_ids_take_ascii_hex_digits_only() -> None:
    from chamber.cli import _usb_id

    assert _usb_id("0x072f") == _usb_id("072F") == 0x072F
    with pytest.raises(ValueError):
        _usb_id("٠٧٢f")  # int() would read Arabic-Indic digits as 072f
