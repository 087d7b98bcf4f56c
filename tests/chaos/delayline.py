#!/usr/bin/python3
"""A delay line for one namespace's outgoing packets, for kernels without sch_netem.

netem's `delay` holds each packet a node sends for a while before it reaches the wire. This does the
same in user space: a TUN device in the node's namespace takes the routes to the given peers (a /32
each, more specific than the link's own route), this process holds every packet it reads there for
the delay, then writes it into a second TUN device in the namespace that owns the bridge, which
forwards it to the peer as if it had come over the node's link. Replies come back over the link
untouched, as with netem on one interface.

Packets leave in the order they came (jitter never reorders them, unlike netem's). Stopping the
process (SIGTERM) closes both devices; the kernel removes them and their routes, and the node's
traffic takes its link again.

usage: delayline.py NODE_NS NODE_IP BRIDGE_NS DELAY_MS JITTER_MS PEER_IP...
"""
import collections
import fcntl
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

from netns import enter_namespace

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    """Opens a TUN device in the calling thread's network namespace; it lives while the fd does."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    return fd


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    node_ns, node_ip, bridge_ns = argv[0], argv[1], argv[2]
    delay, jitter = float(argv[3]) / 1000.0, float(argv[4]) / 1000.0
    peers = argv[5:]

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    # The bridge side first, so that nothing is routed into the node's TUN before it can leave.
    enter_namespace(bridge_ns)
    exit_name = f"dly{os.getpid() % 100000}"
    exit_fd = open_tun(exit_name)
    # Packets from the node arrive on this device with a source the bridge routes elsewhere: reverse
    # path filtering would drop them, and the bridge namespace must forward them on.
    for key in ("all", exit_name):
        subprocess.run(["sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0"], check=True)
    subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)

    enter_namespace(node_ns)
    entry_fd = open_tun("dly0")
    for peer in peers:
        subprocess.run(["ip", "route", "replace", f"{peer}/32", "dev", "dly0", "src", node_ip],
                       check=True)
    os.set_blocking(entry_fd, False)
    print(f"delaying {node_ns}'s packets to {', '.join(peers)} by {argv[3]} ± {argv[4]} ms",
          flush=True)

    held = collections.deque()  # (due, packet), due never decreasing
    while not stopping:
        timeout = 0.2
        if held:
            timeout = max(0.0, held[0][0] - time.monotonic())
        try:
            readable, _, _ = select.select([entry_fd], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        if readable:
            while True:
                try:
                    packet = os.read(entry_fd, 65536)
                except BlockingIOError:
                    break
                due = now + delay + random.uniform(-jitter, jitter)
                if held and due < held[-1][0]:
                    due = held[-1][0]
                held.append((due, packet))
        while held and held[0][0] <= now:
            try:
                os.write(exit_fd, held.popleft()[1])
            except OSError:
                pass  # the bridge namespace refused one packet (e.g. no route): a packet lost
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
