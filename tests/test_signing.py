"""Signing (issue 9): PAdES signatures on protocols, demo keys, verify against the journal.

The documents are made by two renderers: a small reportlab one defined here (a page of the sitting's
votes, the chamber's keys in the information dictionary, invariant output as the real renderer's is)
and, when it is there, the project's own ``protocol_export.pdf``.  Everything that is about the
signature rather than the layout runs on both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from export_fixtures import fake_recordings, journal_sitting
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from chamber.cli import main
from chamber.config import load_config
from chamber.config_sections import SigningConfig
from chamber.core import events as ev
from chamber.journal import Journal
from protocol_export import keys, signing, verify
from protocol_export.recording_files import list_recordings, save_index
from protocol_export.recording_list import load_listed
from protocol_export.source import SittingDoc, load_sitting
from protocol_export.verify import check_signatures, compare_with_journal

ROOT = Path(__file__).resolve().parent.parent
Renderer = Callable[[SittingDoc, "int | None", "str | None"], bytes]


# --------------------------------------------------------------------------- a small renderer


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path in (
        ROOT / "protocol_export/fonts/DejaVuSans.ttf",
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    ):
        if path.exists():
            if "TestSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("TestSans", str(path)))
            return "TestSans"
    pytest.fail("no DejaVuSans.ttf for the test renderer's Cyrillic text", pytrace=False)


def small_render(doc: SittingDoc, vote: int | None, notice: str | None) -> bytes:
    """One page: the notice (if any), the sitting's coordinates and each vote's counts — reproducible."""
    from reportlab.pdfbase import pdfdoc
    from reportlab.pdfgen import canvas

    class Info(pdfdoc.PDFInfo):  # type: ignore[misc]
        def format(self, document: Any) -> Any:
            entries = {
                "Title": pdfdoc.PDFString(f"Протокол {doc.uid}"),
                "ChamberSitting": pdfdoc.PDFString(doc.uid),
                "ChamberSeqRange": pdfdoc.PDFString(f"{doc.first_seq}-{doc.last_seq}"),
                "ChamberHead": pdfdoc.PDFString(doc.head_text),
            }
            return pdfdoc.PDFDictionary(entries).format(document)

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, invariant=1)
    pdf._doc.info = Info()
    pdf.setFont(_font(), 9)
    results = [r for r in doc.snapshot.results if vote is None or r.number == vote]
    lines = [notice] if notice else []
    lines += [doc.title, f"Записи журналу {doc.first_seq}–{doc.last_seq}, голова {doc.head_text[:20]}…"]
    lines += [f"№ {r.number} {r.title or r.subject}: {'/'.join(map(str, r.counts))} — {r.result_uk}" for r in results]
    for n, line in enumerate(lines):
        pdf.drawString(40, 800 - 14 * n, line)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _renderers() -> list[Any]:
    return [
        pytest.param(small_render, id="small"),
        pytest.param("pdf", id="protocol_export.pdf"),
    ]


@pytest.fixture(scope="module", params=_renderers())
def render(request: pytest.FixtureRequest) -> Renderer:
    if request.param == "pdf":  # the project's renderer: a missing module is a failure, not a skip
        return signing.default_renderer
    renderer: Renderer = request.param
    return renderer


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('signing') / 'j.db'}"
    return url, journal_sitting(url)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``chamber keys init`` demo certificate and key."""
    out = tmp_path_factory.mktemp("keys") / "signing"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["keys", "init", "--out", str(out), "--council-name", "Житомирська міська рада"]) == 0
    return out


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> keys.Identity:
    return keys.load_identity(
        SigningConfig(certificate=str(demo_dir / "demo-cert.pem"), key=str(demo_dir / "demo-key.pem"))
    )


@pytest.fixture(scope="module")
def doc(journaled: tuple[str, str]) -> SittingDoc:
    url, uid = journaled
    with Journal(url, create=False) as journal:
        return load_sitting(journal, uid)


@pytest.fixture(scope="module")
def signed(doc: SittingDoc, demo: keys.Identity, render: Renderer) -> bytes:
    return signing.render_signed(doc, demo, location="Житомир", render=render)


def _pdfsig(path: Path) -> str:
    exe = shutil.which("pdfsig")
    if exe is None:
        pytest.fail(
            "pdfsig not found: `make test` installs poppler-utils (or: apt-get install poppler-utils)", pytrace=False
        )
    return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60).stdout


# --------------------------------------------------------------------------- keys init


def test_keys_init_writes_a_demo_certificate_and_prints_the_config_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert main(["keys", "init", "--out", str(out), "--config", str(ROOT / "config.toml")]) == 0
    printed = capsys.readouterr().out
    key, cert = out / "demo-key.pem", out / "demo-cert.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert cert.stat().st_mode & 0o077 != 0o077  # readable by others, writable by nobody else
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assert keys.is_demo(certificate) and keys.is_self_signed(certificate)
    assert "Житомирська міська рада" in certificate.subject.rfc4514_string()  # [council] name of config.toml
    assert f'certificate = "{cert}"' in printed and f'key = "{key}"' in printed  # outside the config's dir: absolute
    assert "[signing]" in printed and "demo" in printed
    # a second run does not overwrite the key
    assert main(["keys", "init", "--out", str(out), "--council-name", "X"]) == 2
    assert "--force" in capsys.readouterr().err
    assert x509.load_pem_x509_certificate(cert.read_bytes()) == certificate


def test_keys_init_pkcs12(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "p12"
    monkeypatch.delenv("CHAMBER_SIGNING_PASSPHRASE", raising=False)
    assert main(["keys", "init", "--pkcs12", "--out", str(out), "--council-name", "Рада"]) == 2
    assert "$CHAMBER_SIGNING_PASSPHRASE, which is not set" in capsys.readouterr().err
    monkeypatch.setenv("CHAMBER_SIGNING_PASSPHRASE", "гасло")
    assert main(["keys", "init", "--pkcs12", "--out", str(out), "--council-name", "Рада"]) == 0
    printed = capsys.readouterr().out
    p12 = out / "demo.p12"
    assert p12.stat().st_mode & 0o777 == 0o600 and not (out / "demo-key.pem").exists()
    assert f'pkcs12 = "{p12}"' in printed and 'passphrase_env = "CHAMBER_SIGNING_PASSPHRASE"' in printed
    identity = keys.load_identity(SigningConfig(pkcs12=str(p12), passphrase_env="CHAMBER_SIGNING_PASSPHRASE"))
    assert keys.is_demo(identity.certificate)


# --------------------------------------------------------------------------- signing and pyHanko


def test_the_signed_protocol_validates(signed: bytes, doc: SittingDoc, render: Renderer) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    (sig,) = reader.embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[]))
    assert status.intact and status.valid and not status.trusted  # self-signed: untrusted, yet intact
    assert status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    reason = str(sig.sig_object["/Reason"])
    assert f"записи {doc.first_seq}-{doc.last_seq}" in reason and doc.head_text in reason and doc.uid in reason
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES

    result = check_signatures(signed)
    assert result.ok, result.problems
    (check,) = result.signatures
    assert check.intact and check.trust_note == "no (self-signed demo certificate)" and check.later == "none"
    assert result.document == signing.DocumentRef(doc.uid, f"{doc.first_seq}-{doc.last_seq}", doc.head_text)
    # the rendered document is the signed file's first revision, byte for byte
    assert result.signed_document == render(doc, None, keys.DEMO_NOTICE)


def test_the_demo_notice_is_on_the_face_of_the_document(signed: bytes) -> None:
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(signed)).pages)
    assert "ДЕМОНСТРАЦІЙНИЙ ПІДПИС" in " ".join(text.split())


def test_a_certificate_of_a_provider_gets_no_notice(demo: keys.Identity) -> None:
    assert keys.notice_for(demo.certificate) == keys.DEMO_NOTICE
    ca = keys.make_demo_identity("Кваліфікований надавач")
    leaf = keys.make_demo_identity("Рада")
    issued = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Рада")]))
        .issuer_name(ca.certificate.subject)
        .public_key(leaf.key.public_key())
        .serial_number(7)
        .not_valid_before(ca.certificate.not_valid_before_utc)
        .not_valid_after(ca.certificate.not_valid_after_utc)
        .sign(ca.key, hashes.SHA256())
    )
    assert keys.notice_for(issued) is None and not keys.is_self_signed(issued)
    home_made = keys.make_demo_identity("Рада").certificate  # self-signed without the demo mark
    assert keys.is_self_signed(home_made)


def test_a_changed_byte_in_the_signed_range_is_detected(signed: bytes, tmp_path: Path) -> None:
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    _, len1, _, _ = sig.byte_range
    head = signed.index(b"/ChamberHead")  # in the information dictionary of the rendered revision
    assert head < len1
    at = signed.index(b"(", head) + 3
    flipped = bytearray(signed)
    flipped[at] = ord("0") if flipped[at] != ord("0") else ord("1")
    result = check_signatures(bytes(flipped))
    assert not result.ok and not result.signatures[0].intact
    assert any("changed" in p for p in result.problems)
    path = tmp_path / "flipped.pdf"
    path.write_bytes(bytes(flipped))
    assert "Signature Validation: Digest Mismatch." in _pdfsig(path)


def test_pdfsig_reports_the_signature_valid(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "protocol.pdf"
    path.write_bytes(signed)
    report = _pdfsig(path)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Signature Type: ETSI.CAdES.detached" in report and "Total document signed" in report


def test_a_second_signature_keeps_the_first_valid(signed: bytes, tmp_path: Path) -> None:
    chair = keys.make_demo_identity("Голова ради (кваліфікований підпис)")
    twice = signing.sign_pdf(signed, chair, reason="Підписано головою ради", field_name="QES")
    assert twice.startswith(signed)  # an incremental update: our revision is untouched
    reader = PdfFileReader(io.BytesIO(twice))
    statuses = [validate_pdf_signature(s, ValidationContext(trust_roots=[])) for s in reader.embedded_signatures]
    assert [s.intact and s.valid for s in statuses] == [True, True]
    result = check_signatures(twice)
    assert result.ok, result.problems
    assert [c.later for c in result.signatures] == ["further signatures only", "none"]
    path = tmp_path / "twice.pdf"
    path.write_bytes(twice)
    report = _pdfsig(path)
    assert report.count("Signature Validation: Signature is Valid.") == 2, report
    # a later revision that changes a page is named, though every signature is intact
    changed = _append_page_change(twice)
    result = check_signatures(changed)
    assert all(c.intact for c in result.signatures) and not result.ok
    assert any("changed after this signature" in p for p in result.problems), result.problems


def _change_first_page(writer: Any) -> None:
    """Give the first page new content in ``writer``'s pending update (what a forger would do)."""
    from pyhanko.pdf_utils import generic

    page = writer.root["/Pages"]["/Kids"].raw_get(0).get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 100 Td (Za: 99) Tj ET")
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)


def _append_page_change(pdf: bytes) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    _change_first_page(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_the_signed_revision_must_be_the_rendered_document_and_a_signature(
    doc: SittingDoc, demo: keys.Identity, render: Renderer
) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    rendered = render(doc, None, keys.DEMO_NOTICE)
    # a change slipped into the signature's own revision: pyHanko's checks of later revisions miss it
    writer = IncrementalPdfFileWriter(io.BytesIO(rendered))
    _change_first_page(writer)
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=signing.SigSeedSubFilter.PADES)
    slipped = signers.sign_pdf(writer, meta, signer=signing._signer(demo)).getvalue()
    result = check_signatures(slipped)
    assert result.signatures[0].intact and not result.ok
    assert any(re.fullmatch(r"revision 1 changes object [0-9]+ \(/Contents\)", p) for p in result.problems), (
        result.problems
    )
    # a change in a revision of its own before the signature: the signature signs two revisions
    result = check_signatures(signing.sign_pdf(_append_page_change(rendered), demo))
    assert result.signatures[0].intact and not result.ok
    assert any("signs 2 revisions, not a rendered document alone" in p for p in result.problems), result.problems


# --------------------------------------------------------------------------- verify against the journal


def test_verify_against_the_journal(signed: bytes, journaled: tuple[str, str], render: Renderer) -> None:
    url, _ = journaled
    result = check_signatures(signed)
    with Journal(url, create=False) as journal:
        compare_with_journal(result, journal, render)
    assert result.ok, result.problems
    assert result.journal and "equals the one rendered from the journal" in result.journal[0]


def test_verify_names_the_head_when_the_sitting_got_another_record(
    signed: bytes, journaled: tuple[str, str], doc: SittingDoc, render: Renderer, tmp_path: Path
) -> None:
    url, uid = journaled
    copy = tmp_path / "more.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    with Journal(f"sqlite:///{copy}") as journal:
        last = journal.last_record(uid)
        assert last is not None
        journal.append(uid, [(last.at_ms + 1_000, "Tick", ev.encode_input(ev.Tick()))])
    result = check_signatures(signed)
    with Journal(f"sqlite:///{copy}", create=False) as journal:
        compare_with_journal(result, journal, render)
    assert not result.ok
    text = "\n".join(result.journal)
    new_head = f"{doc.last_seq + 1}:"
    assert f"head: signed {doc.head_text}, journal now {new_head}" in text, text
    assert f"1 record(s) after it (seq {doc.last_seq + 1})" in text
    # the document itself is what the journal said at its head; what is wrong is the journal's growth
    assert "equals the one rendered from the journal up to its head" in text
    (problem,) = result.problems
    assert "added to sitting" in problem and "after it was closed" in problem and f"journal now {new_head}" in problem


def test_a_sheet_signed_during_the_sitting_verifies_after_it(
    journaled: tuple[str, str], demo: keys.Identity, render: Renderer
) -> None:
    url, uid = journaled
    with Journal(url, create=False) as journal:
        last = journal.last_record(uid)
        assert last is not None  # the CloseSitting record: before it the sitting was still open
        then = load_sitting(cast(Journal, verify._JournalUpTo(journal, last.seq - 1)), uid)
        assert then.closed_at_ms is None
        sheet = signing.render_signed(then, demo, vote=2, render=render)
        result = check_signatures(sheet)
        compare_with_journal(result, journal, render)
    assert result.ok, result.problems
    assert result.document is not None and result.document.vote == 2
    assert "the sitting went on after the document was made" in "\n".join(result.journal)


def test_verify_names_the_lines_that_differ(signed: bytes, journaled: tuple[str, str], render: Renderer) -> None:
    def renamed(doc: SittingDoc, vote: int | None, notice: str | None) -> bytes:  # as if the title had changed
        return render(dataclasses.replace(doc, title="Тринадцята сесія, позачергове засідання"), vote, notice)

    url, _ = journaled
    result = check_signatures(signed)
    with Journal(url, create=False) as journal:
        compare_with_journal(result, journal, renamed)
    assert not result.ok
    text = "\n".join(result.journal)
    assert re.search(r"page 1, line [0-9]+: signed «.*Дванадцята сесія.*», journal now «.*Тринадцята сесія.*»", text), (
        text
    )


def test_verify_refuses_a_journal_that_fails_its_chain(
    signed: bytes, journaled: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = journaled
    copy = tmp_path / "tampered.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal SET at_ms = at_ms + 1 WHERE seq = 5")
    result = check_signatures(signed)
    with Journal(f"sqlite:///{copy}", create=False) as journal:
        compare_with_journal(result, journal, small_render)
    assert any("fails verification" in p for p in result.problems), result.problems


# --------------------------------------------------------------------------- PKCS#12 and passphrases


def test_pkcs12_with_a_passphrase_from_the_environment(demo: keys.Identity, tmp_path: Path, doc: SittingDoc) -> None:
    p12 = keys.write_pkcs12(demo, tmp_path / "council.p12", "таємне слово")
    assert p12.stat().st_mode & 0o777 == 0o600
    config = SigningConfig(pkcs12=str(p12), passphrase_env="CHAMBER_SIGNING_PASSPHRASE")
    identity = keys.load_identity(config, {"CHAMBER_SIGNING_PASSPHRASE": "таємне слово"})
    assert identity.certificate == demo.certificate
    pdf = signing.render_signed(doc, identity, render=small_render)
    assert check_signatures(pdf).ok

    with pytest.raises(keys.SigningSetupError, match=r"^signing.pkcs12: wrong passphrase \(from \$CHAMBER_SIGNING"):
        keys.load_identity(config, {"CHAMBER_SIGNING_PASSPHRASE": "не те слово"})
    with pytest.raises(keys.SigningSetupError, match="CHAMBER_SIGNING_PASSPHRASE is not set"):
        keys.load_identity(config, {})
    with pytest.raises(keys.SigningSetupError, match=r"signing\.pkcs12: .*nope\.p12: no such file"):
        keys.load_identity(SigningConfig(pkcs12=str(tmp_path / "nope.p12")), {})


def test_an_encrypted_pem_key(demo: keys.Identity, demo_dir: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = tmp_path / "key.pem"
    key.write_bytes(
        demo.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    cert = str(demo_dir / "demo-cert.pem")
    config = SigningConfig(certificate=cert, key=str(key), passphrase_env="PW")
    assert keys.load_identity(config, {"PW": "pw"}).certificate == demo.certificate
    with pytest.raises(keys.SigningSetupError, match=r"signing.key: wrong passphrase \(from \$PW\)"):
        keys.load_identity(config, {"PW": "wrong"})
    with pytest.raises(keys.SigningSetupError, match="the key is encrypted: set passphrase_env"):
        keys.load_identity(SigningConfig(certificate=cert, key=str(key)), {})
    other = keys.make_demo_identity("Інша рада")
    with pytest.raises(keys.SigningSetupError, match="the key does not belong to the certificate"):
        keys.load_identity(SigningConfig(certificate=cert, key=str(_pem_key(other, tmp_path))), {})


def _pem_key(identity: keys.Identity, where: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = where / "other-key.pem"
    path.write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_signing_config_takes_a_pkcs12_file(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    section = re.compile(r'certificate = ""\nkey = ""\n(?:#.*\n)*passphrase_env = ""')
    assert section.search(text), "config.toml's [signing] example changed: update this test"
    good = section.sub('pkcs12 = "keys/council.p12"\npassphrase_env = "CHAMBER_SIGNING_PASSPHRASE"', text)
    (tmp_path / "config.toml").write_text(good, encoding="utf-8")
    signing_config = load_config(tmp_path / "config.toml").signing
    assert signing_config.enabled and signing_config.pkcs12 == str(tmp_path / "keys" / "council.p12")
    both = section.sub('pkcs12 = "a.p12"\ncertificate = "c.pem"\nkey = "k.pem"', text)
    (tmp_path / "config.toml").write_text(both, encoding="utf-8")
    with pytest.raises(Exception, match='signing: give either "pkcs12" or "certificate" and "key", not both'):
        load_config(tmp_path / "config.toml")


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def council_config(tmp_path: Path, journaled: tuple[str, str], demo_dir: Path, render: Renderer) -> Iterator[Path]:
    """config.toml with the demo key in [signing] and the fixture's journal in [store]."""
    url, _ = journaled
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace(
        'certificate = ""\nkey = ""', f'certificate = "{demo_dir}/demo-cert.pem"\nkey = "{demo_dir}/demo-key.pem"'
    )
    text = text.replace('url = "sqlite:///var/chamber.db"', f'url = "{url}"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(signing, "default_renderer", render)  # the commands render with the renderer under test
        yield path


def test_chamber_sign_and_verify(
    council_config: Path, journaled: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, uid = journaled
    out = tmp_path / "protocol.pdf"
    assert main(["sign", "--config", str(council_config), "--sitting", uid, "--out", str(out)]) == 0
    assert "its face says: ДЕМОНСТРАЦІЙНИЙ ПІДПИС" in capsys.readouterr().out
    assert main(["verify", str(out), "--config", str(council_config)]) == 0
    report = capsys.readouterr().out
    assert "integrity:     OK" in report and "trusted:       no (self-signed demo certificate)" in report
    assert "journal: the signed protocol equals the one rendered from the journal now" in report
    assert report.rstrip().endswith("OK: every signature is intact and the document is the journal's")

    sheet = tmp_path / "vote2.pdf"
    assert main(["sign", "--config", str(council_config), "--sitting", uid, "--vote", "2", "--out", str(sheet)]) == 0
    capsys.readouterr()
    assert main(["verify", str(sheet), "--db", url]) == 0
    assert "the result sheet of vote 2 of sitting" in capsys.readouterr().out

    assert main(["sign", "--config", str(council_config), "--sitting", uid, "--vote", "99", "--out", str(sheet)]) == 2
    assert "no finished vote № 99" in capsys.readouterr().err
    assert main(["sign", "--config", str(council_config), "--sitting", "nope", "--out", str(sheet)]) == 1
    assert "no sitting 'nope'" in capsys.readouterr().err


def test_chamber_verify_exit_codes(
    council_config: Path, signed: bytes, doc: SittingDoc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.pdf"
    good.write_bytes(signed)
    assert main(["verify", str(good)]) == 0  # the signatures only
    assert "journal: not compared" in capsys.readouterr().out
    assert main(["verify", str(good), "--require-trust"]) == 1
    assert "the certificate is not trusted" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing.pdf")]) == 2
    (tmp_path / "junk.pdf").write_bytes(b"not a pdf at all")
    assert main(["verify", str(tmp_path / "junk.pdf")]) == 2
    unsigned = tmp_path / "unsigned.pdf"
    unsigned.write_bytes(small_render(doc, None, None))
    assert main(["verify", str(unsigned), "--config", str(council_config)]) == 1
    assert "the document is not signed" in capsys.readouterr().out


def test_signing_needs_a_configured_key(
    tmp_path: Path, journaled: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, uid = journaled
    out = tmp_path / "x.pdf"
    assert main(["sign", "--config", str(ROOT / "config.toml"), "--sitting", uid, "--out", str(out)]) == 2
    assert "no certificate configured" in capsys.readouterr().err and not out.exists()


# --------------------------------------------------------------------------- speech recordings


def test_verify_names_the_recordings_apart_from_the_journal(
    journaled: tuple[str, str], doc: SittingDoc, demo: keys.Identity, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, uid = journaled
    folder = tmp_path / "rec"
    fake_recordings(folder, doc)
    with Journal(url, create=False) as journal:
        pdf = signing.sign_sitting(journal, uid, demo, recordings=folder)
        bare = signing.sign_sitting(journal, uid, demo)  # signed without the recordings

    def check(recordings: Path | None, data: bytes = pdf) -> verify.Verification:
        result = check_signatures(data)
        with Journal(url, create=False) as journal:
            compare_with_journal(result, journal, recordings=recordings)
        assert result.journal[0].startswith("the signed protocol equals"), result.journal  # the journal's part holds
        return result

    good = check(folder)
    assert good.ok, good.problems
    assert "the 3 listed are the index's and every file" in good.recordings[0]
    unchecked = check(None)
    assert unchecked.ok and "3 listed; not compared" in unchecked.recordings[0]

    listed = load_listed(folder, uid, doc.snapshot.speeches)
    path = folder / uid / listed[1].file
    data = path.read_bytes()
    path.write_bytes(b"x" + data[1:])
    assert check(folder).problems == [
        f"recordings: {listed[1].file}: changed (its SHA-256 is not the one the protocol lists)"
    ]
    path.unlink()
    assert check(folder).problems == [f"recordings: {listed[1].file}: missing from {folder / uid}"]
    path.write_bytes(data)
    index = list_recordings(folder, uid)
    save_index(folder, uid, [index[0], dataclasses.replace(index[1], duration_s=1.0), *index[3:]])
    assert check(folder).problems == [
        f"recordings: {listed[2].file}: listed in the protocol, not in the recordings index",
        f"recordings: {listed[1].file}: listed differently in the recordings index (duration_ms)",
    ]
    save_index(folder, uid, index)
    assert check(folder, bare).problems == [
        f"recordings: {rec.file}: in the recordings index, not listed in the protocol" for rec in listed
    ]

    signed_file = tmp_path / "signed.pdf"
    signed_file.write_bytes(pdf)
    assert main(["verify", str(signed_file), "--db", url, "--recordings", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "recordings: the 3 listed are the index's" in out and "journal: the signed protocol equals" in out
    path.write_bytes(b"x" + data[1:])
    assert main(["verify", str(signed_file), "--db", url, "--recordings", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"recordings: {listed[1].file}: changed" in out and "journal: the signed protocol equals" in out
