#!/usr/bin/env python3
"""Baseline for `scripts/bench admin_create`: boto3 creating users with AdminCreateUser from N
threads (default 8), as a plain script would, against the same emulator in the same run.

    admin_create_baseline.py --endpoint URL --pool-id ID --input users.csv [--threads 8]

Reads the CSV the benchmark writes (username,email,verified,name,active,roles), creates each user
with MessageAction=SUPPRESS and the same attributes as the tool, and prints one JSON line:
{"users": N, "created": N, "errors": N, "seconds": S, "rate": R}. Retries are boto3's standard mode.
"""

import argparse
import csv
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool-id", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--threads", type=int, default=8)
    a = p.parse_args()
    with open(a.input, newline="") as f:
        rows = list(csv.DictReader(f))
    local = threading.local()
    cfg = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=a.threads)

    def client():
        if not hasattr(local, "c"):
            local.c = boto3.session.Session().client(
                "cognito-idp", endpoint_url=a.endpoint, region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
        return local.c

    def create(row) -> bool:
        try:
            client().admin_create_user(
                UserPoolId=a.pool_id, Username=row["username"], MessageAction="SUPPRESS",
                UserAttributes=[
                    {"Name": "email", "Value": row["email"].lower()},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": "name", "Value": row["name"]},
                ])
            return True
        except Exception:  # noqa: BLE001 - counted, not raised
            return False

    t = time.monotonic()
    with ThreadPoolExecutor(a.threads) as ex:
        results = list(ex.map(create, rows))
    seconds = time.monotonic() - t
    created = sum(results)
    print(json.dumps({"users": len(rows), "created": created, "errors": len(rows) - created,
                      "seconds": seconds, "rate": created / seconds if seconds else 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
