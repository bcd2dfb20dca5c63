#!/usr/bin/env python3
"""free-ports.py N [ADDRESS]: N distinct TCP ports that can be bound on ADDRESS (default
127.0.0.1) now, space-separated. They are drawn from 20000-31999, below Linux's ephemeral range,
so that outgoing connections do not take them before the caller binds them. Used by
hack/cluster.sh, hack/real-node.sh and the e2e scripts."""
import random
import socket
import sys


def main():
    n = int(sys.argv[1])
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    out = []
    while len(out) < n:
        p = random.randrange(20000, 32000)
        if p in out:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((address, p))
        except OSError:
            continue
        finally:
            s.close()
        out.append(p)
    print(" ".join(map(str, out)))


if __name__ == "__main__":
    main()
