#!/usr/bin/env python3
"""Offline test of the emulator's strict ``password_hash`` notations (``hashes.parse_import_hash``
with a notation, the ``import_hash_notations`` knob), against the reference strings in
``tests/fixtures/passwords/notations.json`` (made by passlib, argon2-cffi, bcrypt and hashlib).

    .venv/bin/python tests/emulator/notations_test.py

Why this file exists: the preflight canary's fallback is only tested if the emulator, told to
accept one notation, accepts exactly that one: each vector's string in its own notation must
parse and verify the password, and in every other notation it must be refused or fail to verify
(a hex string is valid base64 text, so the default notation takes it and then the password does
not verify, as a real pool that stored it literally would). Ends with ``N passed, M failed``.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import hashes  # noqa: E402


def main() -> int:
    path = os.path.join(HERE, "..", "fixtures", "passwords", "notations.json")
    with open(path) as f:
        data = json.load(f)
    password = data["password"]
    passed = failed = 0
    for vector in data["vectors"]:
        algorithm = vector["algorithm"]
        assert set(vector["notations"]) == set(hashes.NOTATIONS[algorithm]), algorithm
        for written, text in vector["notations"].items():
            for accepted in hashes.NOTATIONS[algorithm]:
                try:
                    parsed = hashes.parse_import_hash(algorithm, text, accepted)
                    verifies = hashes.verify_password(parsed, password)
                except hashes.InvalidHash:
                    verifies = False
                want = written == accepted
                if verifies == want:
                    passed += 1
                else:
                    failed += 1
                    print(f"FAIL {algorithm}: {written} string, {accepted} accepted: verifies={verifies}")
            # Without a configured notation the lenient default still reads the usual forms.
            if written in ("phc", "mcf", "phc-no-length", "passlib"):
                parsed = hashes.parse_import_hash(algorithm, text)
                if hashes.verify_password(parsed, password):
                    passed += 1
                else:
                    failed += 1
                    print(f"FAIL {algorithm}: {written} not read without a notation")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
