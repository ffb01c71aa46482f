"""Password hashes in user import jobs: which strings the emulator accepts, Cognito's cost caps, and
verifying a password against an imported hash with reference libraries.

Why this module exists: cognito-migrate converts legacy password hashes into the form a Cognito
import job with ``PasswordHashingAlgorithm`` takes. The emulator must (1) accept or refuse a row's
``password_hash`` the way Cognito would and (2) let a test sign in with the known password, so that
an *independent* implementation (pyca/bcrypt, argon2-cffi, hashlib) proves the converted hash
verifies it.

The exact encodings are the project's documented assumption until AWS's page "Importing users with
password hashes" is confirmed. All of them live in ONE function, :func:`parse_import_hash`, so they
are easy to change:

* BCRYPT: modular crypt ``$2a$``/``$2b$``/``$2y$`` + 2-digit cost + ``$`` + 53 characters of bcrypt's
  base64 (22 salt + 31 hash).
* ARGON2ID: PHC ``$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<b64 salt>$<b64 hash>``.
* PBKDF2_SHA256: PHC ``$pbkdf2-sha256$i=<iterations>,l=<key length>$<b64 salt>$<b64 hash>`` (``l``
  optional; standard base64 without padding, as PHC), and passlib's
  ``$pbkdf2-sha256$<iterations>$<ab64 salt>$<ab64 hash>`` (``.`` instead of ``+``).
* SCRYPT: PHC ``$scrypt$ln=<log2 N>,r=<r>,p=<p>$<b64 salt>$<b64 hash>``.

Strict notations (the ``import_hash_notations`` knob, ``--hash-notation ALG=NOTATION``): when a
notation is configured for an algorithm, ONLY that notation is accepted for it, so that
cognito-migrate's preflight hash canary can be tested in both outcomes (its first notation
accepted, or refused and a fallback found). The names are those of ``Notation`` in
``src/password/cognito.rs``: ``mcf`` (bcrypt), ``phc`` (standard base64 without padding, PBKDF2
with ``l=``, argon2 with ``v=19``), ``phc-no-length`` (PBKDF2 without ``l=``), ``phc-no-version``
(argon2id without ``v=``), ``passlib`` (PBKDF2 in passlib's form), ``phc-padded`` (base64 with
``=`` padding), ``phc-urlsafe`` (URL-safe base64 without padding), ``phc-hex`` (lowercase hex).

The salt used by the KDF is the *decoded* salt bytes. Cognito's caps (from AWS documentation):
bcrypt cost <= 12; argon2id m <= 19456, t <= 2, p <= 1; PBKDF2-SHA256 <= 600,000 iterations;
scrypt N <= 65536, r <= 8, p <= 1. Messages never contain the hash itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field

ALGORITHMS = ("BCRYPT", "SCRYPT", "ARGON2ID", "PBKDF2_SHA256")

# The notations each algorithm can be written in (``import_hash_notations`` picks one).
NOTATIONS = {
    "BCRYPT": ("mcf",),
    "ARGON2ID": ("phc", "phc-no-version", "phc-padded", "phc-urlsafe", "phc-hex"),
    "PBKDF2_SHA256": ("phc", "phc-no-length", "passlib", "phc-padded", "phc-urlsafe", "phc-hex"),
    "SCRYPT": ("phc", "phc-padded", "phc-urlsafe", "phc-hex"),
}

# Cognito's documented caps.
BCRYPT_MAX_COST = 12
ARGON2_MAX_MEMORY_KIB = 19456
ARGON2_MAX_TIME = 2
ARGON2_MAX_PARALLELISM = 1
PBKDF2_MAX_ITERATIONS = 600_000
SCRYPT_MAX_N = 65536
SCRYPT_MAX_R = 8
SCRYPT_MAX_P = 1


class InvalidHash(ValueError):
    """The string is not a hash of the job's algorithm in an accepted encoding, or exceeds a cap.

    ``str(error)`` is safe to log: it never contains the hash."""


@dataclass(frozen=True)
class ImportedHash:
    """A parsed ``password_hash``: everything needed to verify a password, nothing else."""

    algorithm: str
    params: dict = field(default_factory=dict)
    salt: bytes = b""
    digest: bytes = b""
    # bcrypt and argon2 are verified by their libraries from the encoded string itself.
    encoded: str = ""

    def __repr__(self) -> str:  # keep hashes out of logs and tracebacks
        return f"ImportedHash({self.algorithm}, {self.params})"


_B64_STD = re.compile(r"^[A-Za-z0-9+/]+$")
_B64_AB64 = re.compile(r"^[A-Za-z0-9./]+$")
_BCRYPT = re.compile(r"^\$(2[aby])\$(\d{2})\$([./A-Za-z0-9]{53})$")
_PHC = re.compile(r"^\$([a-z0-9-]+)\$(?:v=(\d+)\$)?([^$]*)\$([^$]+)\$([^$]+)$")
_PASSLIB_PBKDF2 = re.compile(r"^\$pbkdf2-sha256\$(\d+)\$([./A-Za-z0-9]+)\$([./A-Za-z0-9]+)$")


def _b64decode(text: str, what: str, alphabet: str = "std") -> bytes:
    pattern = _B64_STD if alphabet == "std" else _B64_AB64
    if not pattern.match(text) or len(text) % 4 == 1:
        raise InvalidHash(f"the {what} is not unpadded base64")
    if alphabet == "ab64":
        text = text.replace(".", "+")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidHash(f"the {what} is not unpadded base64") from None


def _phc_params(text: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
    params: dict[str, int] = {}
    for item in text.split(",") if text else []:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed or key in params or not value.isdigit():
            raise InvalidHash("unexpected parameters")
        params[key] = int(value)
    missing = [key for key in required if key not in params]
    if missing:
        raise InvalidHash(f"missing parameter(s) {', '.join(missing)}")
    return params


_STRICT_FIELD = {
    "phc": (re.compile(r"^[A-Za-z0-9+/]+$"), "unpadded standard base64"),
    "phc-no-length": (re.compile(r"^[A-Za-z0-9+/]+$"), "unpadded standard base64"),
    "phc-no-version": (re.compile(r"^[A-Za-z0-9+/]+$"), "unpadded standard base64"),
    "phc-padded": (re.compile(r"^[A-Za-z0-9+/]+={0,2}$"), "padded standard base64"),
    "phc-urlsafe": (re.compile(r"^[A-Za-z0-9_-]+$"), "unpadded URL-safe base64"),
    "phc-hex": (re.compile(r"^(?:[0-9a-f]{2})+$"), "lowercase hex"),
}


def _strict_field(text: str, what: str, notation: str) -> bytes:
    pattern, name = _STRICT_FIELD[notation]
    if not pattern.match(text):
        raise InvalidHash(f"the {what} is not {name} ({notation} notation)")
    if notation == "phc-hex":
        return bytes.fromhex(text)
    if notation == "phc-padded":
        if len(text) % 4:
            raise InvalidHash(f"the {what} is not {name} ({notation} notation)")
        return base64.b64decode(text, validate=True)
    if len(text) % 4 == 1:
        raise InvalidHash(f"the {what} is not {name} ({notation} notation)")
    padded = text + "=" * (-len(text) % 4)
    if notation == "phc-urlsafe":
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded, validate=True)


def _strict_phc(algorithm: str, s: str, notation: str) -> str:
    """Rewrites a hash in a configured notation into the lenient default form (PHC, unpadded
    standard base64, with ``l=``/``v=19``), refusing anything else written in another notation."""
    wrong = InvalidHash(f"not a {algorithm} hash in the {notation} notation")
    if notation == "mcf" or notation == "passlib":
        if notation == "passlib" and not _PASSLIB_PBKDF2.match(s):
            raise wrong
        return s
    match = _PHC.match(s)
    if not match:
        raise wrong
    ident, version, params, salt, digest = match.groups()
    names = [item.partition("=")[0] for item in params.split(",")] if params else []
    if algorithm == "PBKDF2_SHA256" and ("l" in names) == (notation == "phc-no-length"):
        raise wrong
    if algorithm == "ARGON2ID" and (version is None) != (notation == "phc-no-version"):
        raise wrong
    salt_bytes = _strict_field(salt, "salt", notation)
    digest_bytes = _strict_field(digest, "hash", notation)
    if algorithm == "ARGON2ID" and version is None:
        version = "19"
    nopad = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    version_field = f"v={version}$" if version is not None else ""
    return f"${ident}${version_field}{params}${nopad(salt_bytes)}${nopad(digest_bytes)}"


def parse_import_hash(algorithm: str, s: str, notation: str | None = None) -> ImportedHash:
    """Parses the ``password_hash`` value of a row of an import job created with ``algorithm``.

    With ``notation`` (the ``import_hash_notations`` knob), only that notation is accepted.
    Raises :class:`InvalidHash` when the string is not in an accepted encoding of that algorithm or
    exceeds Cognito's caps. This is the single place that defines the accepted formats."""
    if algorithm not in ALGORITHMS:
        raise InvalidHash(f"unknown algorithm {algorithm}")
    s = s.strip()
    if notation is not None:
        if notation not in NOTATIONS[algorithm]:
            raise InvalidHash(f"the notation {notation} cannot write {algorithm} hashes")
        s = _strict_phc(algorithm, s, notation)

    if algorithm == "BCRYPT":
        match = _BCRYPT.match(s)
        if not match:
            raise InvalidHash("not a bcrypt hash ($2a$/$2b$/$2y$, 2-digit cost, 53 characters)")
        cost = int(match.group(2))
        if not 4 <= cost <= 31:
            raise InvalidHash(f"bcrypt cost {cost} is out of range")
        if cost > BCRYPT_MAX_COST:
            raise InvalidHash(f"bcrypt cost {cost} exceeds Cognito's maximum of {BCRYPT_MAX_COST}")
        return ImportedHash("BCRYPT", {"variant": match.group(1), "cost": cost}, encoded=s)

    if algorithm == "PBKDF2_SHA256":
        passlib = _PASSLIB_PBKDF2.match(s)
        if passlib:
            iterations = int(passlib.group(1))
            salt = _b64decode(passlib.group(2), "salt", "ab64")
            digest = _b64decode(passlib.group(3), "hash", "ab64")
            params = {"i": iterations, "l": len(digest)}
        else:
            match = _PHC.match(s)
            if not match or match.group(1) != "pbkdf2-sha256" or match.group(2) is not None:
                raise InvalidHash("not a $pbkdf2-sha256$ hash")
            params = _phc_params(match.group(3), ("i", "l"), ("i",))
            salt = _b64decode(match.group(4), "salt")
            digest = _b64decode(match.group(5), "hash")
            if "l" in params and params["l"] != len(digest):
                raise InvalidHash("the hash length does not match parameter l")
            params.setdefault("l", len(digest))
        if params["i"] < 1:
            raise InvalidHash("PBKDF2 iterations must be at least 1")
        if params["i"] > PBKDF2_MAX_ITERATIONS:
            raise InvalidHash(
                f"PBKDF2 iterations {params['i']} exceed Cognito's maximum of {PBKDF2_MAX_ITERATIONS}"
            )
        if not salt or len(digest) < 16:
            raise InvalidHash("the salt is empty or the hash is shorter than 16 bytes")
        return ImportedHash("PBKDF2_SHA256", params, salt=salt, digest=digest)

    match = _PHC.match(s)
    if algorithm == "ARGON2ID":
        if not match or match.group(1) != "argon2id":
            raise InvalidHash("not a $argon2id$ PHC hash")
        if match.group(2) != "19":
            raise InvalidHash("only argon2 version 19 (v=19) is accepted")
        params = _phc_params(match.group(3), ("m", "t", "p"), ("m", "t", "p"))
        salt = _b64decode(match.group(4), "salt")
        digest = _b64decode(match.group(5), "hash")
        if len(salt) < 8 or len(digest) < 4 or params["t"] < 1 or params["p"] < 1:
            raise InvalidHash("argon2 parameters are out of range")
        if params["m"] < 8 * params["p"]:
            raise InvalidHash("argon2 memory must be at least 8 KiB per lane")
        if (
            params["m"] > ARGON2_MAX_MEMORY_KIB
            or params["t"] > ARGON2_MAX_TIME
            or params["p"] > ARGON2_MAX_PARALLELISM
        ):
            raise InvalidHash(
                f"argon2id parameters m={params['m']},t={params['t']},p={params['p']} exceed "
                f"Cognito's maximum of m={ARGON2_MAX_MEMORY_KIB},t={ARGON2_MAX_TIME},"
                f"p={ARGON2_MAX_PARALLELISM}"
            )
        return ImportedHash("ARGON2ID", params, salt=salt, digest=digest, encoded=s)

    # SCRYPT
    if not match or match.group(1) != "scrypt" or match.group(2) is not None:
        raise InvalidHash("not a $scrypt$ PHC hash")
    params = _phc_params(match.group(3), ("ln", "r", "p"), ("ln", "r", "p"))
    salt = _b64decode(match.group(4), "salt")
    digest = _b64decode(match.group(5), "hash")
    if not 1 <= params["ln"] <= 63 or params["r"] < 1 or params["p"] < 1 or not salt:
        raise InvalidHash("scrypt parameters are out of range")
    n = 1 << params["ln"]
    if n > SCRYPT_MAX_N or params["r"] > SCRYPT_MAX_R or params["p"] > SCRYPT_MAX_P:
        raise InvalidHash(
            f"scrypt parameters N={n},r={params['r']},p={params['p']} exceed Cognito's maximum of "
            f"N={SCRYPT_MAX_N},r={SCRYPT_MAX_R},p={SCRYPT_MAX_P}"
        )
    if len(digest) < 16:
        raise InvalidHash("the scrypt hash is shorter than 16 bytes")
    return ImportedHash("SCRYPT", {**params, "n": n}, salt=salt, digest=digest)


def verify_password(imported: ImportedHash, password: str) -> bool:
    """True when ``password`` (UTF-8) matches ``imported``, checked by the reference libraries."""
    secret = password.encode("utf-8")
    if imported.algorithm == "BCRYPT":
        import bcrypt

        # bcrypt only ever uses the first 72 bytes; pyca/bcrypt 5 refuses longer input instead.
        return bcrypt.checkpw(secret[:72], imported.encoded.encode("ascii"))
    if imported.algorithm == "ARGON2ID":
        from argon2 import exceptions, low_level

        try:
            return low_level.verify_secret(
                imported.encoded.encode("ascii"), secret, low_level.Type.ID
            )
        except exceptions.VerificationError:
            return False
    if imported.algorithm == "PBKDF2_SHA256":
        derived = hashlib.pbkdf2_hmac(
            "sha256", secret, imported.salt, imported.params["i"], dklen=len(imported.digest)
        )
        return hmac.compare_digest(derived, imported.digest)
    if imported.algorithm == "SCRYPT":
        p = imported.params
        derived = hashlib.scrypt(
            secret,
            salt=imported.salt,
            n=p["n"],
            r=p["r"],
            p=p["p"],
            maxmem=256 * 1024 * 1024,
            dklen=len(imported.digest),
        )
        return hmac.compare_digest(derived, imported.digest)
    return False
