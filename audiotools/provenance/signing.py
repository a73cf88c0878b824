"""Ed25519 keys and signatures for transcript provenance (the ``cryptography`` package).

What is signed: the 64 lowercase hex characters of ``provenance.transcript_sha256``, as ASCII
bytes. The signature block in the transcript::

    {"algorithm": "ed25519", "public_key": <base64 of the 32 raw public-key bytes>,
     "key_id": <first 16 hex of sha256(raw public key)>, "value": <base64 of the 64-byte signature>}

Keys are PEM files: private keys PKCS#8 (``-----BEGIN PRIVATE KEY-----``, optionally encrypted
with the passphrase in ``$AUDIOTOOLS_KEY_PASSPHRASE``), public keys SubjectPublicKeyInfo
(``-----BEGIN PUBLIC KEY-----``). OpenSSH ``ssh-ed25519`` keys are accepted too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from audiotools.errors import KeyFileError, UsageError

ALGORITHM = "ed25519"
PASSPHRASE_ENV = "AUDIOTOOLS_KEY_PASSPHRASE"


def _ed25519():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def raw_public_bytes(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key) -> str:
    """First 16 hex digits of sha256 over the 32 raw public-key bytes."""
    raw = public_key if isinstance(public_key, (bytes, bytearray)) else raw_public_bytes(public_key)
    return hashlib.sha256(bytes(raw)).hexdigest()[:16]


def _passphrase() -> bytes | None:
    v = os.environ.get(PASSPHRASE_ENV)
    return v.encode("utf-8") if v else None


def load_private_key(path: str | os.PathLike):
    """An Ed25519 private key from a PEM (PKCS#8) or OpenSSH file. Raises a one-line error."""
    from cryptography.hazmat.primitives import serialization

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{p}: cannot read signing key: {e.strerror or e}") from None
    loaders = (
        [serialization.load_ssh_private_key]
        if b"OPENSSH PRIVATE KEY" in data
        else [serialization.load_pem_private_key, serialization.load_der_private_key]
    )
    last = "not a private key"
    for load in loaders:
        for password in (None, _passphrase()):
            try:
                key = load(data, password=password)
            except TypeError as e:  # encrypted without a password, or password given to a plain key
                last = str(e)
                continue
            except (ValueError, binascii.Error) as e:
                last = str(e).splitlines()[0] if str(e) else "not a private key"
                break
            if not isinstance(key, _ed25519().Ed25519PrivateKey):
                raise KeyFileError(f"{p}: not an Ed25519 private key ({type(key).__name__})")
            return key
    if "encrypted" in last.lower() or "password" in last.lower():
        last += f" (set ${PASSPHRASE_ENV} to the passphrase)"
    raise KeyFileError(f"{p}: cannot load Ed25519 private key: {last}")


def load_public_key(spec):
    """An Ed25519 public key from: a key object, 32 raw bytes, a file (PEM public or private key,
    OpenSSH ``ssh-ed25519`` line), or a base64 string of the 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization

    ed = _ed25519()
    if isinstance(spec, ed.Ed25519PublicKey):
        return spec
    if isinstance(spec, ed.Ed25519PrivateKey):
        return spec.public_key()
    if isinstance(spec, (bytes, bytearray)) and len(spec) == 32:
        return ed.Ed25519PublicKey.from_public_bytes(bytes(spec))
    p = Path(os.fspath(spec))
    if not p.is_file():
        try:
            raw = base64.b64decode(str(spec), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return ed.Ed25519PublicKey.from_public_bytes(raw)
        raise KeyFileError(f"{spec}: no such key file (and not a base64 Ed25519 public key)")
    data = p.read_bytes()
    key = None
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key = serialization.load_ssh_public_key(data.strip())
        elif b"PRIVATE KEY" in data:
            key = load_private_key(p).public_key()
        elif b"BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            try:
                raw = base64.b64decode(data.strip(), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            key = (
                ed.Ed25519PublicKey.from_public_bytes(raw)
                if len(raw) == 32
                else serialization.load_der_public_key(data)
            )
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{p}: cannot load Ed25519 public key: {str(e).splitlines()[0] if str(e) else e}") from None
    if not isinstance(key, ed.Ed25519PublicKey):
        raise KeyFileError(f"{p}: not an Ed25519 public key ({type(key).__name__})")
    return key


def sign_digest(private_key, transcript_sha256: str) -> dict:
    """The signature block for ``transcript_sha256`` (hex)."""
    pub = raw_public_bytes(private_key.public_key())
    value = private_key.sign(transcript_sha256.encode("ascii"))
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(pub).decode("ascii"),
        "key_id": key_id(pub),
        "value": base64.b64encode(value).decode("ascii"),
    }


def verify_digest(signature: dict, transcript_sha256: str, public_key=None) -> tuple[bool, str]:
    """Check a signature block. With ``public_key``, the signature must also be made by that key.

    Returns ``(ok, detail)``; never raises on malformed input.
    """
    from cryptography.exceptions import InvalidSignature

    ed = _ed25519()
    if not isinstance(signature, dict):
        return False, "signature block is not an object"
    if signature.get("algorithm") != ALGORITHM:
        return False, f"unsupported signature algorithm {signature.get('algorithm')!r} (expected {ALGORITHM})"
    try:
        embedded_raw = base64.b64decode(signature.get("public_key", ""), validate=True)
        value = base64.b64decode(signature.get("value", ""), validate=True)
        embedded = ed.Ed25519PublicKey.from_public_bytes(embedded_raw)
    except (binascii.Error, ValueError, TypeError):
        return False, "signature block is malformed (bad base64 public_key or value)"
    if signature.get("key_id") not in (None, key_id(embedded_raw)):
        return (
            False,
            f"key_id {signature.get('key_id')} does not match the embedded public key ({key_id(embedded_raw)})",
        )
    if public_key is not None:
        want = raw_public_bytes(public_key)
        if want != embedded_raw:
            return False, (
                f"signed by another key: signature key_id {key_id(embedded_raw)}, expected key_id {key_id(want)}"
            )
    try:
        embedded.verify(value, str(transcript_sha256).encode("ascii"))
    except (InvalidSignature, UnicodeEncodeError):
        return False, f"signature by key_id {key_id(embedded_raw)} does not verify for this transcript_sha256"
    if public_key is None:
        return True, (
            f"valid, by the embedded key {key_id(embedded_raw)} (not checked against a trusted key: pass --public-key)"
        )
    return True, f"valid, made by the given key {key_id(embedded_raw)}"


# ---------------------------------------------------------------- key generation


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically with ``mode``; fail if it exists (never overwrite)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses an existing target
        except FileExistsError:
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
        except OSError:  # file system without hard links
            if path.exists():
                raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
            os.rename(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def keygen(prefix: str | os.PathLike, passphrase: bytes | None = None) -> tuple[Path, Path, str]:
    """Make an Ed25519 key pair: ``PREFIX.key`` (PKCS#8 PEM, mode 0600) and ``PREFIX.pub`` (PEM).

    Returns ``(private_path, public_path, key_id)``. Refuses to overwrite either file.
    """
    from cryptography.hazmat.primitives import serialization

    prefix = Path(prefix)
    priv_path = prefix.with_name(prefix.name + ".key")
    pub_path = prefix.with_name(prefix.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(f"{p}: already exists; refusing to overwrite a key file")
    if not prefix.parent.is_dir():
        raise UsageError(f"{prefix.parent}: no such directory")
    key = _ed25519().Ed25519PrivateKey.generate()
    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(priv_path, priv, 0o600)
    try:
        _write_new(pub_path, pub, 0o644)
    except BaseException:
        priv_path.unlink(missing_ok=True)
        raise
    return priv_path, pub_path, key_id(key.public_key())


TRUSTED_KEYS_ENV = "AUDIOTOOLS_TRUSTED_KEYS"
_KEY_SUFFIXES = (".pub", ".pem")


def load_trusted_keys(directory: str | os.PathLike | None = None) -> list:
    """The public keys in a trusted-keys directory (every ``*.pub`` / ``*.pem`` file in it; default
    ``$AUDIOTOOLS_TRUSTED_KEYS``, none when unset). A file there that is not a key is an error."""
    d = directory if directory is not None else os.environ.get(TRUSTED_KEYS_ENV) or None
    if d is None:
        return []
    p = Path(d)
    if not p.is_dir():
        raise KeyFileError(f"{p}: trusted-keys directory not found")
    return [load_public_key(f) for f in sorted(p.iterdir()) if f.suffix.lower() in _KEY_SUFFIXES and f.is_file()]
