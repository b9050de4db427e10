"""``chamber keys init``, ``chamber sign`` and ``chamber verify``: the command-line side of signing.

chamber/cli.py declares the arguments and calls these; each takes the parsed arguments and returns
the exit code, printing what a person needs (the config lines for a new key, what was signed, every
signature's verdict and what differs from the journal).  Exit codes: 0 done / all good; 1 problems
found (a tampered or foreign document, a journal that cannot back the document); 2 nothing could be
done (no readable file, config, key or store).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from chamber.config import Config, ConfigError, load_config
from protocol_export import keys

if TYPE_CHECKING:  # verify and signing import pyHanko: only the command that needs them pays for it
    from protocol_export.verify import Verification

DEMO_COUNCIL = "Демонстраційна рада"


def _err(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _config(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        raise SystemExit(2) from None


def _as_config_path(path: Path, config_dir: Path) -> str:
    """``path`` as written in a config file in ``config_dir`` (relative paths resolve against it)."""
    path = path.resolve()
    try:
        return str(path.relative_to(config_dir.resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- keys init


def keys_init(args: argparse.Namespace) -> int:
    name = args.council_name
    config_path = Path(args.config)
    if not name:
        name = _config(args.config).council.name if config_path.exists() else DEMO_COUNCIL
    passphrase = ""
    if args.pkcs12:
        passphrase = os.environ.get(args.passphrase_env, "")
        if not passphrase:
            return _err(
                f"chamber keys init: --pkcs12 encrypts the file with the passphrase in ${args.passphrase_env}, "
                "which is not set or empty"
            )
    identity = keys.make_demo_identity(name)
    out = Path(args.out)
    cert_path, key_path = out / keys.CERT_FILE, out / keys.KEY_FILE
    p12_path = out / keys.PKCS12_FILE
    try:
        if args.pkcs12:
            if not args.force and cert_path.exists():
                raise FileExistsError(cert_path)
            keys.write_pkcs12(identity, p12_path, passphrase, force=args.force)
            keys.write_certificate(identity.certificate, cert_path, force=args.force)
        else:
            keys.write_demo_identity(identity, out, force=args.force)
    except FileExistsError as exc:
        return _err(f"chamber keys init: {exc.filename or exc.args[0]} exists (--force replaces it)")
    except OSError as exc:
        return _err(f"chamber keys init: cannot write into {out}: {exc.strerror or exc}")
    until = identity.certificate.not_valid_after_utc.date().isoformat()
    print(f"wrote {cert_path}: a self-signed demo certificate for «{name}», valid until {until}")
    if args.pkcs12:
        print(f"wrote {p12_path}: key and certificate as PKCS#12, encrypted with ${args.passphrase_env} (mode 0600)")
    else:
        print(f"wrote {key_path}: its private key, unencrypted (mode 0600)")
    print("Documents signed with it say on their face that the signature is a demo, not for legal use.")
    config_dir = config_path.resolve().parent
    print(f"\nTo sign with it, put these lines in {args.config} (replacing its [signing] section):\n")
    print("[signing]")
    if args.pkcs12:
        print(f'pkcs12 = "{_as_config_path(p12_path, config_dir)}"')
        print(f'passphrase_env = "{args.passphrase_env}"')
    else:
        print(f'certificate = "{_as_config_path(cert_path, config_dir)}"')
        print(f'key = "{_as_config_path(key_path, config_dir)}"')
    return 0


# --------------------------------------------------------------------------- sign


def sign(args: argparse.Namespace) -> int:
    from chamber.journal import Journal
    from protocol_export.signing import SigningError, sign_sitting
    from protocol_export.source import SourceError

    config = _config(args.config)
    try:
        identity = keys.load_identity(config.signing)
    except keys.SigningSetupError as exc:
        return _err(f"chamber sign: {config.source}: {exc}")
    journal = Journal(args.db or config.store.url, create=False)
    try:
        data = sign_sitting(
            journal,
            args.sitting,
            identity,
            vote=args.vote,
            location=config.council.place or config.council.name,
            recordings=getattr(args, "recordings", None) or config.recording.directory,
        )
    except SourceError as exc:
        print(f"chamber sign: {exc}", file=sys.stderr)
        return 1
    except SigningError as exc:
        return _err(f"chamber sign: {exc}")
    except ValueError as exc:  # a recordings index that cannot be read
        print(f"chamber sign: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        return _err(f"chamber sign: the PDF renderer is not available: {exc}")
    finally:
        journal.close()
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)  # a reader never sees half a signed file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return _err(f"chamber sign: cannot write {out}: {exc.strerror or exc}")
    what = "protocol" if args.vote is None else f"result sheet of vote {args.vote}"
    print(f"wrote {out}: the {what} of sitting {args.sitting}, signed by {keys.describe(identity.certificate)}")
    notice = keys.notice_for(identity.certificate)
    if notice:
        print(f"its face says: {notice}")
    return 0


# --------------------------------------------------------------------------- verify


def _trust_anchors(paths: list[str]) -> list[x509.Certificate]:
    anchors = []
    for path in paths:
        data = Path(path).read_bytes()
        if b"-----BEGIN" in data:
            anchors += x509.load_pem_x509_certificates(data)
        else:
            anchors.append(x509.load_der_x509_certificate(data))
    return anchors


def verify(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal
    from protocol_export import verify as check

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        return _err(f"chamber verify: {args.file}: cannot read: {exc.strerror or exc}")
    try:
        anchors = _trust_anchors(args.trust)
    except (OSError, ValueError) as exc:
        return _err(f"chamber verify: --trust: not a certificate file: {exc}")
    config = _config(args.config) if args.config else None
    url = args.db or (config.store.url if config is not None else None)
    recordings = getattr(args, "recordings", None) or (config.recording.directory if config is not None else None)
    try:
        result = check.check_signatures(data, anchors, require_trust=args.require_trust)
    except check.UnreadablePdf as exc:
        return _err(f"chamber verify: {args.file}: {exc}")
    if url is not None and result.signed_document:
        journal = Journal(url, create=False)
        try:
            check.compare_with_journal(result, journal, recordings=recordings)
        except SQLAlchemyError as exc:
            return _err(f"chamber: the store cannot be read: {type(exc).__name__}: {exc}")
        except ModuleNotFoundError as exc:
            return _err(f"chamber verify: the PDF renderer is not available: {exc}")
        finally:
            journal.close()
    _print_report(args.file, result, compared=url is not None)
    return 0 if result.ok else 1


def _print_report(name: str, result: Verification, *, compared: bool) -> None:
    count = len(result.signatures)
    print(f"{name}: {count} signature(s), {result.revisions} revision(s)")
    for n, sig in enumerate(result.signatures, start=1):
        when = sig.signed_at.strftime("%Y-%m-%d %H:%M:%S %Z") if sig.signed_at else "not stated"
        print(f"signature {n}: {sig.field} (revision {sig.revision})")
        print(f"  signer:        {sig.signer}")
        print(f"  signed at:     {when}")
        if sig.reason:
            print(f"  reason:        {sig.reason}")
        print(f"  integrity:     {'OK' if sig.intact else 'FAILED'}")
        print(f"  trusted:       {sig.trust_note}")
        print(f"  later changes: {sig.later}")
    doc = result.document
    if doc is not None:
        what = "protocol" if doc.vote is None else f"result sheet of vote {doc.vote}"
        print(f"document: the {what} of sitting {doc.sitting}, journal records {doc.seq_range}, head {doc.head}")
    if compared:
        for line in result.journal:
            print(f"journal: {line}" if not line.startswith(" ") else line)
    else:
        print("journal: not compared (give --db URL or --config FILE to re-render it from the journal)")
    for line in result.recordings:
        print(f"recordings: {line}" if not line.startswith(" ") else line)
    if result.ok:
        print("OK: every signature is intact" + (" and the document is the journal's" if compared else ""))
    else:
        print(f"{len(result.problems)} problem(s):")
        for problem in result.problems:
            print(f"  - {problem}")
