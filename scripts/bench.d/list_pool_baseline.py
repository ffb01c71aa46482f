#!/usr/bin/env python3
"""The obvious baseline of `scripts/bench sync_list`: list a pool with boto3's ListUsers paginator
(one chain, 60 users a page, boto3's standard retry mode for throttling) and compare every user
with the source file, as a hand-written reconcile script would. Prints one JSON object with the
same fields as examples/bench_list.rs.

    list_pool_baseline.py --endpoint URL --pool-id ID --source users.csv
"""

import argparse
import csv
import json
import time

import boto3
from botocore.config import Config


def main() -> None:
    wall = time.monotonic()
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool-id", required=True)
    p.add_argument("--source", required=True)
    a = p.parse_args()
    with open(a.source, newline="") as f:
        want = {row["username"]: (row["email"], row["name"]) for row in csv.DictReader(f)}
    cognito = boto3.client(
        "cognito-idp", endpoint_url=a.endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )
    same = differ = only_pool = users = pages = 0
    start = time.monotonic()
    for page in cognito.get_paginator("list_users").paginate(
            UserPoolId=a.pool_id, PaginationConfig={"PageSize": 60}):
        pages += 1
        for user in page["Users"]:
            users += 1
            attrs = {x["Name"]: x["Value"] for x in user.get("Attributes", [])}
            expected = want.pop(user["Username"], None)
            if expected is None:
                only_pool += 1
            elif (attrs.get("email"), attrs.get("name")) == expected:
                same += 1
            else:
                differ += 1
    secs = time.monotonic() - start
    print(json.dumps({
        "users": users, "received": users, "pages": pages, "list_seconds": secs,
        "pages_per_second": pages / secs, "same": same, "differ": differ,
        "only_in_pool": only_pool, "only_in_source": len(want),
        "wall_seconds": time.monotonic() - wall,
    }))


if __name__ == "__main__":
    main()
