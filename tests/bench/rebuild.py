#!/usr/bin/env python3
"""Measures how long wharf takes to route COUNT routers after its dynamic file changes.

Each round: the one-route file is renamed over DIR/conf/dynamic.yml and applied;
then, at t0, the COUNT-route file is renamed over it (staged outside the watched
folder, so that only the rename is seen) and a request for the last of the COUNT
hosts is sent every 5 ms until wharf routes it (404 before, 200 after).
/api/overview is read afterwards to check that it reports COUNT routers (it is not
polled: one call costs tens of ms at COUNT routers on one worker, see
overview_call_ms). Reported per round, in ms:
  end_to_end  t0 -> the first 200 for the last host (includes the file watcher's
              100 ms debounce, YAML parsing and the build);
  loaded      t0 -> log "dynamic configuration loaded" (debounce + parsing);
  build       log "dynamic configuration loaded" -> log "configuration applied"
              (the route table build and swap; the provider throttle is 0 here).

Usage: rebuild.py WEB_PORT ADMIN_PORT DIR COUNT ROUNDS LOGFILE   (prints JSON)
"""

import http.client
import json
import os
import re
import shutil
import statistics
import sys
import time
import urllib.request
from datetime import datetime

LINE = re.compile(r"^(\S+)\s+INFO\s.*?(dynamic configuration loaded|configuration applied)(.*)$")


def routers(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview", timeout=10) as r:
        return json.load(r)["http"]["routers"]["total"]


def swap(src, d):
    stage = os.path.join(d, ".stage.yml")
    shutil.copyfile(src, stage)
    t0 = time.time()
    os.rename(stage, os.path.join(d, "conf", "dynamic.yml"))
    return t0


def status(port, host):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_status(port, host, want, timeout=30.0, period=0.005):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = status(port, host)
        if got == want:
            return time.time()
        time.sleep(period)
    raise SystemExit(f"{host} still answers {got}, expected {want}")


def log_events(path):
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.strip())
            if m:
                ts = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
                events.append((ts, m.group(2), m.group(3).strip()))
    return events


def main():
    web, port, d, count, rounds, logfile = (
        int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
        sys.argv[6])
    one, many = os.path.join(d, "one.yml"), os.path.join(d, "many.yml")
    last = f"h{count}.bench.test"
    out = {"rounds": []}
    for _ in range(rounds):
        swap(one, d)
        wait_status(web, last, 404)
        time.sleep(1.0)
        t0 = swap(many, d)
        t1 = wait_status(web, last, 200)
        n = routers(port)
        time.sleep(0.2)
        loaded = applied = None
        for ts, what, rest in log_events(logfile):
            if ts < t0 - 0.001:
                continue
            if what == "dynamic configuration loaded" and loaded is None:
                loaded = ts
            elif what == "configuration applied" and loaded is not None and applied is None:
                applied = ts
        r = {"end_to_end_ms": round((t1 - t0) * 1000, 1), "routers": n}
        if loaded and applied:
            r["loaded_ms"] = round((loaded - t0) * 1000, 1)
            r["build_ms"] = round((applied - loaded) * 1000, 1)
        out["rounds"].append(r)
    # The cost of one /api/overview call with COUNT routers (the poll's own cost).
    t = time.time()
    for _ in range(5):
        routers(port)
    out["overview_call_ms"] = round((time.time() - t) / 5 * 1000, 1)
    for key in ("end_to_end_ms", "loaded_ms", "build_ms"):
        values = [r[key] for r in out["rounds"] if key in r]
        if values:
            out["median_" + key] = round(statistics.median(values), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
