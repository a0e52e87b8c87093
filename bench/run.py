#!/usr/bin/python3
"""The fleet benchmark behind `make bench` (see bench/README.md).

Starts the simulator with --hosts simulated hosts (one smbd, one port per
host), puts bench/delayproxy.py with --rtt-ms of added round-trip time in
front of every port, then sweeps all hosts -- listing their sessions, as
`host:sessions()` does -- in one run:

  * loop        a plain sequential loop in one process (what a script does today)
  * fleet N     termsrv.fleet with parallel = N (worker processes), N = --parallel
  * threads N   the same work with N pthreads in one process (bench/threads.c)
  * cli -j N    the command line, `termsrv users --hosts FILE -j N --format json`
                (the same listing through bin/termsrv and its fleet), N = --cli

and prints a table: wall time, hosts/s, speed-up over the loop, SMB round
trips per host as the proxy saw them on the wire and as the client counted
them, RPC calls per host, client CPU per host, and peak RSS. Then a memory
check: the fleet's parent process over --memory host counts (no added
latency). Exits non-zero when a target of the issue is missed.
Needs root (the simulator creates accounts for smbd).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args():
    p = argparse.ArgumentParser(description="termsrv fleet benchmark")
    p.add_argument("--build", default="build", help="build directory holding termsrv/*.so")
    p.add_argument("--hosts", type=int, default=int(os.environ.get("BENCH_HOSTS", 200)))
    p.add_argument("--sessions", type=int, default=int(os.environ.get("BENCH_SESSIONS", 4)),
                   help="user sessions per host (besides services, console, listener)")
    p.add_argument("--rtt-ms", type=float, default=float(os.environ.get("BENCH_RTT_MS", 20)))
    p.add_argument("--parallel", default=os.environ.get("BENCH_PARALLEL", "8,32,128"))
    p.add_argument("--threads", type=int, default=32, help="threads for the thread variant (0: skip)")
    p.add_argument("--threads-hosts", type=int, default=50,
                   help="hosts the thread variant sweeps (it runs at the loop's pace)")
    p.add_argument("--cli", default=os.environ.get("BENCH_CLI", "8,32"),
                   help="-j values for the command-line rows (empty: none)")
    p.add_argument("--memory", default="200,1000", help="host counts for the parent-memory check")
    p.add_argument("--json", help="also write all measurements here")
    return p.parse_args()


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix="tsbench.")
        self.sim = None
        self.proxy = None
        self.build = os.path.abspath(os.path.join(ROOT, opts.build))
        self.env = dict(os.environ)
        self.env["LUA_PATH"] = "%s/lua/?.lua;%s/lua/?/init.lua;;" % (ROOT, ROOT)
        self.env["LUA_CPATH"] = "%s/?.so;;" % self.build

    # -- the world ---------------------------------------------------------------

    def start_sim(self):
        env = dict(os.environ, BENCH_HOSTS=str(self.opts.hosts),
                   BENCH_SESSIONS=str(self.opts.sessions))
        t0 = time.monotonic()
        out = subprocess.run([os.path.join(ROOT, "sim", "start"), "--config",
                              os.path.join(HERE, "hosts.lua")], env=env, capture_output=True,
                             text=True)
        if out.returncode != 0:
            sys.exit("bench: sim/start failed: %s%s" % (out.stderr, out.stdout))
        for line in out.stdout.splitlines():
            if line.startswith("TERMSRV_SIM_DIR="):
                self.sim = line.split("=", 1)[1].strip("'")
        with open(os.path.join(self.sim, "env.json"), encoding="utf-8") as f:
            self.simenv = json.load(f)
        self.hostlist = self.simenv["TERMSRV_SIM_HOSTLIST"]
        print("simulator: %d hosts, one smbd, ready in %.1fs"
              % (self.opts.hosts, time.monotonic() - t0), flush=True)

    def start_proxy(self):
        self.proxied = os.path.join(self.tmp, "proxied")
        self.stats_file = os.path.join(self.tmp, "proxy-stats.json")
        log = open(os.path.join(self.tmp, "proxy.log"), "wb")
        self.proxy = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "delayproxy.py"), "--rtt-ms",
             str(self.opts.rtt_ms), "--targets", self.hostlist, "--listen-file", self.proxied,
             "--stats", self.stats_file], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while not os.path.exists(self.proxied):
            if self.proxy.poll() is not None or time.monotonic() > deadline:
                sys.exit("bench: the delaying proxy did not start; see %s/proxy.log" % self.tmp)
            time.sleep(0.05)
        print("proxy: %g ms added round-trip time in front of every host" % self.opts.rtt_ms,
              flush=True)

    def proxy_stats(self):
        if os.path.exists(self.stats_file):
            os.remove(self.stats_file)
        self.proxy.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.stats_file):
            if time.monotonic() > deadline:
                sys.exit("bench: no counters from the proxy")
            time.sleep(0.01)
        with open(self.stats_file, encoding="utf-8") as f:
            return json.load(f)["total"]

    def stop(self):
        if self.proxy and self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(5)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()
        if self.sim:
            subprocess.run([os.path.join(ROOT, "sim", "stop"), self.sim])
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measurements ----------------------------------------------------------------

    def hosts_file(self, source, count, name):
        with open(source, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            for i in range(count):
                f.write(lines[i % len(lines)] + "\n")
        return path

    def credentials(self):
        e = self.simenv
        return [e["TERMSRV_SIM_USER"], e["TERMSRV_SIM_DOMAIN"], e["TERMSRV_SIM_PASSWORD"]]

    def run_json(self, args):
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            sys.exit("bench: %s failed (%d): %s%s" % (" ".join(args[:3]), out.returncode,
                                                     out.stderr, out.stdout))
        return json.loads(out.stdout.strip().splitlines()[-1])

    def measure(self, label, args, hosts_file):
        before = self.proxy_stats()
        r = self.run_json(args)
        after = self.proxy_stats()
        r["label"] = label
        r["wire_round_trips"] = after["c2s_frames"] - before["c2s_frames"]
        r["wire_connections"] = after["connections"] - before["connections"]
        print("  %-12s %4d hosts in %7.2fs (%d failed)" % (label, r["hosts"], r["wall"],
                                                           r["failed"]), flush=True)
        return r

    def cli(self, hosts_file, jobs):
        """bin/termsrv users over the hosts file: wall time, CPU and peak RSS of
        the command and its workers (getrusage of children), hosts ok/failed from its JSON
        status records; the client's own counters are not printed by the CLI.
        Peak RSS is the largest child reaped so far (this one or an earlier)."""
        user, domain, password = self.credentials()
        env = dict(self.env, TERMSRV_USER="%s\\%s" % (domain, user), TERMSRV_PASSWORD=password)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.Popen([os.path.join(ROOT, "bin", "termsrv"), "users", "--hosts",
                                 hosts_file, "-j", str(jobs), "--format", "json"], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate()
        wall = time.monotonic() - t0
        # the command and, through it, its reaped workers
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        ok = failed = 0
        for line in out.decode().splitlines():
            rec = json.loads(line)
            if rec.get("type") == "host":
                if rec.get("ok"):
                    ok += 1
                else:
                    failed += 1
        if proc.returncode not in (0,) and not failed:
            sys.exit("bench: termsrv users failed (%d): %s" % (proc.returncode, err.decode()))
        return {"hosts": ok + failed, "ok": ok, "failed": failed, "wall": wall,
                "cpu_self": cpu, "cpu_children": 0,
                "maxrss_self": after.ru_maxrss, "maxrss_children": 0,
                "smb_round_trips": None, "rpc_calls": None}

    def sweep(self, mode, hosts_file, parallel=None):
        args = ["lua5.4", os.path.join(HERE, "sweep.lua"), mode, hosts_file] + self.credentials()
        if parallel:
            args.append(str(parallel))
        return self.run_json(args)

    def run(self):
        o = self.opts
        self.start_sim()
        self.start_proxy()
        proxied = self.proxied
        rows = []
        print("sweeps (listing every host's sessions):", flush=True)
        lua = ["lua5.4", os.path.join(HERE, "sweep.lua")]
        rows.append(self.measure("loop", lua + ["loop", proxied] + self.credentials(), proxied))
        for n in [int(x) for x in o.parallel.split(",") if x]:
            rows.append(self.measure("fleet %d" % n, lua + ["fleet", proxied] + self.credentials()
                                     + [str(n)], proxied))
        if o.threads > 0:
            sub = self.hosts_file(proxied, min(o.threads_hosts, o.hosts), "threads-hosts")
            user, domain, password = self.credentials()
            r = self.measure("threads %d" % o.threads, [
                os.path.join(self.build, "bench", "threads"), "-j", str(o.threads), "-f", sub,
                "-u", user, "-d", domain, "-p", password], sub)
            r["cpu_self"], r["cpu_children"] = r["cpu"], 0
            r["maxrss_self"], r["maxrss_children"] = r["maxrss"], 0
            rows.append(r)
        for n in [int(x) for x in o.cli.split(",") if x]:
            before = self.proxy_stats()
            r = self.cli(proxied, n)
            after = self.proxy_stats()
            r["label"] = "cli -j %d" % n
            r["wire_round_trips"] = after["c2s_frames"] - before["c2s_frames"]
            r["wire_connections"] = after["connections"] - before["connections"]
            print("  %-12s %4d hosts in %7.2fs (%d failed)" % (r["label"], r["hosts"], r["wall"],
                                                               r["failed"]), flush=True)
            rows.append(r)

        memory = []
        print("parent memory (fleet, parallel 32, no added latency):", flush=True)
        for count in [int(x) for x in o.memory.split(",") if x]:
            path = self.hosts_file(self.hostlist, count, "memory-%d" % count)
            r = self.sweep("fleet", path, 32)
            memory.append(r)
            print("  %5d hosts: %d ok in %.1fs, parent peak RSS %.1f MiB, largest worker %.1f MiB"
                  % (count, r["ok"], r["wall"], r["maxrss_self"] / 1024,
                     r["maxrss_children"] / 1024), flush=True)
        return rows, memory


def table(rows, opts):
    base = rows[0]["hosts"] / rows[0]["wall"]
    head = ["mode", "hosts", "wall s", "hosts/s", "speed-up", "SMB RT/host wire", "SMB RT/host client",
            "RPC calls/host", "CPU ms/host", "peak RSS parent MiB", "peak RSS worker MiB"]
    lines = []
    for r in rows:
        n = r["hosts"]
        rate = n / r["wall"]
        lines.append([
            r["label"], str(n), "%.2f" % r["wall"], "%.1f" % rate, "%.1fx" % (rate / base),
            "%.1f" % (r["wire_round_trips"] / n),
            "%.1f" % (r["smb_round_trips"] / max(1, r["ok"])) if r["smb_round_trips"] is not None else "-",
            "%.1f" % (r["rpc_calls"] / max(1, r["ok"])) if r["rpc_calls"] is not None else "-",
            "%.1f" % ((r["cpu_self"] + r["cpu_children"]) * 1000 / n),
            "%.1f" % (r["maxrss_self"] / 1024),
            "%.1f" % (r["maxrss_children"] / 1024) if r["maxrss_children"] else "-"])
    widths = [max(len(head[i]), *(len(l[i]) for l in lines)) for i in range(len(head))]
    fmt = lambda cells: "| " + " | ".join(c.rjust(w) if i else c.ljust(w)
                                          for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    out = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(l) for l in lines]
    return "\n".join(out)


def main():
    opts = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (the simulator creates accounts for smbd)")
    bench = Bench(opts)
    t0 = time.monotonic()
    try:
        rows, memory = bench.run()
    finally:
        bench.stop()
    k = opts.sessions + 1        # the user sessions and the console are listed
    print()
    print("%d hosts, %d sessions listed per host, %g ms added RTT, %d CPU cores, total bench %.0fs"
          % (opts.hosts, k, opts.rtt_ms, os.cpu_count(), time.monotonic() - t0))
    print(table(rows, opts))
    failures = []
    loop_rate = rows[0]["hosts"] / rows[0]["wall"]
    for r in rows:
        if r["failed"]:
            failures.append("%s: %d hosts failed" % (r["label"], r["failed"]))
    fleet32 = next((r for r in rows if r["label"] == "fleet 32"), None)
    if fleet32:
        speedup = fleet32["hosts"] / fleet32["wall"] / loop_rate
        print("target: parallel 32 at least 20x the loop: %.1fx %s"
              % (speedup, "ok" if speedup >= 20 else "MISSED"))
        if speedup < 20:
            failures.append("speed-up %.1fx < 20x" % speedup)
    documented = 3 * k + 16
    client = rows[0]["smb_round_trips"] / max(1, rows[0]["ok"])
    print("target: listing K=%d sessions costs at most 3K+16 = %d SMB round trips after the logon: "
          "%.0f %s (on the wire, with negotiate, session setup and tree connect: %.0f)"
          % (k, documented, client, "ok" if client <= documented else "MISSED",
             rows[0]["wire_round_trips"] / rows[0]["hosts"]))
    if client > documented:
        failures.append("round trips %.0f > %d" % (client, documented))
    if len(memory) >= 2:
        a, b = memory[0], memory[-1]
        print("memory: parent peak RSS %.1f MiB for %d hosts, %.1f MiB for %d hosts"
              % (a["maxrss_self"] / 1024, a["hosts"], b["maxrss_self"] / 1024, b["hosts"]))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "memory": memory, "opts": vars(opts)}, f, indent=1)
    if failures:
        print("bench: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
