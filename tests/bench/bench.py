#!/usr/bin/env python3
"""Rollgate benchmark: Rollgate against a kubectl script on the same local cluster,
reaction latency, controller cost. Entry point: hack/bench.sh (see tests/bench/README.md).

Steps: start a local control plane (hack/cluster.sh) unless --cluster-dir names a running one;
raise the controller-manager's and scheduler's client QPS (so that neither contender waits on
the Deployment controller's client rate limit); install the CRD; create kwok nodes, the
namespaces and both contenders' Deployments, wait until they are available; watch Deployments
and ContainerRollouts; run the contenders one after the other (default: baseline first):
  baseline  tests/bench/baseline_rollout.sh per rollout through `xargs -P`;
  rollgate  the controller (started here), then the ContainerRollouts, until all Succeeded,
            then an idle window (RSS, re-lists);
print a table and write tests/bench/results/<preset>-<timestamp>.json and latest.json.
"""

import argparse
import bisect
import concurrent.futures
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube as kubelib  # noqa: E402
import promtext  # noqa: E402
import scenario as sc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024.0 * 1024.0

TARGETS = {"ratio": 1.05, "reaction_p50_s": 0.010, "reaction_p99_s": 0.050,
           "idle_rss_mib": 20.0, "rss_at_1000_rollouts_mib": 64.0}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def control_plane_bin():
    out = subprocess.check_output(
        ["bash", "-c", 'source "$1/hack/control-plane-versions.sh"; echo "$CONTROL_PLANE_BIN"',
         "_", ROOT], text=True)
    return out.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values):
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "p50": pct(values, 0.5),
            "p90": pct(values, 0.9), "p99": pct(values, 0.99), "max": max(values),
            "negative": sum(1 for v in values if v < 0)}


# --- machine, processes -------------------------------------------------------------------------

def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {"nproc": os.cpu_count(), "model_name": model, "memory_gib": round(mem / 2**30, 1),
            "kernel": platform.release(), "os": _os_release(), "python": platform.python_version()}


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def contention():
    """Other CPU users: the CI clone the brief warns about, and the load average."""
    r = subprocess.run(["pgrep", "-f", "ci-clone"], capture_output=True, text=True)
    pids = [p for p in r.stdout.split() if p.strip()]
    return {"ci_clone_processes": len(pids), "loadavg": open("/proc/loadavg").read().split()[:3],
            "top_cpu_1s": _top_cpu()}


def _top_cpu(interval=1.0, n=5):
    """The processes that used the most CPU over `interval` seconds: ["comm(pid) 95%", ...]."""
    def snap():
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        head, tail = f.read().rsplit(")", 1)
                    fields = tail.split()
                    out[int(d)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
                except (OSError, IndexError, ValueError):
                    pass
        return out
    a = snap()
    time.sleep(interval)
    b = snap()
    use = sorted(((b[p][1] - a[p][1], b[p][0], p) for p in b if p in a), reverse=True)[:n]
    return ["%s(%d) %.0f%%" % (c, p, 100.0 * t / CLK_TCK / interval) for t, c, p in use if t > 0]


def start_time(pid):
    """Field 22 of /proc/PID/stat (the start time, fixed at fork), or None when the process is
    gone or a zombie."""
    try:
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        return None
    return out


def memory_breakdown(pid, top=10):
    """Where the RSS is: smaps_rollup fields, thread count, the largest mappings by Rss."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "RssShmem", "Threads", "VmRSS", "VmHWM"):
                    v = line.split()[1]
                    out[k] = int(v) if k == "Threads" else round(int(v) / 1024.0, 2)
        by = {}
        name = None
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                parts = line.split()
                if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                    name = parts[5] if len(parts) >= 6 else "[anon]"
                    name = os.path.basename(name) if name.startswith("/") else name
                elif parts[0] == "Rss:":
                    by[name] = by.get(name, 0) + int(parts[1])
        out["top_mappings_mib"] = {k: round(v / 1024.0, 2) for k, v in
                                   sorted(by.items(), key=lambda kv: -kv[1])[:top]}
    except OSError as e:
        out["error"] = str(e)
    return out


def heaptrack_summary(lines, frames=5):
    """heaptrack_print's peak consumers, one line per allocation site and per call path below
    it: its peak bytes and calls, then its first named frames (addresses, `in` lines and the
    standard library's internals left out), innermost first."""
    out, path = [], None

    def flush():
        if path is not None:
            out.append("  " * path[0] + path[1] + "  <  " + "  <  ".join(path[2][:frames]))

    for l in lines:
        s = l.strip()
        m = re.match(r"^(\S+) (peak memory )?consumed over (\d+) calls from:?$", s)
        if m:
            flush()
            path = (0 if m.group(2) else 1, "%s over %s calls" % (m.group(1), m.group(3)), [])
            continue
        if path is None or s.startswith("in ") or s.startswith("at ") or \
                re.match(r"^0x[0-9a-f]+$", s) or s.startswith("std::") or s.startswith("__") or \
                s in ("operator()", "_M_invoke", "start_thread", "clone3"):
            continue
        path[2].append(s)
    flush()
    return out


def wait_for_descendant(pid, comm, timeout):
    """The pid of the first descendant of `pid` whose comm is `comm` (a wrapped program)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip() != comm:
                        continue
                p = int(d)
                while p > 1:  # an ancestor of it is `pid`?
                    with open("/proc/%d/stat" % p) as f:
                        p = int(f.read().rsplit(")", 1)[1].split()[1])
                    if p == pid:
                        return int(d)
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.05)
    raise SystemExit("bench: no %s process under pid %d after %d s" % (comm, pid, timeout))


class Sampler(threading.Thread):
    """VmRSS/VmHWM and CPU of one process every `period` seconds."""

    def __init__(self, pid, period=0.2):
        super().__init__(name="sampler", daemon=True)
        self.pid, self.period = pid, period
        self.samples = []  # (t, rss_kib, hwm_kib, cpu_s)
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            m = rss_kib(self.pid)
            c = cpu_seconds(self.pid)
            if m is None or c is None:
                return
            self.samples.append((time.time(), m.get("VmRSS", 0), m.get("VmHWM", 0), c))
            self.stop_flag.wait(self.period)

    def window(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]


# --- the cluster --------------------------------------------------------------------------------

class Cluster:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.owned = False
        if args.cluster_dir:
            self.dir = os.path.abspath(args.cluster_dir)
        else:
            self.dir = os.path.join(work, "cluster")

    def up(self):
        if self.args.cluster_dir and os.path.exists(os.path.join(self.dir, "kubeconfig")):
            log("reusing the cluster in %s" % self.dir)
            return
        log("starting a local control plane in %s" % self.dir)
        self.owned = True
        t0 = time.time()
        r = subprocess.run(["bash", os.path.join(ROOT, "hack/cluster.sh"), "up", "--dir", self.dir],
                           stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        if r.returncode != 0:
            raise SystemExit("bench: hack/cluster.sh up failed")
        log("control plane up in %.1fs" % (time.time() - t0))

    def down(self):
        if self.owned and not self.args.keep_cluster:
            subprocess.run(["bash", os.path.join(ROOT, "hack/cluster.sh"), "down", self.dir],
                           stdout=subprocess.DEVNULL, stderr=sys.stderr)
        elif self.owned:
            log("kept the cluster: hack/cluster.sh down %s" % self.dir)

    @property
    def kubeconfig(self):
        return os.path.join(self.dir, "kubeconfig")

    def pid(self, name):
        """The live pid of a component, as hack/cluster.sh records it ("PID STARTTIME": the pid
        counts only while its start time, field 22 of /proc/PID/stat, matches)."""
        try:
            fields = open(os.path.join(self.dir, "pids", name)).read().split()
            pid, recorded = int(fields[0]), fields[1]
        except (OSError, ValueError, IndexError):
            return None
        started = start_time(pid)
        return pid if started is not None and started == recorded else None

    def component_cpu(self):
        out = {}
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                     "kwok"):
            p = self.pid(name)
            out[name] = cpu_seconds(p) if p else None
        return out

    def raise_client_qps(self, qps):
        """Restart kube-controller-manager and kube-scheduler (started by cluster.sh for this
        benchmark) with --kube-api-qps/--kube-api-burst, so that the Deployment and ReplicaSet
        controllers' default 20 QPS does not pace both contenders."""
        for name in ("kube-controller-manager", "kube-scheduler"):
            pid = self.pid(name)
            if pid is None:
                raise SystemExit("bench: %s is not running in %s" % (name, self.dir))
            argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[:-1]
            argv = [a.decode() for a in argv if not a.startswith((b"--kube-api-qps",
                                                                   b"--kube-api-burst"))]
            argv += ["--kube-api-qps=%d" % qps, "--kube-api-burst=%d" % (2 * qps)]
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 15
            while time.time() < deadline and os.path.exists("/proc/%d" % pid):
                st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] \
                    if os.path.exists("/proc/%d/stat" % pid) else "Z"
                if st == "Z":
                    break
                time.sleep(0.05)
            logf = open(os.path.join(self.dir, "logs", name + ".log"), "ab")
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                 start_new_session=True)
            logf.close()
            with open(os.path.join(self.dir, "pids", name), "w") as f:
                f.write("%d %s\n" % (p.pid, start_time(p.pid) or "0"))
        time.sleep(1.5)
        for name in ("kube-controller-manager", "kube-scheduler"):
            if self.pid(name) is None:
                raise SystemExit("bench: %s did not restart; see %s/logs/%s.log"
                                 % (name, self.dir, name))
        log("controller-manager and scheduler restarted with --kube-api-qps=%d" % qps)


# --- watching -----------------------------------------------------------------------------------

class Tracker:
    """Timestamps from the Deployment and ContainerRollout watches."""

    def __init__(self):
        self.mu = threading.Lock()
        # (ns, name) -> [(t, generation, has_new_image, rolled_out)], a record per change
        self.deploys = {}
        # rollout name -> {"added": t, "env_succeeded": {env: t}, "phase": p, "done": t}
        self.rollouts = {}
        self.done_cv = threading.Condition(self.mu)

    def on_deployment(self, t, typ, d):
        md, spec, st = d["metadata"], d["spec"], d.get("status") or {}
        cs = spec["template"]["spec"]["containers"]
        new = any(c["name"] == sc.CONTAINER and c["image"] == sc.NEW_IMAGE for c in cs)
        want = spec.get("replicas", 1)
        rolled = (st.get("observedGeneration", 0) >= md.get("generation", 0)
                  and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
                  and st.get("availableReplicas", 0) == want)
        rec = (t, md.get("generation", 0), new, rolled)
        key = (md["namespace"], md["name"])
        with self.mu:
            lst = self.deploys.setdefault(key, [])
            if not lst or lst[-1][1:] != rec[1:]:
                lst.append(rec)

    def on_rollout(self, t, typ, r):
        name = r["metadata"]["name"]
        st = r.get("status") or {}
        with self.mu:
            info = self.rollouts.setdefault(name, {"added": None, "env_succeeded": {},
                                                   "phase": None, "done": None})
            if typ == "ADDED" and info["added"] is None:
                info["added"] = t
            for e in st.get("environments") or []:
                if e.get("phase") == "Succeeded" and e["name"] not in info["env_succeeded"]:
                    info["env_succeeded"][e["name"]] = t
            phase = st.get("phase")
            info["phase"] = phase
            summary = (phase, st.get("currentEnvironment"),
                       tuple((e.get("name"), e.get("phase")) for e in
                             st.get("environments") or []))
            hist = info.setdefault("status", [])
            if typ != "LIST" and (not hist or hist[-1][1] != summary):
                hist.append((t, summary))
            info["updates"] = info.get("updates", 0) + (typ == "MODIFIED")
            if name == "r0000" and typ != "LIST":
                # What each status write of the first rollout changed (a diagnosis of the
                # number of status writes per rollout).
                prev = info.get("last_status")
                if prev is not None and prev != st:
                    info.setdefault("status_changes", []).append(
                        (t, sorted(_changed_paths(prev, st))[:12]))
                info["last_status"] = st
            if phase in ("Succeeded", "Failed", "RolledBack", "Aborted") and info["done"] is None:
                info["done"] = t
                self.done_cv.notify_all()
            if typ == "DELETED":
                info["phase"] = "Deleted"

    def finished(self):
        with self.mu:
            return {n: i for n, i in self.rollouts.items() if i["done"] is not None}

    def first_new(self, key):
        for t, _, new, _ in self.deploys.get(key, []):
            if new:
                return t
        return None

    def first_rolled_new(self, key):
        for t, _, new, rolled in self.deploys.get(key, []):
            if new and rolled:
                return t
        return None


def scrape(url, kube=None):
    if kube is not None:
        return kube.text(url)
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def apiserver_counts(kube):
    s = promtext.parse(kube.text("/metrics"), ("apiserver_request_total",))
    return promtext.sum_by(s, "apiserver_request_total", ("verb", "resource", "subresource"))


def generations(kube, contender):
    items, _ = kube.list_all("/apis/apps/v1/deployments",
                             {"labelSelector": "%s=%s" % (sc.CONTENDER_LABEL, contender)})
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): (
        d["metadata"].get("generation", 0),
        any(c["image"] == sc.NEW_IMAGE for c in d["spec"]["template"]["spec"]["containers"]))
        for d in items}


def gen_deltas(before, after):
    deltas = [after[k][0] - before[k][0] for k in after if k in before]
    hist = {}
    for d in deltas:
        hist[d] = hist.get(d, 0) + 1
    return {"targets": len(deltas), "histogram": {str(k): v for k, v in sorted(hist.items())},
            "max": max(deltas) if deltas else None,
            "all_new_image": all(v[1] for v in after.values())}


def api_summary(delta, completed):
    by_verb = {}
    for (verb, res, sub), v in delta.items():
        by_verb[verb] = by_verb.get(verb, 0) + v
    rows = sorted(({"verb": k[0], "resource": k[1] + ("/" + k[2] if k[2] else ""),
                    "count": int(v)} for k, v in delta.items()), key=lambda r: -r["count"])
    total = int(sum(by_verb.values()))
    return {"total": total, "by_verb": {k: int(v) for k, v in sorted(by_verb.items())},
            "per_completed_rollout": round(total / completed, 2) if completed else None,
            "by_verb_resource": rows}


def plot_svg(result, width=640, height=300):
    """An SVG of the controller's RSS and both contenders' completed rollouts over time (the
    README's plot). None when there is no timeline."""
    rg = (result.get("rollgate") or {}).get("timeline") or []
    bl = (result.get("baseline") or {}).get("timeline") or []
    if not rg and not bl:
        return None
    left, right, top, bottom = 50, 50, 30, 40
    w, h = width - left - right, height - top - bottom
    t_max = max([p[0] for p in rg] + [p[0] for p in bl] + [1.0])
    rss_max = max([p[1] for p in rg] + [1.0]) * 1.1
    n_max = max([p[2] for p in rg] + [p[1] for p in bl] + [1])

    def x(t):
        return left + w * max(t, 0.0) / t_max

    def y(v, vmax):
        return top + h - h * v / vmax

    def path(points, color, dash=""):
        if not points:
            return ""
        d = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", px, py)
                     for i, (px, py) in enumerate(points))
        return ('<path d="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>'
                % (d, color, ' stroke-dasharray="%s"' % dash if dash else ""))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18">preset %s: controller RSS and rollouts completed over time</text>'
           % (left, result.get("preset", "")),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
           % (left, top + h, left + w, top + h),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, top + h),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
           % (left + w, top, left + w, top + h)]
    for i in range(5):
        t = t_max * i / 4
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%.0f s</text>'
                   % (x(t), top + h + 15, t))
        out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#c03030">%.0f</text>'
                   % (left - 4, y(rss_max * i / 4, rss_max) + 4, rss_max * i / 4))
        out.append('<text x="%d" y="%.1f" fill="#2060c0">%.0f</text>'
                   % (left + w + 4, y(n_max * i / 4, n_max) + 4, n_max * i / 4))
    out.append('<text x="%d" y="%d" fill="#c03030">RSS MiB</text>' % (4, top - 6))
    out.append('<text x="%d" y="%d" fill="#2060c0">completed</text>' % (left + w - 20, top - 6))
    out.append(path([(x(p[0]), y(p[1], rss_max)) for p in rg], "#c03030"))
    out.append(path([(x(p[0]), y(p[2], n_max)) for p in rg], "#2060c0"))
    out.append(path([(x(p[0]), y(p[1], n_max)) for p in bl], "#2060c0", "4,3"))
    out.append('<text x="%d" y="%d">solid: Rollgate; dashed: kubectl script (completed only)'
               '</text>' % (left, height - 6))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the benchmark ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        p = dict(sc.PRESETS[args.preset])
        for k in ("rollouts", "envs", "deployments", "min_replicas", "max_replicas"):
            if getattr(args, k) is not None:
                p[k] = getattr(args, k)
        self.s = sc.Scenario(ready_delay=args.ready_delay, **p)
        self.work = tempfile.mkdtemp(prefix="rollgate-bench.")
        self.cluster = Cluster(args, self.work)
        self.bin = control_plane_bin()
        self.kubectl = os.path.join(self.bin, "kubectl")
        self.controller_bin = os.path.join(os.path.abspath(args.build_dir), "controller",
                                           "rollgate-controller")
        self.result = {"preset": args.preset, "scenario": self.s.describe(),
                       "machine": machine(), "started": datetime.datetime.now(
                           datetime.timezone.utc).isoformat(timespec="seconds")}
        self.controller = None
        self.watches = []

    # -- setup --

    def k(self, *a, **kw):
        return subprocess.run([self.kubectl, "--kubeconfig", self.cluster.kubeconfig] + list(a),
                              check=True, **kw)

    def setup(self):
        s = self.s
        self.cluster.up()
        self.kube = kubelib.Kube(self.cluster.kubeconfig, self.kubectl)
        if self.args.kcm_qps > 0:
            self.cluster.raise_client_qps(self.args.kcm_qps)
        self.result["control_plane"] = {"kcm_scheduler_kube_api_qps": self.args.kcm_qps or
                                        "default (20 / 50)"}
        self.k("apply", "--server-side", "-f",
               os.path.join(ROOT, "crds/rollgate.io_containerrollouts.yaml"),
               stdout=subprocess.DEVNULL)
        self.k("wait", "--for=condition=Established", "--timeout=60s",
               "crd/containerrollouts.rollgate.io", stdout=subprocess.DEVNULL)
        contenders = [c for c in ("rollgate", "baseline") if c in self.result["order"]]
        pods = len(contenders) * s.pods_per_contender()
        per_node = max(1000, 4 * pods // s.nodes)  # room for surge and terminating pods
        for n in sc.nodes(s, per_node):
            self.kube.create("/api/v1/nodes", n)
        for ns in sc.namespaces(s):
            self.kube.create("/api/v1/namespaces", ns)
        t0 = time.time()
        deps = list(sc.all_deployments(s, contenders))
        log("creating %d Deployments (%d pods) in %d namespaces"
            % (len(deps), pods, s.envs))

        def create(d):
            self.kube.create("/apis/apps/v1/namespaces/%s/deployments" % d["metadata"]["namespace"],
                             d)
        self.result["scenario"].update(contenders=contenders, deployments_created=len(deps),
                                       pods_created=pods)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(create, deps))
        self.wait_available(len(deps), t0)
        self.result["setup_s"] = round(time.time() - t0, 1)

    def wait_available(self, n, t0):
        deadline = time.time() + self.args.setup_timeout
        last = -1
        while True:
            items, _ = self.kube.list_all("/apis/apps/v1/deployments",
                                          {"labelSelector": sc.LABEL + "=1"})
            ready = 0
            for d in items:
                st, want = d.get("status") or {}, d["spec"].get("replicas", 1)
                if (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                        and st.get("availableReplicas", 0) == want
                        and st.get("updatedReplicas", 0) == want
                        and st.get("replicas", 0) == want):
                    ready += 1
            if ready != last:
                log("  %d/%d Deployments available (%.0fs)" % (ready, n, time.time() - t0))
                last = ready
            if ready >= n:
                return
            if time.time() > deadline:
                raise SystemExit("bench: only %d/%d Deployments available after %ds"
                                 % (ready, n, self.args.setup_timeout))
            time.sleep(2)

    def start_watches(self):
        self.tr = Tracker()
        self.watches = [
            kubelib.Watch(self.kube, "/apis/apps/v1/deployments",
                          {"labelSelector": sc.LABEL + "=1"}, self.tr.on_deployment,
                          "watch-deployments"),
            kubelib.Watch(self.kube, "/apis/rollgate.io/v1alpha1/namespaces/%s/containerrollouts"
                          % sc.ROLLOUT_NS, {}, self.tr.on_rollout, "watch-rollouts")]
        for w in self.watches:
            w.start()
        for w in self.watches:
            if not w.synced.wait(60):
                raise SystemExit("bench: watch %s did not sync: %s" % (w.name, w.error))

    # -- the baseline --

    def run_baseline(self):
        s, a = self.s, self.args
        plan = os.path.join(self.work, "baseline.plan")
        with open(plan, "w") as f:
            for line in sc.baseline_plan_lines(s):
                f.write(line + "\n")
        env = dict(os.environ, KUBECTL=self.kubectl, KUBECONFIG=self.cluster.kubeconfig,
                   CONTAINER=sc.CONTAINER, NEW_IMAGE=sc.NEW_IMAGE, ROLLOUT_TIMEOUT="30m",
                   KUBECACHEDIR=os.path.join(self.work, "kube-cache"))
        # Warm kubectl's discovery cache, as a CI runner that used kubectl before would have.
        subprocess.run([self.kubectl, "api-resources"], env=env, stdout=subprocess.DEVNULL,
                       check=True)
        gens0 = generations(self.kube, "baseline")
        api0, cpu0 = apiserver_counts(self.kube), self.cluster.component_cpu()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        log("baseline: %d rollouts, kubectl set image + rollout status, xargs -P %d"
            % (s.rollouts, a.baseline_parallel))
        errf = open(os.path.join(self.work, "baseline.stderr"), "w")
        t0 = time.time()
        with open(plan) as stdin:
            r = subprocess.run(["xargs", "-P", str(a.baseline_parallel), "-L", "1", "bash",
                                os.path.join(HERE, "baseline_rollout.sh")], stdin=stdin,
                               stdout=subprocess.PIPE, stderr=errf, env=env, text=True)
        t1 = time.time()
        errf.close()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        time.sleep(1.0)  # let the watch deliver the last events
        api1, cpu1 = apiserver_counts(self.kube), self.cluster.component_cpu()
        gens1 = generations(self.kube, "baseline")
        starts, ends, failed = {}, {}, []
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0] == "S":
                starts[f[1]] = float(f[2])
            elif len(f) >= 4 and f[0] == "E":
                ends[f[1]] = float(f[2])
                if f[3] != "0":
                    failed.append(f[1])
        completed = len([i for i in ends if i not in failed])
        if failed or r.returncode != 0:
            log("baseline: %d rollouts failed (see %s/baseline.stderr)" % (len(failed), self.work))
        lat = self.latencies("baseline", {i: starts.get(s.rollout_name(i)) for i in
                                          range(s.rollouts)})
        durations = [ends[n] - starts[n] for n in ends if n in starts]
        self.result["baseline"] = {
            "parallelism": a.baseline_parallel, "wall_s": round(t1 - t0, 3),
            "completed": completed, "failed": len(failed),
            "rollout_duration_s": dist(durations),
            "latency_s": lat,
            "kubectl_cpu_s": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
                                   2),
            "kubectl_invocations": s.rollouts * s.envs * (1 + s.deployments),
            "control_plane_cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1
                                    if cpu1[k] is not None and cpu0[k] is not None},
            "apiserver_requests_window": api_summary(promtext.diff(api1, api0), completed),
            "patches_per_target": gen_deltas(gens0, gens1),
            # [seconds since the start, rollouts completed], for the plot
            "timeline": [[round(t - t0, 2), n + 1] for n, t in
                         enumerate(sorted(ends[i] for i in ends if i not in failed))],
        }
        # kubectl's own requests: the verbs on deployments that only it issues in this window
        # (GET + PATCH from set image, LIST + WATCH from rollout status).
        d = promtext.diff(api1, api0)
        own = {v: int(sum(c for (vv, res, sub), c in d.items()
                          if vv == v and res == "deployments" and sub == ""))
               for v in ("GET", "LIST", "WATCH", "PATCH")}
        self.result["baseline"]["kubectl_requests_est"] = {
            "by_verb": own, "total": sum(own.values()),
            "per_completed_rollout": round(sum(own.values()) / completed, 2) if completed else None,
            "note": "apiserver_request_total has no client label: GET/LIST/WATCH/PATCH on "
                    "deployments in the baseline window (the Deployment controller only UPDATEs "
                    "deployments and deployments/status); discovery is cached (warmed)"}
        log("baseline: %.1fs wall, %d/%d completed" % (t1 - t0, completed, s.rollouts))

    # -- Rollgate --

    def start_controller(self):
        a = self.args
        self.metrics_port, self.health_port = free_port(), free_port()
        cmd = [self.controller_bin, "--kubeconfig", self.cluster.kubeconfig,
               "--kube-qps", str(a.kube_qps), "--kube-burst", str(a.kube_burst),
               "--concurrency", str(a.concurrency),
               "--metrics-bind-address", "127.0.0.1:%d" % self.metrics_port,
               "--health-probe-bind-address", "127.0.0.1:%d" % self.health_port,
               "--log-level", a.controller_log_level]
        self.controller_log = os.path.join(self.work, "controller.log")
        logf = open(self.controller_log, "w")
        t0 = time.time()
        env = dict(os.environ)
        for kv in a.controller_env:
            k, _, v = kv.partition("=")
            env[k] = v
        if a.profile == "heaptrack":  # every allocation, from the first: the caches' lists too
            self.profile_file = os.path.join(self.work, "controller.heaptrack")
            cmd = ["heaptrack", "-o", self.profile_file] + cmd
        self.controller = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                           stderr=subprocess.STDOUT, env=env)
        logf.close()
        self.controller_pid = self.controller.pid
        if a.profile == "heaptrack":
            self.controller_pid = wait_for_descendant(self.controller.pid, "rollgate-contro", 30)
        self.sampler = Sampler(self.controller_pid, a.sample_period)
        self.sampler.start()
        deadline = t0 + 120
        while True:
            if self.controller.poll() is not None:
                raise SystemExit("bench: the controller exited (%d); log: %s"
                                 % (self.controller.returncode, self.controller_log))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.health_port,
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("bench: the controller was not ready after 120 s")
            time.sleep(0.05)
        t1 = time.time()
        self.result["rollgate_command"] = " ".join(["rollgate-controller", "--kubeconfig", "..."] + cmd[3:])
        return t0, t1

    def controller_metrics(self):
        return promtext.parse(scrape("http://127.0.0.1:%d/metrics" % self.metrics_port),
                              ("rollgate_",))

    def stop_controller(self):
        p, self.controller = self.controller, None
        if p is None:
            return
        if p.poll() is None:
            if self.controller_pid != p.pid:  # a profiler's wrapper: the controller is its child
                os.kill(self.controller_pid, signal.SIGTERM)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                log("controller did not stop in 15 s; SIGKILL")
                p.kill()
                p.wait()
        self.sampler.stop_flag.set()

    def run_rollgate(self):
        s, a = self.s, self.args
        gens0 = generations(self.kube, "rollgate")
        cpu_start = self.cluster.component_cpu()
        t_start, t_ready = self.start_controller()
        pid = self.controller_pid
        perf = None
        if a.profile == "perf":  # CPU samples with call graphs over the run and the idle window
            self.profile_file = os.path.join(self.work, "controller.perf")
            perf = subprocess.Popen(["perf", "record", "-F", "199", "-g", "-p", str(pid), "-o",
                                     self.profile_file], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c_sync = cpu_seconds(pid)
        m0 = self.controller_metrics()
        api0, cpu0 = apiserver_counts(self.kube), self.cluster.component_cpu()
        log("rollgate: controller ready in %.2fs (RSS %.1f MiB); creating %d ContainerRollouts"
            % (t_ready - t_start, rss_kib(pid)["VmRSS"] / 1024, s.rollouts))
        created = {}

        def create(i):
            obj = sc.rollout(s, i)
            t0 = time.time()
            self.kube.create("/apis/rollgate.io/v1alpha1/namespaces/%s/containerrollouts"
                             % sc.ROLLOUT_NS, obj, exist_ok=False)
            created[i] = (t0, time.time())
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(a.create_threads) as ex:
            list(ex.map(create, range(s.rollouts)))
        t_created = time.time()
        names = {s.rollout_name(i) for i in range(s.rollouts)}
        deadline = t0 + a.run_timeout
        with self.tr.mu:
            while True:
                done = {n for n, i in self.tr.rollouts.items() if i["done"] and n in names}
                if len(done) >= len(names) or time.time() > deadline:
                    break
                if self.controller.poll() is not None:
                    break
                self.tr.done_cv.wait(0.5)
        t1 = max([self.tr.rollouts[n]["done"] for n in done] or [time.time()])
        if len(done) < len(names):
            log("rollgate: only %d/%d rollouts finished" % (len(done), len(names)))
        c_run = cpu_seconds(pid)
        time.sleep(1.0)
        m1 = self.controller_metrics()
        api1, cpu1 = apiserver_counts(self.kube), self.cluster.component_cpu()
        gens1 = generations(self.kube, "rollgate")
        succeeded = [n for n in done if self.tr.rollouts[n]["phase"] == "Succeeded"]
        completed = len(succeeded)
        log("rollgate: %.1fs wall, %d/%d Succeeded; idle window %ds"
            % (t1 - t0, completed, s.rollouts, a.idle_seconds))

        # Idle: every rollout finished, the controller keeps running.
        ti0 = time.time()
        mi0, apii0 = self.controller_metrics(), apiserver_counts(self.kube)
        ci0 = cpu_seconds(pid)
        time.sleep(a.idle_seconds / 2)
        breakdown = memory_breakdown(pid)
        time.sleep(a.idle_seconds - a.idle_seconds / 2)
        ti1 = time.time()
        mi1, apii1 = self.controller_metrics(), apiserver_counts(self.kube)
        ci1 = cpu_seconds(pid)
        hwm = rss_kib(pid)["VmHWM"]
        idle_samples = self.sampler.window(ti0 + min(30, a.idle_seconds / 2), ti1)
        run_samples = self.sampler.window(t0, t1)
        sync_samples = self.sampler.window(t_start, t_ready)

        def kube_req(m):
            return promtext.sum_by(m, "rollgate_kube_requests_total", ("verb",))

        kr = {k[0]: int(v) for k, v in promtext.diff(kube_req(m1), kube_req(m0)).items()}
        kr_code = {"%s %s" % k: int(v) for k, v in promtext.diff(
            promtext.sum_by(m1, "rollgate_kube_requests_total", ("verb", "code")),
            promtext.sum_by(m0, "rollgate_kube_requests_total", ("verb", "code"))).items()
            if int(v)}
        kr_sync = {k[0]: int(v) for k, v in kube_req(m0).items()}
        kr_idle = {k[0]: int(v) for k, v in promtext.diff(kube_req(mi1), kube_req(mi0)).items()}
        api_idle = promtext.diff(apii1, apii0)
        lists_idle_api = int(sum(v for (verb, _, _), v in api_idle.items() if verb == "LIST"))
        react = promtext.histogram(m1, "rollgate_reaction_latency_seconds")
        recon = promtext.histogram(m1, "rollgate_reconcile_duration_seconds")
        # Already on the images (settled preset): no patch, so no latency to a first patch.
        lat = {} if s.on_images else self.latencies(
            "rollgate", {i: created[i][1] for i in created}, created)
        durations = [self.tr.rollouts[s.rollout_name(i)]["done"] - created[i][0]
                     for i in created if self.tr.rollouts.get(s.rollout_name(i), {}).get("done")]

        def mib(kib):
            return round(kib / 1024.0, 1)

        def median_rss(samples):
            return mib(pct([x[1] for x in samples], 0.5)) if samples else None

        self.result["rollgate"] = {
            "flags": {"kube_qps": a.kube_qps, "kube_burst": a.kube_burst,
                      "concurrency": a.concurrency, "log_level": a.controller_log_level,
                      "env": a.controller_env},
            "wall_s": round(t1 - t0, 3),
            "create_s": round(t_created - t0, 3),
            "completed": completed, "finished": len(done),
            "phases": _count(self.tr.rollouts[n]["phase"] for n in names
                             if n in self.tr.rollouts),
            "rollout_duration_s": dist(durations),
            "latency_s": lat,
            "controller_histogram": _hist_summary(react),
            "reconcile_duration": _hist_summary(recon),
            "startup": {"ready_s": round(t_ready - t_start, 3),
                        "cpu_s": round(c_sync, 3), "rss_mib": median_rss(sync_samples[-3:]),
                        "requests_by_verb": kr_sync},
            "rss_mib": {"peak_vmhwm": mib(hwm),
                        "run_max_sampled": mib(max((x[1] for x in run_samples), default=0)),
                        "run_median": median_rss(run_samples),
                        "idle_median": median_rss(idle_samples),
                        "idle_max": mib(max((x[1] for x in idle_samples), default=0)),
                        "samples": len(self.sampler.samples),
                        "idle_breakdown": breakdown},
            "cpu_s": {"run": round(c_run - c_sync, 2), "idle": round(ci1 - ci0, 3),
                      "per_completed_rollout": round((c_run - c_sync) / completed, 4)
                      if completed else None},
            "kube_requests": {"by_verb": kr, "by_verb_code": kr_code, "total": sum(kr.values()),
                              "per_completed_rollout": round(sum(kr.values()) / completed, 2)
                              if completed else None},
            "control_plane_cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1
                                    if cpu1[k] is not None and cpu0[k] is not None},
            "apiserver_requests_window": api_summary(promtext.diff(api1, api0), completed),
            "patches_per_target": gen_deltas(gens0, gens1),
            "idle": {"seconds": round(ti1 - ti0, 1), "controller_requests_by_verb": kr_idle,
                     "controller_lists": kr_idle.get("list", 0) + kr_idle.get("LIST", 0),
                     "apiserver_lists_all_clients": lists_idle_api,
                     "apiserver_requests_by_verb": api_summary(api_idle, 0)["by_verb"]},
        }
        del cpu_start
        # [seconds since the first create, RSS MiB, rollouts completed], for the plot
        done_times = sorted(self.tr.rollouts[n]["done"] for n in done)
        span = self.sampler.window(t_start, ti1)
        step = max(1, len(span) // 400)  # at most ~400 points
        self.result["rollgate"]["timeline"] = [
            [round(x[0] - t0, 2), mib(x[1]), bisect.bisect_right(done_times, x[0])]
            for x in span[::step]]
        upd = [self.tr.rollouts[n].get("updates", 0) for n in names if n in self.tr.rollouts]
        self.result["rollgate"]["status_updates_per_rollout"] = dist(upd)
        self.result["rollgate"]["timeline_" + s.rollout_name(0)] = self.timeline(0, created)
        first = self.tr.rollouts.get(s.rollout_name(0)) or {}
        self.result["rollgate"]["status_changes_" + s.rollout_name(0)] = [
            "%+8.1f ms  %s" % ((t - created[0][1]) * 1000, " ".join(p)) for t, p in
            first.get("status_changes", [])] if 0 in created else []
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        self.stop_controller()
        rc = self._controller_log_summary()
        self.result["rollgate"]["log"] = rc
        if a.profile != "none":
            self.result["rollgate"]["profile"] = self.profile_report()

    def profile_report(self):
        """The profile's summary: its top entries, as text lines (also kept in the work dir)."""
        a = self.args
        if a.profile == "perf":
            argv = ["perf", "report", "--stdio", "--no-children", "--sort", "dso,symbol",
                    "--percent-limit", "0.8", "-g", "none", "-i", self.profile_file]
        else:
            files = [f for f in os.listdir(self.work) if f.startswith("controller.heaptrack")]
            if not files:
                return {"error": "heaptrack wrote no file"}
            self.profile_file = os.path.join(self.work, sorted(files)[-1])
            argv = ["heaptrack_print", "--print-peaks", "1", "--print-allocators", "0",
                    "--print-temporary", "0", "--print-leaks", "0", "--peak-limit", "15",
                    "--sub-peak-limit", "3", "-f", self.profile_file]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           check=False)
        lines = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        top = heaptrack_summary(lines) if a.profile == "heaptrack" else lines[:160]
        return {"tool": a.profile, "file": self.profile_file, "command": " ".join(argv),
                "top": top}

    def _controller_log_summary(self):
        lines = warnings = errors = 0
        try:
            with open(self.controller_log, errors="replace") as f:
                for line in f:
                    lines += 1
                    low = line.lower()
                    if "level=warning" in low or " warning " in low or '"warning"' in low:
                        warnings += 1
                    if "level=error" in low or " error " in low or '"error"' in low:
                        errors += 1
        except OSError:
            pass
        return {"lines": lines, "warnings": warnings, "errors": errors}

    def timeline(self, i, created):
        """What the watches saw of rollout i, in ms after its create request was answered."""
        s, tr = self.s, self.tr
        if i not in created:
            return []
        t0 = created[i][1]
        ev = []
        with tr.mu:
            for t, (phase, cur, envs) in (tr.rollouts.get(s.rollout_name(i)) or {}).get(
                    "status", []):
                ev.append((t, "status %s current=%s %s" % (
                    phase, cur, " ".join("%s=%s" % e for e in envs))))
            for _, ns, names in s.targets("rollgate", i):
                for n in names:
                    for t, gen, new, rolled in tr.deploys.get((ns, n), []):
                        if new:
                            ev.append((t, "deployment %s/%s generation=%d rolled_out=%s"
                                       % (ns, n, gen, rolled)))
        return ["%+8.1f ms  %s" % ((t - t0) * 1000, what) for t, what in sorted(ev)]

    # -- latencies from the watches --

    def latencies(self, contender, t_origin, created=None):
        """Watch-based latencies. t_origin[i]: the rollout's start (Rollgate: the create POST's
        response; baseline: the job's start)."""
        s, tr = self.s, self.tr
        first_env, eligible, handoff, finish, env_roll = [], [], [], [], []
        with tr.mu:
            for i in range(s.rollouts):
                tg = s.targets(contender, i)
                fp, ro = [], []
                for _, ns, names in tg:
                    fps = [tr.first_new((ns, n)) for n in names]
                    ros = [tr.first_rolled_new((ns, n)) for n in names]
                    fp.append(min(fps) if all(x is not None for x in fps) else None)
                    ro.append(max(ros) if all(x is not None for x in ros) else None)
                if t_origin.get(i) is not None and fp[0] is not None:
                    first_env.append(fp[0] - t_origin[i])
                for e in range(1, len(tg)):
                    if fp[e] is not None and ro[e - 1] is not None:
                        handoff.append(fp[e] - ro[e - 1])
                for e in range(len(tg)):
                    if fp[e] is not None and ro[e] is not None:
                        env_roll.append(ro[e] - fp[e])
                if contender == "rollgate":
                    info = tr.rollouts.get(s.rollout_name(i)) or {}
                    for e in range(1, len(tg)):
                        te = info.get("env_succeeded", {}).get(s.env_name(e - 1))
                        if te is not None and fp[e] is not None:
                            eligible.append(fp[e] - te)
                    if info.get("done") and ro[-1] is not None:
                        finish.append(info["done"] - ro[-1])
        out = {"creation_to_first_patch" if contender == "rollgate" else
               "job_start_to_first_patch": dist(first_env),
               "env_ready_to_next_env_patch": dist(handoff),
               "env_first_patch_to_env_ready": dist(env_roll)}
        if contender == "rollgate":
            out["status_eligible_to_first_patch"] = dist(eligible)
            out["creation_and_eligible_to_first_patch"] = dist(first_env + eligible)
            out["last_env_ready_to_succeeded_status"] = dist(finish)
            if created:
                out["create_request_s"] = dist([b - a for a, b in created.values()])
        return out

    # -- report --

    def evaluate(self):
        r, t = self.result, []
        rg, bl = r.get("rollgate"), r.get("baseline")

        def target(name, value, limit, ok, note=""):
            if isinstance(value, float):
                value = round(value, 4)
            t.append({"target": name, "value": value, "limit": limit,
                      "met": ok if value is not None else None, "note": note})

        if rg and bl and bl["wall_s"] > 0:
            ratio = rg["wall_s"] / bl["wall_s"]
            r["ratio_rollgate_over_baseline"] = round(ratio, 3)
            target("overhead ratio (a)/(b)", round(ratio, 3), "<= 1.05", ratio <= 1.05)
        if rg:
            h = rg["controller_histogram"]
            if h.get("present"):
                target("reaction p50 (controller histogram)", h["p50_s"], "<= 0.010 s",
                       h["p50_s"] is not None and h["p50_s"] <= 0.010,
                       "share <= 10 ms: %s" % h["share_le_10ms"])
                target("reaction p99 (controller histogram)", h["p99_s"], "<= 0.050 s",
                       h["p99_s"] is not None and h["p99_s"] <= 0.050,
                       "share <= 50 ms: %s" % h["share_le_50ms"])
            else:
                target("reaction (controller histogram)", None, "p50 <= 10 ms, p99 <= 50 ms",
                       None, "rollgate_reaction_latency_seconds absent or empty")
            w = rg["latency_s"].get("creation_and_eligible_to_first_patch") or {"n": 0}
            if w["n"]:
                target("reaction p50 (watch: creation/status-eligible -> first patch)",
                       round(w["p50"], 4), "<= 0.010 s", w["p50"] <= 0.010)
                target("reaction p99 (watch: creation/status-eligible -> first patch)",
                       round(w["p99"], 4), "<= 0.050 s", w["p99"] <= 0.050)
            idle = rg["rss_mib"]["idle_median"]
            target("idle RSS (all rollouts Succeeded, idle)", idle, "<= 20 MiB",
                   idle is not None and idle <= 20.0)
            big = self.s.rollouts >= 1000 and self.s.deployments_per_contender() >= 3000
            target("RSS with 1,000 rollouts / 3,000 Deployments / 10,000 pods",
                   rg["rss_mib"]["peak_vmhwm"] if big else None, "<= 64 MiB",
                   rg["rss_mib"]["peak_vmhwm"] <= 64.0 if big else None,
                   "" if big else "not measured at this size (run --preset xlarge); peak here "
                   "%.1f MiB" % rg["rss_mib"]["peak_vmhwm"])
            if self.s.on_images and self.s.rollouts >= 1000:
                target("1,000 new rollouts already on their images: all Succeeded",
                       rg["wall_s"] if rg["completed"] == self.s.rollouts else None, "<= 30 s",
                       rg["completed"] == self.s.rollouts and rg["wall_s"] <= 30.0,
                       "%d/%d Succeeded" % (rg["completed"], self.s.rollouts))
            lists = rg["idle"]["controller_lists"]
            target("no periodic full re-lists (controller LISTs in the idle window)", lists,
                   "0 in %.0f s" % rg["idle"]["seconds"], lists == 0)
            p = rg["patches_per_target"]
            target("at most one patch per target per revision (generation delta)", p["max"],
                   "<= 1", p["max"] is not None and p["max"] <= 1,
                   "histogram %s" % p["histogram"])
        r["targets"] = t

    def table(self):
        r = self.result
        rg, bl = r.get("rollgate"), r.get("baseline")
        lines = []
        m = r["machine"]
        lines.append("Rollgate benchmark, preset %s: %s" % (r["preset"], json.dumps(r["scenario"])))
        lines.append("machine: %d x %s, %.1f GiB, %s; contention at start: %s, at end: %s" % (
            m["nproc"], m["model_name"], m["memory_gib"], m["os"],
            r["contention"]["start"], r["contention"].get("end")))
        lines.append("order: %s" % " -> ".join(r["order"]))
        lines.append("")
        w = "%-52s %14s %14s"
        lines.append(w % ("", "(a) Rollgate", "(b) kubectl"))

        def g(d, *path, fmt="%.3f"):
            for p in path:
                if d is None:
                    return "-"
                d = d.get(p)
            if d is None:
                return "-"
            return fmt % d if isinstance(d, (int, float)) else str(d)

        def row(label, a, b):
            lines.append(w % (label, a, b))
        row("wall time (s)", g(rg, "wall_s", fmt="%.2f"), g(bl, "wall_s", fmt="%.2f"))
        row("rollouts completed", g(rg, "completed", fmt="%d"), g(bl, "completed", fmt="%d"))
        row("per-rollout duration p50 (s)", g(rg, "rollout_duration_s", "p50", fmt="%.2f"),
            g(bl, "rollout_duration_s", "p50", fmt="%.2f"))
        row("per-rollout duration p99 (s)", g(rg, "rollout_duration_s", "p99", fmt="%.2f"),
            g(bl, "rollout_duration_s", "p99", fmt="%.2f"))
        row("start -> first patch p50 / p99 (ms)",
            _ms2(rg, "creation_to_first_patch"), _ms2(bl, "job_start_to_first_patch"))
        row("env N ready -> env N+1 first patch p50 / p99 (ms)",
            _ms2(rg, "env_ready_to_next_env_patch"), _ms2(bl, "env_ready_to_next_env_patch"))
        row("env first patch -> env rolled out p50 / p99 (ms)",
            _ms2(rg, "env_first_patch_to_env_ready"), _ms2(bl, "env_first_patch_to_env_ready"))
        row("status eligible -> first patch p50 / p99 (ms)",
            _ms2(rg, "status_eligible_to_first_patch"), "-")
        row("client CPU (s): controller / all kubectl", g(rg, "cpu_s", "run", fmt="%.2f"),
            g(bl, "kubectl_cpu_s", fmt="%.2f"))
        row("client API requests per rollout", g(rg, "kube_requests", "per_completed_rollout",
                                                 fmt="%.1f"),
            g(bl, "kubectl_requests_est", "per_completed_rollout", fmt="%.1f") + "*")
        row("apiserver requests in window (all clients)",
            g(rg, "apiserver_requests_window", "total", fmt="%d"),
            g(bl, "apiserver_requests_window", "total", fmt="%d"))
        for comp in ("kube-apiserver", "etcd", "kube-controller-manager", "kwok"):
            row("%s CPU in window (s)" % comp, g(rg, "control_plane_cpu_s", comp, fmt="%.1f"),
                g(bl, "control_plane_cpu_s", comp, fmt="%.1f"))
        row("patches per target (generation delta histogram)",
            g(rg, "patches_per_target", "histogram"), g(bl, "patches_per_target", "histogram"))
        if rg and bl:
            lines.append("ratio (a)/(b): %.3f" % r["ratio_rollgate_over_baseline"])
        lines.append("* kubectl requests estimated from apiserver_request_total (no client label)")
        if rg:
            lines.append("")
            h = rg["controller_histogram"]
            lines.append("controller: ready in %.2fs; RSS MiB peak(VmHWM) %s, run median %s, "
                         "idle median %s; CPU s run %s (%s/rollout), idle %s" % (
                             rg["startup"]["ready_s"], rg["rss_mib"]["peak_vmhwm"],
                             rg["rss_mib"]["run_median"], rg["rss_mib"]["idle_median"],
                             rg["cpu_s"]["run"], rg["cpu_s"]["per_completed_rollout"],
                             rg["cpu_s"]["idle"]))
            lines.append("controller requests by verb (run): %s; idle %ss: %s" % (
                rg["kube_requests"]["by_verb"], rg["idle"]["seconds"],
                rg["idle"]["controller_requests_by_verb"] or "{}"))
            if h.get("present"):
                lines.append("rollgate_reaction_latency_seconds: n=%d p50=%s p99=%s (bucket "
                             "interpolation); share <=10ms %s, <=50ms %s" % (
                                 h["count"], _fmt_ms(h["p50_s"]), _fmt_ms(h["p99_s"]),
                                 h["share_le_10ms"], h["share_le_50ms"]))
            else:
                lines.append("rollgate_reaction_latency_seconds: absent or empty")
            prof = rg.get("profile")
            if prof:
                lines.append("profile (%s, %s): %s" % (prof.get("tool"), prof.get("file"),
                                                       prof.get("command")))
                lines.extend("  " + l for l in prof.get("top", [])[:60])
            bd = rg["rss_mib"]["idle_breakdown"]
            lines.append("idle memory (MiB): RssAnon %s, RssFile %s, threads %s; largest "
                         "mappings %s" % (bd.get("RssAnon"), bd.get("RssFile"),
                                          bd.get("Threads"), bd.get("top_mappings_mib")))
            lines.append("status updates per rollout (watch): p50 %s, max %s" % (
                rg["status_updates_per_rollout"].get("p50"),
                rg["status_updates_per_rollout"].get("max")))
            rd = rg["reconcile_duration"]
            if rd.get("present"):
                lines.append("rollgate_reconcile_duration_seconds: n=%d p50=%s p99=%s" % (
                    rd["count"], _fmt_ms(rd["p50_s"]), _fmt_ms(rd["p99_s"])))
        if rg:
            tl = rg.get("timeline_" + self.s.rollout_name(0)) or []
            lines.append("timeline of %s (watch, after its create request returned):"
                         % self.s.rollout_name(0))
            lines.extend("  " + x for x in tl)
        lines.append("")
        lines.append("%-70s %-12s %-14s %s" % ("target", "value", "limit", "met"))
        for t in r.get("targets", []):
            met = {True: "yes", False: "NO", None: "n/a"}[t["met"]]
            lines.append("%-70s %-12s %-14s %s%s" % (t["target"][:70], t["value"], t["limit"],
                                                     met, "  (" + t["note"] + ")" if t["note"]
                                                     else ""))
        return "\n".join(lines)

    def write(self):
        out_dir = os.path.abspath(self.args.results_dir)
        os.makedirs(out_dir, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = os.path.join(out_dir, "%s-%s.json" % (self.args.preset, stamp))
        with open(path, "w") as f:
            json.dump(self.result, f, indent=2, sort_keys=True)
            f.write("\n")
        shutil.copyfile(path, os.path.join(out_dir, "latest.json"))
        svg = plot_svg(self.result)
        if svg:
            with open(path[:-len(".json")] + ".svg", "w") as f:
                f.write(svg)
            with open(os.path.join(out_dir, "latest.svg"), "w") as f:
                f.write(svg)
        return path

    def run(self):
        a = self.args
        order = [x.strip() for x in a.order.split(",") if x.strip()]
        if a.no_baseline:
            order = [x for x in order if x != "baseline"]
        self.result["order"] = order
        self.result["contention"] = {"start": contention()}
        if not os.access(self.controller_bin, os.X_OK) and "rollgate" in order:
            raise SystemExit("bench: %s is missing; build it first (make build)"
                             % self.controller_bin)
        try:
            if "rollgate" in order:
                # A private copy: the build tree may be rebuilt while the benchmark runs.
                copy = os.path.join(self.work, "rollgate-controller")
                shutil.copy2(self.controller_bin, copy)
                st = os.stat(self.controller_bin)
                self.result["controller_binary"] = {
                    "path": self.controller_bin, "size": st.st_size,
                    "mtime": datetime.datetime.fromtimestamp(
                        st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")}
                self.controller_bin = copy
            self.setup()
            self.start_watches()
            time.sleep(a.settle_seconds)
            for c in order:
                if c == "baseline":
                    self.run_baseline()
                elif c == "rollgate":
                    self.run_rollgate()
                else:
                    raise SystemExit("bench: unknown contender %r in --order" % c)
                time.sleep(a.settle_seconds)
            self.result["contention"]["end"] = contention()
            self.result["watch_events"] = {w.name: w.events for w in self.watches}
            errs = [str(w.error) for w in self.watches if w.error]
            if errs:
                self.result["watch_errors"] = errs
            self.evaluate()
            print(self.table())
            path = self.write()
            log("results: %s (and latest.json)" % path)
        finally:
            self.stop_controller()
            for w in self.watches:
                w.stop()
            self.cluster.down()
            if getattr(self, "kube", None):
                self.kube.close()
            if a.keep_work:
                log("kept %s" % self.work)
            else:
                shutil.rmtree(self.work, ignore_errors=True)


def _changed_paths(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _changed_paths(a.get(k), b.get(k), path + "." + k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            key = x.get("name") or x.get("deployment") or x.get("type") or i \
                if isinstance(x, dict) else i
            out += _changed_paths(x, y, "%s[%s]" % (path, key))
        return out
    return [] if a == b else [path]


def _count(it):
    out = {}
    for x in it:
        out[str(x)] = out.get(str(x), 0) + 1
    return out


def _hist_summary(h):
    if h is None:
        return {"present": False}
    b, count, total = h
    if count <= 0:
        return {"present": False, "count": 0, "note": "series exported but never observed"}
    return {"present": True, "count": int(count), "mean_s": total / count,
            "p50_s": promtext.quantile(0.5, h), "p90_s": promtext.quantile(0.9, h),
            "p99_s": promtext.quantile(0.99, h),
            "share_le_10ms": round(promtext.fraction_le(h, 0.010), 3),
            "share_le_50ms": round(promtext.fraction_le(h, 0.050), 3),
            "buckets": {("+Inf" if le == float("inf") else repr(le)): int(c)
                        for le, c in sorted(b.items())}}


def _fmt_ms(v):
    return "-" if v is None else "%.1fms" % (v * 1000)


def _ms2(d, key):
    if d is None:
        return "-"
    x = d["latency_s"].get(key) or {}
    if not x.get("n"):
        return "-"
    return "%.0f / %.0f" % (x["p50"] * 1000, x["p99"] * 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small", choices=sorted(sc.PRESETS))
    ap.add_argument("--rollouts", type=int, help="K (overrides the preset)")
    ap.add_argument("--envs", type=int, help="N environments = namespaces")
    ap.add_argument("--deployments", type=int, help="M Deployments per environment and rollout")
    ap.add_argument("--min-replicas", type=int)
    ap.add_argument("--max-replicas", type=int)
    ap.add_argument("--ready-delay", default="",
                    help="pod-ready.stage.kwok.x-k8s.io/delay of every pod, e.g. 100ms (default "
                         "none)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--order", default="baseline,rollgate",
                    help="contenders in run order (default baseline,rollgate)")
    ap.add_argument("--no-baseline", action="store_true", help="run Rollgate only")
    ap.add_argument("--baseline-parallel", type=int, default=16,
                    help="rollouts the kubectl baseline runs at once (xargs -P)")
    ap.add_argument("--kube-qps", type=int, default=200)
    ap.add_argument("--kube-burst", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--controller-log-level", default="info")
    ap.add_argument("--profile", default="none", choices=["none", "perf", "heaptrack"],
                    help="profile the controller (perf: CPU over the run and idle window; "
                         "heaptrack: every allocation from its start; slows it down, so its "
                         "figures are not comparable) and keep the top of the report")
    ap.add_argument("--controller-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the controller (e.g. MALLOC_ARENA_MAX=2)")
    ap.add_argument("--kcm-qps", type=int, default=200,
                    help="--kube-api-qps of the controller-manager and scheduler (0: leave "
                         "cluster.sh's defaults)")
    ap.add_argument("--create-threads", type=int, default=8)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--settle-seconds", type=float, default=3.0)
    ap.add_argument("--sample-period", type=float, default=0.2)
    ap.add_argument("--setup-timeout", type=int, default=1200)
    ap.add_argument("--run-timeout", type=int, default=1800)
    ap.add_argument("--cluster-dir", help="use (or create and keep) the cluster in this directory")
    ap.add_argument("--keep-cluster", action="store_true")
    ap.add_argument("--keep-work", action="store_true")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.cluster_dir and os.path.exists(os.path.join(args.cluster_dir, "kubeconfig")):
        log("note: reusing a cluster; the Deployments and rollouts must not exist yet")

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    b = Bench(args)
    try:
        b.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
