#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""INCR a key of the simulated guest's KV service and print the new value.

    kv_incr.py SOCKET CLIENT SEQ KEY [RETRY_SECS]

One request "CLIENT SEQ INCR KEY" on the guest's unix socket; the reply
must be "CLIENT SEQ OK VALUE".  With RETRY_SECS, connection errors and
timeouts are retried with the same SEQ until then (the guest answers a
retry from its dedup record, so a retry never counts twice); an ERR reply
is never retried: the guest's state lost an acknowledged request.
"""
import socket
import sys
import time


def once(path, req, timeout):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(req)
        return s.recv(100).split()
    finally:
        s.close()


def main():
    path, client, seq, key = sys.argv[1:5]
    retry = float(sys.argv[5]) if len(sys.argv) > 5 else 0
    req = ("%s %s INCR %s\n" % (client, seq, key)).encode()
    want = [client.encode(), seq.encode()]
    end = time.time() + retry
    while True:
        try:
            f = once(path, req, 3 if retry else 5)
            if f[:2] == want and f[2:3] == [b"OK"] and len(f) > 3:
                print(int(f[3]))
                return 0
            if f[:2] == want and f[2:3] == [b"ERR"]:
                return "the guest answered %r: its state lost an acknowledged request" % b" ".join(f)
            if not retry:
                return "unexpected reply %r" % f
        except OSError as e:
            if not retry:
                return "no KV reply: %s" % e
        if time.time() > end:
            return "no KV reply in %g s" % retry
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
