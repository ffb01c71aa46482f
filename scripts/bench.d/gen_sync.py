#!/usr/bin/env python3
"""Deterministic source for `scripts/bench sync`: N users as NDJSON, and a copy where a share of
them changed, with the counts of the change set a sync must find.

Every user: {"id": "u0000001", "email": "u0000001@example.com", "name": "User 1", "hash": <one
bcrypt hash, cost 4>, "groups": "staff" for 0.1% of users}. In the copy, of the P% changed users
(spread evenly): half get a new name (an attribute update), a quarter are left out (removed from
the source), a quarter are added to the group `staff` (group adds; users already in it are
skipped for this kind).
"""

import argparse
import json

# bcrypt of "password" at cost 4, made with the emulator venv's bcrypt:
# bcrypt.hashpw(b"password", bcrypt.gensalt(4)).
# Its value does not matter to the benchmark: every user routes to the BCRYPT import job.
HASH = "$2b$04$xIvbhDT6eIjWXoVp.RK.WORPdHfvJtpq46cz.rN79HZjNtt9vRRqq"


def line(i, name=None, group=False):
    uid = f"u{i:07d}"
    fields = {"id": uid, "email": f"{uid}@example.com", "name": name or f"User {i}", "hash": HASH}
    if group:
        fields["groups"] = "staff"
    return json.dumps(fields, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--changed", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--changed-out", required=True)
    ap.add_argument("--expected-out", required=True)
    a = ap.parse_args()
    step = max(1, round(100 / a.changed)) if a.changed > 0 else 0
    expected = {"updated": 0, "removed": 0, "group_adds": 0}
    with open(a.out, "w") as base, open(a.changed_out, "w") as changed:
        for i in range(1, a.users + 1):
            in_group = i % 1000 == 0
            base.write(line(i, group=in_group) + "\n")
            if step and i % step == 0:
                kind = (i // step) % 4
                if kind in (0, 1):
                    changed.write(line(i, name=f"User {i} (renamed)", group=in_group) + "\n")
                    expected["updated"] += 1
                elif kind == 2:
                    expected["removed"] += 1
                elif in_group:
                    changed.write(line(i, group=True) + "\n")
                else:
                    changed.write(line(i, group=True) + "\n")
                    expected["group_adds"] += 1
            else:
                changed.write(line(i, group=in_group) + "\n")
    with open(a.expected_out, "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
