#!/usr/bin/env python3
"""Impairment shuttle of Salon's NAT test bed: a user-space stand-in for `tc netem`
(which this kernel lacks).

    shuttle.py ROUTER_TAP MEMBER_TAP SEED

Run inside a home router's network namespace. Creates two TAP devices there and copies
Ethernet frames between them, delaying, jittering, dropping and reordering each direction
on its own. The bed moves MEMBER_TAP into the member's namespace, so the member's link to
its router runs through this process.

Prints "ready" once both devices exist. Each line on stdin sets the shape of both
directions, eight numbers:

    UP_DELAY UP_JITTER UP_LOSS UP_REORDER DOWN_DELAY DOWN_JITTER DOWN_LOSS DOWN_REORDER

delay and jitter in milliseconds (each frame waits delay +- a uniform jitter), loss and
reorder in percent (a reordered frame skips the delay and overtakes those waiting). "up" is
member -> router. Exits when stdin closes, so a test that dies takes its shuttles along.
"""
import fcntl
import heapq
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    router_tap, member_tap, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    up_fd, down_fd = open_tap(member_tap), open_tap(router_tap)
    # Frames read from a device go out of the other; the shape is the direction's.
    dest = {up_fd: down_fd, down_fd: up_fd}
    shape = {up_fd: (0.0, 0.0, 0.0, 0.0), down_fd: (0.0, 0.0, 0.0, 0.0)}
    counts = {"up": [0, 0], "down": [0, 0]}  # [forwarded, dropped]
    stdin = sys.stdin.fileno()
    print("ready", flush=True)
    due = []  # (time, sequence, device, frame)
    seq = 0
    buf = b""
    while True:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, fd, frame = heapq.heappop(due)
            send(fd, frame)
        timeout = max(0.0, due[0][0] - now) if due else None
        readable, _, _ = select.select([up_fd, down_fd, stdin], [], [], timeout)
        for fd in readable:
            if fd == stdin:
                data = os.read(stdin, 4096)
                if not data:
                    sys.stderr.write(f"shuttle {member_tap}: {counts}\n")
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    v = [float(x) for x in line.split()]
                    if len(v) == 8:
                        shape[up_fd], shape[down_fd] = tuple(v[:4]), tuple(v[4:])
                continue
            try:
                frame = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return  # the device is gone: the bed tore the link down
            delay, jitter, loss, reorder = shape[fd]
            count = counts["up" if fd == up_fd else "down"]
            if rng.random() * 100 < loss:
                count[1] += 1
                continue
            count[0] += 1
            wait = max(0.0, delay + rng.uniform(-jitter, jitter))
            if wait <= 0 or rng.random() * 100 < reorder:
                send(dest[fd], frame)
            else:
                seq += 1
                heapq.heappush(due, (time.monotonic() + wait / 1000, seq, dest[fd], frame))


def send(fd, frame):
    try:
        os.write(fd, frame)
    except OSError:
        pass  # device down or full: the frame is lost, as on a wire


if __name__ == "__main__":
    main()
