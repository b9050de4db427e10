"""Signing keys: a self-signed demo certificate (``chamber keys init``) and loading the council's key.

A council signs its protocols with a certificate issued to it (a qualified one, from its trust service
provider); demos and tests need one that anybody can make.  :func:`make_demo_identity` makes an RSA-3072
key and a self-signed certificate whose subject carries :data:`DEMO_MARKER` as its organizational unit:
a document signed with it is marked as a demo on its face (see :func:`notice_for`), so a demo protocol
can never pass for a council's.  :func:`write_demo_identity` writes them as PEM, the key with mode 0600
from its creation on (``O_EXCL``: an existing key is never overwritten in place), and
:func:`write_pkcs12` bundles them the way a provider hands out a key.

:func:`load_identity` reads what ``[signing]`` names — a PEM certificate and key, or a PKCS#12 file —
with the passphrase from the environment variable named in ``passphrase_env``, and turns every way this
can fail (a missing file, a variable not set, a wrong passphrase, a key that does not belong to the
certificate) into a :class:`SigningSetupError` whose message names the config key and says what to do.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from chamber.config_sections import SigningConfig

#: The organizational unit of a demo certificate: the mark :func:`is_demo` looks for.
DEMO_MARKER = "DEMO — не для юридичного використання"

#: Printed on the face of a document signed with a demo certificate (a part of the signed content).
DEMO_NOTICE = "ДЕМОНСТРАЦІЙНИЙ ПІДПИС (DEMO) — документ підписано тестовим сертифікатом, не для юридичного використання"
#: ... and with any other self-signed certificate: nobody vouches for who holds it.
SELF_SIGNED_NOTICE = "Підписано самопідписаним сертифікатом: особу підписувача ніхто не засвідчив"

DEFAULT_PASSPHRASE_ENV = "CHAMBER_SIGNING_PASSPHRASE"
CERT_FILE = "demo-cert.pem"
KEY_FILE = "demo-key.pem"
PKCS12_FILE = "demo.p12"

# A key type pyHanko can sign PDFs with.
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


class SigningSetupError(Exception):
    """The signing certificate or key cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    """A signing certificate with its private key and any CA certificates given with it."""

    certificate: x509.Certificate
    key: SigningKey
    chain: tuple[x509.Certificate, ...] = ()


# --------------------------------------------------------------------------- what a certificate is


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: only its holder vouches for it (a demo, or a council's home-made one)."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # a bad signature, an unsupported algorithm: not provably self-issued
        return False
    return True


def is_demo(cert: x509.Certificate) -> bool:
    """Made by ``chamber keys init``: the subject's OU is :data:`DEMO_MARKER`."""
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(a.value == DEMO_MARKER for a in units)


def notice_for(cert: x509.Certificate) -> str | None:
    """The line the document must carry on its face when signed with ``cert`` (None: a real certificate).

    The signer asks the renderer for it, so the notice is inside the signed content, and ``verify``
    asks for the same line again when it re-renders the document for the same certificate."""
    if is_demo(cert):
        return DEMO_NOTICE
    if is_self_signed(cert):
        return SELF_SIGNED_NOTICE
    return None


def describe(cert: x509.Certificate) -> str:
    """The subject as a person reads it, and the certificate's serial number."""
    return f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"


# --------------------------------------------------------------------------- demo identity


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (X.520 limits O and CN to 64; a Cyrillic letter takes two)."""
    text = text.strip()
    while len(text.encode()) > limit:
        text = text[:-1]
    return text.rstrip()


def make_demo_identity(council_name: str, *, days: int = 730, now: dt.datetime | None = None) -> Identity:
    """A fresh RSA-3072 key and a self-signed certificate for ``council_name`` marked as a demo."""
    if not council_name.strip():
        raise ValueError("the council name must not be empty")
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "UA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(council_name, 64)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEMO_MARKER),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{_fit(council_name, 64 - len(' (DEMO)'))} (DEMO)"),
        ]
    )
    start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0) - dt.timedelta(minutes=5)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # non-repudiation (content commitment) is what pyHanko and PDF validators expect of a document
        # signing certificate; nothing else may be done with this key
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(cert, key)


def _write_new(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    """Write a file that did not exist, created with ``mode`` (a key is never readable by others, not
    even for the moment between a write and a chmod)."""
    if force and path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # the umask may have taken bits away; never adds any to a key


def write_demo_identity(identity: Identity, out_dir: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``demo-cert.pem`` (0644) and ``demo-key.pem`` (0600, unencrypted) into ``out_dir``.

    FileExistsError if either exists and not ``force``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / CERT_FILE, out_dir / KEY_FILE
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise FileExistsError(path)
    key_pem = identity.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(key_path, key_pem, 0o600, force=force)
    write_certificate(identity.certificate, cert_path, force=force)
    return cert_path, key_path


def write_certificate(cert: x509.Certificate, path: Path, *, force: bool = False) -> Path:
    """The certificate alone as PEM (0644): what others need to check signatures (``verify --trust``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, cert.public_bytes(serialization.Encoding.PEM), 0o644, force=force)
    return path


def write_pkcs12(identity: Identity, path: Path, passphrase: str, *, force: bool = False) -> Path:
    """The identity as one PKCS#12 file (mode 0600) encrypted with ``passphrase``."""
    if not passphrase:
        raise ValueError("a PKCS#12 file needs a passphrase")
    data = pkcs12.serialize_key_and_certificates(
        b"chamber",
        identity.key,
        identity.certificate,
        list(identity.chain) or None,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, data, 0o600, force=force)
    return path


# --------------------------------------------------------------------------- the council's identity


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SigningSetupError(f"signing.{what}: {path}: no such file") from None
    except OSError as exc:
        raise SigningSetupError(f"signing.{what}: {path}: cannot read: {exc.strerror or exc}") from None


def _passphrase(config: SigningConfig, environ: Mapping[str, str]) -> bytes | None:
    if not config.passphrase_env:
        return None
    value = environ.get(config.passphrase_env)
    if value is None:
        raise SigningSetupError(
            f"signing.passphrase_env: the environment variable {config.passphrase_env} is not set "
            "(it must hold the passphrase of the signing key)"
        )
    return value.encode()


def _signing_key(key: object, where: str) -> SigningKey:
    if not isinstance(key, SigningKey):
        raise SigningSetupError(f"signing.{where}: a {type(key).__name__} cannot sign PDF documents")
    return key


def _wrong_passphrase(config: SigningConfig, where: str, exc: Exception) -> SigningSetupError:
    text = str(exc).lower()
    if "password was not given" in text or ("encrypted" in text and not config.passphrase_env):
        return SigningSetupError(
            f"signing.{where}: the key is encrypted: set passphrase_env to the name of an environment "
            "variable holding its passphrase"
        )
    if "password" in text or "decrypt" in text or "mac" in text:
        via = f" (from ${config.passphrase_env})" if config.passphrase_env else ""
        # PKCS#12 cannot tell a wrong passphrase from a damaged file: say both
        damaged = ", or the file is not PKCS#12" if where == "pkcs12" else ""
        return SigningSetupError(f"signing.{where}: wrong passphrase{via}: the key cannot be decrypted{damaged}")
    return SigningSetupError(f"signing.{where}: not a key this program can read: {exc}")


def _load_pem(config: SigningConfig, passphrase: bytes | None) -> Identity:
    cert_data = _read(config.certificate, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(cert_data) if b"-----BEGIN" in cert_data else []
        if not certs:
            certs = [x509.load_der_x509_certificate(cert_data)]
    except ValueError as exc:
        raise SigningSetupError(
            f"signing.certificate: {config.certificate}: not a certificate (PEM or DER): {exc}"
        ) from None
    key_data = _read(config.key, "key")
    try:
        if b"-----BEGIN" in key_data:
            raw = serialization.load_pem_private_key(key_data, passphrase)
        else:
            raw = serialization.load_der_private_key(key_data, passphrase)
    except (ValueError, TypeError) as exc:
        if passphrase is not None and "not encrypted" in str(exc).lower():
            # an unencrypted key with a passphrase configured: harmless, but say so rather than guess
            raise SigningSetupError(
                f"signing.key: {config.key}: the key is not encrypted, but passphrase_env is set; "
                "remove passphrase_env (or encrypt the key)"
            ) from None
        raise _wrong_passphrase(config, "key", exc) from None
    return Identity(certs[0], _signing_key(raw, "key"), tuple(certs[1:]))


def _load_pkcs12(config: SigningConfig, passphrase: bytes | None) -> Identity:
    data = _read(config.pkcs12, "pkcs12")
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise _wrong_passphrase(config, "pkcs12", exc) from None
    if key is None or cert is None:
        raise SigningSetupError(f"signing.pkcs12: {config.pkcs12}: holds no private key with its certificate")
    return Identity(cert, _signing_key(key, "pkcs12"), tuple(extra))


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_identity(config: SigningConfig, environ: Mapping[str, str] | None = None) -> Identity:
    """The certificate and key ``[signing]`` names; SigningSetupError says what is wrong."""
    if not config.enabled:
        raise SigningSetupError(
            "signing: no certificate configured: set certificate and key (or pkcs12) in [signing] "
            "(a demo certificate: chamber keys init)"
        )
    passphrase = _passphrase(config, os.environ if environ is None else environ)
    identity = _load_pkcs12(config, passphrase) if config.pkcs12 else _load_pem(config, passphrase)
    if _spki(identity.certificate.public_key()) != _spki(identity.key.public_key()):
        where = "pkcs12" if config.pkcs12 else "key"
        raise SigningSetupError(
            f"signing.{where}: the key does not belong to the certificate {describe(identity.certificate)}"
        )
    return identity
