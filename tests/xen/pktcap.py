#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# In dom0: log the frames a guest sends, as seen on a bridge (i.e. after
# tiber's output buffering released them).  usage: pktcap.py IFACE MAC
# One line per frame from MAC, flushed at once:
#   BOOTTIME_S KIND SEQ      KIND: icmp4 / icmp6 (echo request, SEQ =
#                            its sequence number), arp (SEQ 0), other
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def classify(f):
    if len(f) < 14:
        return 'other', 0
    etype = struct.unpack('!H', f[12:14])[0]
    p = f[14:]
    if etype == 0x0800 and len(p) >= 28 and p[9] == 1:
        ihl = (p[0] & 0xf) * 4
        if len(p) >= ihl + 8 and p[ihl] == 8:
            return 'icmp4', struct.unpack('!H', p[ihl + 6:ihl + 8])[0]
    if etype == 0x86dd and len(p) >= 48 and p[6] == 58 and p[40] == 128:
        return 'icmp6', struct.unpack('!H', p[46:48])[0]
    if etype == 0x0806:
        return 'arp', 0
    return 'other', 0


def main():
    iface, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', ''))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                      socket.htons(ETH_P_ALL))
    # a release is a burst: room for thousands of frames (SO_RCVBUFFORCE,
    # root) so that none is lost here while python is slow
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
    s.bind((iface, 0))
    out = sys.stdout
    while True:
        f, addr = s.recvfrom(65536)
        if f[6:12] != mac or addr[2] == socket.PACKET_OUTGOING:
            continue
        kind, seq = classify(f)
        out.write('%.6f %s %d\n' % (time.clock_gettime(time.CLOCK_BOOTTIME),
                                    kind, seq))
        out.flush()


if __name__ == '__main__':
    main()
