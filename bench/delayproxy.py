#!/usr/bin/python3
"""A TCP proxy that adds round-trip time, and counts SMB messages.

    delayproxy.py --rtt-ms 20 --targets HOSTLIST --listen-file OUT [--stats FILE]

The kernel here has no netem qdisc, so WAN latency for the benchmark comes
from user space: for every line `host:port` of HOSTLIST the proxy listens on
a port of its own (127.0.0.1, chosen by the kernel) and forwards each
connection to that target. Every chunk read from either side is held for
RTT/2 before it is written to the other, in order, so each SMB request and
its response together pay one RTT, as across a WAN.

It also counts, per target, the SMB messages in each direction by following
the 4-byte NetBIOS session framing (a zero type byte, then a 24-bit length;
one frame is one SMB2 message or compound). Client-to-server frames are
the honest figure for "SMB round trips" on the wire: they include the
negotiate, session setup, tree connect and log-off that a client's own
counters do not see.

OUT gets one `127.0.0.1:PORT` line per target, in the order of HOSTLIST,
once every port listens. On SIGUSR1 the counters (cumulative) are written
as JSON to --stats (atomically, by rename); SIGTERM / SIGINT stop it.
"""

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import sys


class Counter:
    __slots__ = ("connections", "c2s_frames", "s2c_frames", "c2s_bytes", "s2c_bytes")

    def __init__(self):
        self.connections = 0
        self.c2s_frames = 0
        self.s2c_frames = 0
        self.c2s_bytes = 0
        self.s2c_bytes = 0


class FrameCounter:
    """Follows NetBIOS session framing across arbitrary chunk boundaries."""

    __slots__ = ("header", "remaining", "frames")

    def __init__(self):
        self.header = b""
        self.remaining = 0
        self.frames = 0

    def feed(self, data):
        i, n = 0, len(data)
        while i < n:
            if self.remaining:
                step = min(self.remaining, n - i)
                self.remaining -= step
                i += step
                continue
            need = 4 - len(self.header)
            self.header += data[i:i + need]
            i += need
            if len(self.header) == 4:
                kind = self.header[0]
                length = int.from_bytes(self.header[1:4], "big")
                self.header = b""
                self.remaining = length
                if kind == 0:           # session message (not a keepalive)
                    self.frames += 1


class Direction:
    """Writes chunks to `transport` RTT/2 after they were read, in order."""

    __slots__ = ("loop", "delay", "transport", "queue", "timer", "eof", "closed")

    def __init__(self, loop, delay):
        self.loop = loop
        self.delay = delay
        self.transport = None
        self.queue = collections.deque()
        self.timer = None
        self.eof = False
        self.closed = False

    def push(self, data):
        self.queue.append((self.loop.time() + self.delay, data))
        self._arm()

    def push_eof(self):
        self.queue.append((self.loop.time() + self.delay, None))
        self._arm()

    def _arm(self):
        if self.timer is None and self.transport is not None and self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def attach(self, transport):
        self.transport = transport
        self._arm()

    def _flush(self):
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if self.closed:
                continue
            if data is None:
                self.closed = True
                self.transport.close()
            else:
                self.transport.write(data)
        self._arm()

    def abort(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class Upstream(asyncio.Protocol):
    def __init__(self, link):
        self.link = link

    def connection_made(self, transport):
        self.link.to_server.attach(transport)

    def data_received(self, data):
        self.link.count.s2c_bytes += len(data)
        self.link.s2c.feed(data)
        self.link.count.s2c_frames += self.link.s2c.frames
        self.link.s2c.frames = 0
        self.link.to_client.push(data)

    def eof_received(self):
        self.link.to_client.push_eof()
        return False

    def connection_lost(self, exc):
        self.link.to_client.push_eof()


class Downstream(asyncio.Protocol):
    """The client's side of one proxied connection."""

    def __init__(self, proxy, target, count):
        self.proxy = proxy
        self.target = target
        self.count = count
        loop = proxy.loop
        self.to_server = Direction(loop, proxy.delay)
        self.to_client = Direction(loop, proxy.delay)
        self.c2s = FrameCounter()
        self.s2c = FrameCounter()

    def connection_made(self, transport):
        self.count.connections += 1
        self.to_client.attach(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = self.target
        task = self.proxy.loop.create_task(
            self.proxy.loop.create_connection(lambda: Upstream(self), host, port))
        task.add_done_callback(self._connected)

    def _connected(self, task):
        if task.cancelled() or task.exception() is not None:
            self.to_client.abort()
            return
        transport, _ = task.result()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.count.c2s_bytes += len(data)
        self.c2s.feed(data)
        self.count.c2s_frames += self.c2s.frames
        self.c2s.frames = 0
        self.to_server.push(data)

    def eof_received(self):
        self.to_server.push_eof()
        return False

    def connection_lost(self, exc):
        self.to_server.push_eof()


class Proxy:
    def __init__(self, loop, delay, targets):
        self.loop = loop
        self.delay = delay
        self.targets = targets
        self.counts = [Counter() for _ in targets]
        self.servers = []

    async def start(self):
        ports = []
        for i, target in enumerate(self.targets):
            count = self.counts[i]
            server = await self.loop.create_server(
                lambda t=target, c=count: Downstream(self, t, c), "127.0.0.1", 0, backlog=512)
            self.servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        return ports

    def stats(self):
        hosts = []
        total = {k: 0 for k in Counter.__slots__}
        for (host, port), c in zip(self.targets, self.counts):
            entry = {"target": "%s:%d" % (host, port)}
            for k in Counter.__slots__:
                entry[k] = getattr(c, k)
                total[k] += getattr(c, k)
            hosts.append(entry)
        return {"rtt_ms": self.delay * 2000, "total": total, "hosts": hosts}


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def read_targets(path):
    targets = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                host, _, port = line.rpartition(":")
                targets.append((host, int(port)))
    return targets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--targets", required=True, help="file of host:port lines")
    parser.add_argument("--listen-file", required=True, help="where to write the proxy's ports")
    parser.add_argument("--stats", help="where SIGUSR1 writes the counters (JSON)")
    opts = parser.parse_args()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    proxy = Proxy(loop, opts.rtt_ms / 2000.0, read_targets(opts.targets))
    ports = loop.run_until_complete(proxy.start())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if opts.stats:
        loop.add_signal_handler(signal.SIGUSR1, lambda: write_atomic(
            opts.stats, json.dumps(proxy.stats())))
    write_atomic(opts.listen_file, "".join("127.0.0.1:%d\n" % p for p in ports))
    loop.run_until_complete(stop.wait())
    for server in proxy.servers:
        server.close()
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
