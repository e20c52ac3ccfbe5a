#!/usr/bin/env python3
"""Sign-up bursts against a running `gonggu serve`, with the server's memory after each.

Each burst sends COUNT sign-ups (unique emails) at CONCURRENCY at once and then reads the server's
resident memory (VmRSS) and its peak (VmHWM) from /proc. Run the server with a sign-up limit high
enough for the bursts (GONGGU_SIGNUP_LIMIT_PER_ADDR=100000), or every burst past the first is 429s.

    python3 bench/scripts/signup_burst.py --url http://127.0.0.1:18091 --pid $PID --bursts 3
"""
import argparse
import concurrent.futures
import json
import time
import urllib.error
import urllib.request
import uuid


def rss_mib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def signup(url, run):
    body = json.dumps({
        "email": f"burst-{run}-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery",
        "nickname": "burst",
    }).encode()
    req = urllib.request.Request(
        f"{url}/api/v1/auth/signup", data=body,
        headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status
    except urllib.error.HTTPError as err:
        return err.code


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--bursts", type=int, default=3)
    args = p.parse_args()
    rss, peak = rss_mib(args.pid)
    print(f"before: rss {rss:.0f} MiB, peak {peak:.0f} MiB")
    for burst in range(1, args.bursts + 1):
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            codes = list(pool.map(lambda _: signup(args.url, burst), range(args.count)))
        took = time.monotonic() - started
        time.sleep(1)
        rss, peak = rss_mib(args.pid)
        ok = sum(1 for c in codes if c == 201)
        print(f"burst {burst}: {ok}/{args.count} created in {took:.1f} s, "
              f"rss {rss:.0f} MiB, peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
