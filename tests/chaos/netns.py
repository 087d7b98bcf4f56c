"""Network namespaces by name (`ip netns add` makes /var/run/netns/<name>)."""
import ctypes
import os

CLONE_NEWNET = 0x40000000


def enter_namespace(ns):
    """Moves the calling thread into network namespace `ns`; what it opens or starts from then on
    lives there."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns})")
    finally:
        os.close(fd)
