#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Split-brain observer of the fault campaign (test_split_brain.sh).

Independent of the daemons: one client per guest (the primary's KV
service at A, the restored guest's at B, both unix sockets) sends
"INCR obs" continuously and records every reply the guest released, with
its arrival time.  Until STOPFILE exists.  Then it checks:
  two-released  a reply from A arrived after B had released one: two
                guests were releasing output at the same time;
  lost-reply    B's first value is not above every value A released: a
                reply a client received is missing from the survivor.
Creates STOPFILE.A (.B) at the first reply from A (B), so a test can
inject its fault only once A is observed answering.  Prints one line "observer: a=N b=M max_a=X first_b=Y violations=V [..]"
and exits 1 if V > 0.
"""
import os
import select
import socket
import sys
import threading
import time


class Prober(threading.Thread):
    def __init__(self, name, path, cid, stopfile):
        super().__init__(daemon=True)
        self.name, self.path, self.cid, self.stopfile = name, path, cid, stopfile
        self.replies = []  # (monotonic time, value)

    def run(self):
        seq, sock, buf = 1, None, b""
        sent = False
        while not os.path.exists(self.stopfile):
            if sock is None:
                try:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.connect(self.path)
                    buf, sent = b"", False
                except OSError:
                    sock = None
                    time.sleep(0.02)
                    continue
            try:
                if not sent:
                    sock.sendall(b"%d %d INCR obs\n" % (self.cid, seq))
                    sent = True
                r, _, _ = select.select([sock], [], [], 0.2)
                if not r:
                    continue  # held by the output gate: keep waiting
                data = sock.recv(4096)
                if not data:
                    raise OSError("closed")
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    f = line.decode().split()
                    if len(f) >= 4 and f[2] == "OK" and int(f[1]) == seq:
                        self.replies.append((time.monotonic(), int(f[3])))
                        if len(self.replies) == 1:
                            open(self.stopfile + "." + self.name, "w").close()
                        seq += 1
                        sent = False
            except OSError:
                if sock:
                    sock.close()
                sock = None  # reconnect; the same seq is re-sent
                time.sleep(0.02)


def main():
    a_path, b_path, stopfile = sys.argv[1:4]
    base = (os.getpid() & 0xFFFF) * 16 + 1000000
    a = Prober("A", a_path, base + 1, stopfile)
    b = Prober("B", b_path, base + 2, stopfile)
    a.start()
    b.start()
    while not os.path.exists(stopfile):
        time.sleep(0.05)
    a.join(2)
    b.join(2)
    ra, rb = list(a.replies), list(b.replies)
    why = []
    max_a = max((v for _, v in ra), default=0)
    first_b = rb[0][1] if rb else None
    if rb:
        t_b = rb[0][0]
        late = [v for t, v in ra if t > t_b]
        if late:
            why.append("two-released(%d A replies after B's first)" % len(late))
        if first_b <= max_a:
            why.append("lost-reply(first B value %d <= A's %d)" % (first_b, max_a))
    print("observer: a=%d b=%d max_a=%d first_b=%s violations=%d %s"
          % (len(ra), len(rb), max_a, first_b, len(why), " ".join(why)))
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
