#!/usr/bin/env python3
"""Print the kernel's PACKET_STATISTICS of every AF_PACKET socket of a process, summed, as JSON.

   python3 bench/lib/packet-stats.py PID   ->   {"packets": N, "drops": D, "sockets": S}

libpcap's capture ring is a packet socket; the kernel counts what it delivered to it and what it
dropped because the ring was full (the "pcap drops" libpcap's pcap_stats() would report). cap
(knockgate's binding) exposes no pcap_stats() and fwknopd and knockd never call it, so the benchmark
reads the counters from outside: pidfd_getfd() (Linux >= 5.6, root) duplicates the daemon's socket
into this process and getsockopt(SOL_PACKET, PACKET_STATISTICS) reads them. The kernel resets them
on every read: read before and after a flood.
"""
import ctypes
import json
import os
import socket
import struct
import sys

SYS_PIDFD_GETFD = 438
SOL_PACKET = 263
PACKET_STATISTICS = 6


def main() -> None:
    pid = int(sys.argv[1])
    with open(f"/proc/{pid}/net/packet") as f:
        inodes = {line.split()[-1] for line in f.readlines()[1:]}
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            fds.append(int(fd))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = os.pidfd_open(pid)
    packets = drops = 0
    try:
        for target in fds:
            local = libc.syscall(SYS_PIDFD_GETFD, pidfd, target, 0)
            if local < 0:
                raise OSError(ctypes.get_errno(), f"pidfd_getfd({pid}, {target})")
            s = socket.socket(fileno=local)
            try:
                raw = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
                p, d = struct.unpack_from("II", raw)
                packets += p
                drops += d
            finally:
                s.close()
    finally:
        os.close(pidfd)
    print(json.dumps({"packets": packets, "drops": drops, "sockets": len(fds)}))


if __name__ == "__main__":
    main()
