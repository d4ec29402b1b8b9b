#!/usr/bin/env python3
"""Uplink figures for BENCHMARKS.md, against real parts: mosquitto on loopback, the pedal
simulator (`croupier simulate pedal --script …`) on a pseudo-terminal, the daemon
(`croupier run`) and `mosquitto_sub` subscribers.

1. Input-to-subscriber latency: a pedal press every 200 ms; latency = the subscriber's receive
   time (mosquitto_sub `%U`, CLOCK_REALTIME) - the event's own `utc` (the input's stamp: read
   time minus the byte's transmission time at 9600 baud). Side by side, in the same window: a
   mosquitto_pub -> mosquitto_sub baseline over the same broker (QoS 1, each message carrying
   its send time, one long-lived publisher fed line by line).
2. Sustained events/s: a pedal that debounces in firmware (`debounce = "0ms"`, 115200 baud)
   written every 1 ms: one press per write for 20 s (steady), then 4 per write for 10 s (a
   flood beyond what the table keeps up with); events/s appended to
   `state/events/events.jsonl` and delivered to the subscriber, per second, and the table's
   `missed_observations`.
3. Outbox replay: the daemon runs with the broker down until a backlog of events is in its log;
   then the broker comes up with a subscriber (persistent session registered beforehand, so
   nothing can be missed); time from the daemon's `online` status, and from the broker
   listening, until the subscriber has every seq, in order. Backlogs of 400 and 10 000 events
   on an empty log, and 400 again on the steady run's log (its whole history is re-read).
4. RSS (VmRSS) of the daemon: at READY, connected and idle, during the sustained runs, with
   the broker unreachable, with a backlog.

Usage: python3 benches/uplink.py [--bin target/release/croupier] [--presses 200]
       [--sustain 20] [--steady 1] [--flood 10] [--backlogs 400,10000]
Build the release binary first (`cargo build --release --locked`). Takes about 100 s.
Every process it starts is stopped on the way out, on failure, Ctrl-C or SIGTERM too.
"""
import argparse, calendar, getpass, json, os, platform, signal, socket, statistics, subprocess
import sys, tempfile, time, urllib.request

STUDIO, TABLE = "bench", "t1"
PREFIX = f"croupier/v1/{STUDIO}/{TABLE}"
BYTE_NS_9600 = 10 * 1_000_000_000 // 9600  # one 8N1 byte at 9600 baud: 1.04 ms


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def pct(values, q):
    v = sorted(values); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def utc_ns(text):
    """`2026-11-21T14:23:12.000123Z` -> ns since the epoch."""
    date, frac = text.rstrip("Z").split(".") if "." in text else (text.rstrip("Z"), "0")
    secs = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def u_ns(text):
    """mosquitto_sub's `%U` (`1470818943.786368637`) -> ns."""
    s, _, f = text.partition(".")
    return int(s) * 1_000_000_000 + int(f.ljust(9, "0")[:9])


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or VmHWM, the peak) of a process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until(cond, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return True
    except OSError:
        return False


class LineCounter:
    """Counts the lines of a growing file without rereading it."""
    def __init__(self, path):
        self.path, self.offset, self.lines = path, 0, 0

    def count(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return self.lines


def read_sub(path):
    """Lines of a `mosquitto_sub -F '%U %t %p'` file as (recv_ns, topic, payload)."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    try:
                        out.append((u_ns(parts[0]), parts[1], parts[2]))
                    except ValueError:
                        pass
    except FileNotFoundError:
        pass
    return out


def sub_events(path):
    """The events a subscriber got, deduplicated by event_id: [(recv_ns, envelope)] in arrival
    order, and the number of duplicates."""
    seen, events, dups = set(), [], 0
    for recv, topic, payload in read_sub(path):
        if not topic.endswith("/events"):
            continue
        try:
            env = json.loads(payload)
        except ValueError:
            continue
        if env.get("event_id") in seen:
            dups += 1
            continue
        seen.add(env.get("event_id"))
        events.append((recv, env))
    return events, dups


def log_events(state_dir):
    out = []
    try:
        with open(os.path.join(state_dir, "events", "events.jsonl")) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


class Bench:
    def __init__(self, exe, root):
        self.exe, self.root, self.procs = exe, root, []
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                                 "CROUPIER_LOG", "RUST_LOG")}

    def spawn(self, args, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=None, stderr=None):
        p = subprocess.Popen(args, stdin=stdin, stdout=stdout,
                             stderr=stderr if stderr is not None else subprocess.DEVNULL,
                             env=env or self.env)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        self.procs = []

    def broker(self, port, persist_dir=None):
        conf = os.path.join(self.root, f"mosquitto-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
            # As root, mosquitto drops to the `mosquitto` user unless told otherwise; that user
            # could not write the persistence file in our private temporary directory.
            f.write(f"user {getpass.getuser()}\n")
            if persist_dir:
                f.write(f"persistence true\npersistence_location {persist_dir}/\n"
                        f"max_queued_messages 1000000\nlog_dest file {persist_dir}/broker.log\n"
                        "log_type notice\nconnection_messages true\n")
            else:
                f.write("persistence false\n")
        p = self.spawn(["/usr/sbin/mosquitto", "-c", conf])
        if not wait_until(lambda: listening(port), 10, 0.002):
            raise RuntimeError("mosquitto did not start listening")
        return p

    def subscriber(self, port, out, topics, client_id=None):
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-F", "%U %t %p"]
        if client_id:
            args += ["-c", "-i", client_id]
        for t in topics:
            args += ["-t", t]
        return self.spawn(args, stdout=open(out, "w"))

    def pedal(self, script_lines, link):
        script = link + ".script"
        with open(script, "w") as f:
            f.write("\n".join(script_lines) + "\n")
        p = self.spawn([self.exe, "simulate", "pedal", "--script", script, "--link", link],
                       env={**self.env, "CROUPIER_LOG": "warn"})
        if not wait_until(lambda: os.path.lexists(link), 10):
            raise RuntimeError("the pedal simulator made no link")
        return p

    def config(self, name, broker_port, pedal_link, fast_pedal=False):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        http = free_port()
        pedal = f'[[device]]\nrole = "pedal"\ndriver = "serial"\nport = "{pedal_link}"\n'
        if fast_pedal:
            # A pedal that debounces in its own firmware, on a fast line: every byte a press.
            pedal += 'baud = 115200\ndebounce = "0ms"\nlong_press = "0s"\ndouble_press = "0s"\n'
        cfg = os.path.join(d, "table.toml")
        with open(cfg, "w") as f:
            f.write(f'[table]\nstudio = "{STUDIO}"\nid = "{TABLE}"\ngame = "roulette"\n\n'
                    f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n\n'
                    f'[storage]\ndir = "state"\n\n[http]\nlisten = "127.0.0.1:{http}"\n\n'
                    f'[log]\nfilter = "warn"\n\n'
                    '[daemon]\nshutdown_timeout = "3s"\nready_timeout = "20s"\n'
                    'restart_backoff_min = "50ms"\nrestart_backoff_max = "300ms"\n\n' + pedal)
        return cfg, http, os.path.join(d, "state")

    def daemon(self, cfg, notify=False):
        """The daemon; with `notify`, also the seconds from spawning it to READY=1."""
        log = open(cfg + ".log", "w")
        if not notify:
            return self.spawn([self.exe, "run", "--config", cfg], stderr=log)
        path = cfg + ".notify"
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(30)
        try:
            t = time.monotonic()
            p = self.spawn([self.exe, "run", "--config", cfg], stderr=log,
                           env={**self.env, "NOTIFY_SOCKET": path})
            while "READY=1" not in sock.recv(4096).decode(errors="replace"):
                pass
            return p, time.monotonic() - t
        finally:
            sock.close()


def status_json(http):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=1) as r:
            return json.load(r)
    except (OSError, ValueError):
        return {}


def uplink_up(http):
    try:
        return status_json(http)["components"]["uplink"]["state"] == "up"
    except (KeyError, TypeError):
        return False


def cpu_s(pid):
    """User + system CPU seconds of a process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def summary(name, values_ns, unit="ms", scale=1e6):
    v = [x / scale for x in values_ns]
    line = (f"  {name:<42} n={len(v):<5} p50={statistics.median(v):8.3f} {unit}  "
            f"p99={pct(v, 0.99):8.3f} {unit}  min={min(v):8.3f}  max={max(v):8.3f}")
    print(line)
    return statistics.median(v), pct(v, 0.99)


def check_order(seqs, expect):
    """Problems with a deduplicated seq stream that should be exactly 1..expect in order."""
    problems = []
    if seqs != sorted(seqs):
        problems.append("out of order")
    missing = set(range(1, expect + 1)) - set(seqs)
    if missing:
        problems.append(f"missing {len(missing)} seq(s), e.g. {sorted(missing)[:5]}")
    return problems


# ------------------------------------------------------------------------------------------
# 1 + 4 (idle): input-to-subscriber latency beside the mosquitto baseline
# ------------------------------------------------------------------------------------------

def latency(b, args, results):
    """Returns the port of the broker it started (left running for the sustained runs)."""
    d = b.root
    port = free_port()
    b.broker(port)
    ev_file, base_file = f"{d}/events.sub", f"{d}/baseline.sub"
    subs = [b.subscriber(port, ev_file, [f"{PREFIX}/events"]),
            b.subscriber(port, base_file, ["bench/baseline"])]
    pub = b.spawn(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l",
                   "-t", "bench/baseline"], stdin=subprocess.PIPE)
    link = f"{d}/pedal"
    lead = 3.0
    # The default pedal (20 ms debounce, like a table's), a press every 200 ms.
    pedal = b.pedal([f"{lead}s press"] + ["200ms press"] * (args.presses - 1), link)
    t_pedal = time.monotonic()
    cfg, http, state = b.config("table", port, link)
    daemon = b.daemon(cfg)
    if not wait_until(lambda: uplink_up(http), 15):
        raise RuntimeError("the daemon's uplink did not come up")
    if time.monotonic() - t_pedal > lead - 0.2:
        print("warning: the daemon came up late; early presses may be lost", file=sys.stderr)
    time.sleep(0.3)
    # The RSS of a daemon that is up, connected and has done nothing yet.
    results["rss_fresh_kib"] = rss_kib(daemon.pid)

    # Baseline, interleaved with the presses (100 ms out of phase), over the same window.
    time.sleep(max(0.0, lead - (time.monotonic() - t_pedal)) + 0.1)
    for _ in range(args.presses):
        t0 = time.monotonic()
        pub.stdin.write(f"{time.time_ns()}\n".encode()); pub.stdin.flush()
        time.sleep(max(0.0, 0.2 - (time.monotonic() - t0)))
    pedal.wait(timeout=30)
    b.procs.remove(pedal)
    pub.stdin.close(); pub.wait(timeout=5); b.procs.remove(pub)

    pedal_events = [e for e in log_events(state) if e.get("source") == "pedal"]
    wait_until(lambda: len(sub_events(ev_file)[0]) >= len(log_events(state)), 10, 0.05)
    got, dups = sub_events(ev_file)
    pressed = [(recv - utc_ns(env["utc"]), env) for recv, env in got if env.get("source") == "pedal"]
    slowest = sorted((ns / 1e6, env["seq"], env["type"]) for ns, env in pressed)[-3:]
    base = [recv - int(payload) for recv, topic, payload in read_sub(base_file)
            if topic == "bench/baseline" and payload.isdigit()]
    kinds = {}
    for e in pedal_events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    results["latency"] = dict(pressed=args.presses, events=len(pedal_events), kinds=kinds,
                              received=len(pressed), dups=dups, lat=[ns for ns, _ in pressed],
                              base=base, slowest=slowest)

    # Idle: connected, no input for a few seconds.
    time.sleep(2)
    results["rss_idle_kib"] = [rss_kib(daemon.pid)]
    for _ in range(4):
        time.sleep(0.5); results["rss_idle_kib"].append(rss_kib(daemon.pid))
    b.stop(daemon)
    for s in subs:
        b.stop(s)
    return port


# ------------------------------------------------------------------------------------------
# 2 + 4 (loaded): sustained events/s
# ------------------------------------------------------------------------------------------

def sustained(b, port, name, per_write, seconds):
    """A firmware-debounced pedal pressed `per_write` times every 1 ms for `seconds`, on a
    fresh table with a fresh subscriber."""
    d = os.path.join(b.root, name + "-run")
    os.makedirs(d)
    link, ev = os.path.join(d, "pedal"), os.path.join(d, "events.sub")
    sub = b.subscriber(port, ev, [f"{PREFIX}/events"])
    writes = int(seconds * 1000)
    pedal = b.pedal(["1s hex 50"] + ["1ms hex " + " ".join(["50"] * per_write)] * writes, link)
    t_pedal = time.monotonic()
    cfg, http, state = b.config(name, port, link, fast_pedal=True)
    daemon = b.daemon(cfg)
    wait_until(lambda: uplink_up(http), 15)
    counter = LineCounter(os.path.join(state, "events", "events.jsonl"))
    cpu0 = cpu_s(daemon.pid)
    rss = []
    while pedal.poll() is None and time.monotonic() - t_pedal < seconds + 30:
        if counter.count() > 10:
            rss.append(rss_kib(daemon.pid))
        time.sleep(0.5)
    t_end_input = time.monotonic()
    b.procs.remove(pedal)
    cpu1 = cpu_s(daemon.pid)
    time.sleep(0.2)
    components = status_json(http).get("components", {})
    pedal_counters = components.get("pedal", {}).get("counters") or {}
    missed = (components.get("table", {}).get("counters") or {}).get("missed_observations", 0)
    caught_up = wait_until(lambda: len(sub_events(ev)[0]) >= counter.count(), 60, 0.05)
    t_caught = time.monotonic()
    rss_after = rss_kib(daemon.pid)
    logs = log_events(state)
    got, dups = sub_events(ev)
    # Per-second rates from the event stamps (log) and the receive stamps (subscriber), over
    # the whole seconds in which the pedal was pressing.
    stamps = sorted(utc_ns(e["utc"]) for e in logs if e.get("source") == "pedal")
    # The pedal's events only: its unplugging at the end adds a device.down a second later.
    recvs = sorted(r for r, env in got if env.get("source") == "pedal")
    first, last = stamps[1], stamps[-1]  # [0] is the lead press

    def per_second(values, t0):
        bins = [0] * int((values[-1] - t0) // 1_000_000_000) if values else []
        for v in values:
            i = int((v - t0) // 1_000_000_000)
            if 0 <= i < len(bins):
                bins[i] += 1
        return bins
    r = dict(
        per_write=per_write, offered=per_write * writes, logged=len(logs), pedal_events=len(stamps),
        delivered=len(got), dups=dups, caught_up=bool(caught_up), catch_up_s=t_caught - t_end_input,
        log_rate=(len(stamps) - 2) / ((last - first) / 1e9),
        sub_rate=(len(recvs) - 2) / ((recvs[-1] - recvs[1]) / 1e9) if len(recvs) > 2 else 0,
        per_sec_log=per_second(stamps[1:], first), per_sec_sub=per_second(recvs[1:], recvs[1] if len(recvs) > 1 else 0),
        duration_s=(last - first) / 1e9, lag_end_s=(recvs[-1] - last) / 1e9 if recvs else 0.0,
        problems=check_order([env["seq"] for _, env in got], len(logs)),
        rss_during_kib=rss, rss_after_kib=rss_after, rss_peak_kib=rss_kib(daemon.pid, "VmHWM"),
        cpu_s=cpu1 - cpu0, presses_seen=pedal_counters.get("observations", 0) // 2,
        missed_observations=missed)
    b.stop(daemon)
    b.stop(sub)
    return r


# ------------------------------------------------------------------------------------------
# 3: outbox replay after a broker outage
# ------------------------------------------------------------------------------------------

def replay(b, backlog, results, table=None):
    """A backlog of `backlog` events, made and replayed by a fresh table, or by the table of
    the directory `table` (whose event log already holds that run's history)."""
    history = 0
    if table:
        history = LineCounter(os.path.join(b.root, table, "state", "events", "events.jsonl")).count()
    d = os.path.join(b.root, f"replay-{backlog}-{history}")
    os.makedirs(d)
    port = free_port()
    persist = os.path.join(d, "broker")
    os.makedirs(persist)
    events_topic, status_topic = f"{PREFIX}/events", f"{PREFIX}/status"
    sub_id = f"bench-replay-{backlog}"
    # Register the subscriber's persistent session, then take the broker down.
    broker = b.broker(port, persist)
    reg = b.spawn(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c", "-i", sub_id,
                   "-t", events_topic, "-t", status_topic, "-E"])
    reg.wait(timeout=10); b.procs.remove(reg)
    b.stop(broker)
    # The daemon runs with nothing on its broker's port while the pedal makes the backlog.
    link = os.path.join(d, "pedal")
    # More presses than needed (a pseudo-terminal delivers bursts that the pedal's timing
    # folds together); the pedal is stopped once the log holds the backlog.
    # Small backlogs slowly, to stop close to the mark; large ones at 2 presses per ms, under
    # what the table keeps up with (a flood makes it miss observations: the log grows slower).
    per_write = 1 if backlog < 2000 else 2
    writes = 3 * backlog // per_write + 100
    pedal = b.pedal(["1500ms hex 50"] + ["1ms hex " + " ".join(["50"] * per_write)] * writes, link)
    cfg, http, state = b.config(table or f"replay-{backlog}", port, link, fast_pedal=True)
    t_start = time.monotonic()
    daemon, ready_s = b.daemon(cfg, notify=True)
    rss_ready = rss_kib(daemon.pid)
    # Broker unreachable, no input yet (the pedal's first press comes 1.5 s after it started).
    time.sleep(max(0.0, 1.2 - (time.monotonic() - t_start)))
    rss_down = rss_kib(daemon.pid)
    counter = LineCounter(os.path.join(state, "events", "events.jsonl"))
    wait_until(lambda: counter.count() >= history + backlog or pedal.poll() is not None, 120, 0.002)
    b.stop(pedal)
    # Settle: the log stops growing.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        n = counter.count()
        if n != last:
            last, stable_since = n, time.monotonic()
        time.sleep(0.05)
    total = counter.count()
    n = total - history
    rss_backlog = rss_kib(daemon.pid)
    # Broker up, subscriber straight after it (the persistent session holds what comes first).
    t_up_mono = time.monotonic()
    t_up_ns = time.time_ns()
    broker = b.broker(port, persist)
    t_listen_ns = time.time_ns()
    out = os.path.join(d, "replay.sub")
    b.subscriber(port, out, [events_topic, status_topic], client_id=sub_id)

    def complete():
        got, _ = sub_events(out)
        return len({env["seq"] for _, env in got}) >= n
    done = wait_until(complete, 120, 0.02)
    got, dups = sub_events(out)
    online = [r for r, t, p in read_sub(out) if t == status_topic and '"online"' in p]
    recvs = [r for r, _ in got]
    order = []
    try:
        with open(os.path.join(persist, "broker.log")) as f:
            order = [line.split(" as ")[1].split()[0] for line in f
                     if "New client connected" in line and " as " in line]
    except OSError:
        pass
    # Who connected first after the restart (the registration run is the first entry).
    after = order[1:]
    sub_first = bool(after) and after[0] == sub_id
    r = dict(backlog=n, done=bool(done), dups=dups,
             listen_ms=(t_listen_ns - t_up_ns) / 1e6,
             up_to_all_s=(max(recvs) - t_listen_ns) / 1e9 if recvs else None,
             online_to_all_s=(max(recvs) - online[0]) / 1e9 if recvs and online else None,
             first_to_last_s=(max(recvs) - min(recvs)) / 1e9 if len(recvs) > 1 else None,
             listen_to_online_ms=(online[0] - t_listen_ns) / 1e6 if online else None,
             subscriber_connected_first=sub_first,
             problems=check_order([env["seq"] - history for _, env in got], n),
             history=history, ready_s=ready_s, rss_ready_kib=rss_ready, rss_down_kib=rss_down, rss_backlog_kib=rss_backlog, rss_after_kib=rss_kib(daemon.pid),
             rss_peak_kib=rss_kib(daemon.pid, "VmHWM"),
             wall_s=time.monotonic() - t_up_mono)
    r["rate_online"] = n / r["online_to_all_s"] if r["online_to_all_s"] else None
    r["rate_up"] = n / r["up_to_all_s"] if r["up_to_all_s"] else None
    results.setdefault("replay", []).append(r)
    b.stop(daemon)
    b.stop(broker)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/croupier")
    ap.add_argument("--presses", type=int, default=200, help="pedal presses, 200 ms apart, for the latency")
    ap.add_argument("--sustain", type=float, default=20, help="seconds of the steady run")
    ap.add_argument("--steady", type=int, default=1, help="presses per 1 ms write in the steady run")
    ap.add_argument("--flood", type=float, default=10, help="seconds of the flood (4 presses per 1 ms write)")
    ap.add_argument("--backlogs", default="400,10000", help="backlog sizes (events) to replay")
    args = ap.parse_args()
    exe = os.path.abspath(args.bin)
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: cargo build --release --locked")
    # SIGTERM too unwinds through the `finally` below, which stops every process started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.TemporaryDirectory(prefix="croupier-uplink-bench-")
    b = Bench(exe, tmp.name)
    results = {"sustained": []}
    started = time.monotonic()
    backlogs = [int(x) for x in args.backlogs.split(",") if x]
    try:
        port = latency(b, args, results)
        results["sustained"].append(sustained(b, port, "steady", args.steady, args.sustain))
        if args.flood > 0:
            results["sustained"].append(sustained(b, port, "flood", 4, args.flood))
        b.cleanup()
        for n in backlogs:
            replay(b, n, results)
        if backlogs:
            # The smallest backlog again, on a table whose event log holds the steady run.
            replay(b, backlogs[0], results, "steady")
    finally:
        b.cleanup()
        tmp.cleanup()
    report(args, results, time.monotonic() - started)


def report(args, results, elapsed):
    print(f"# uplink benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {elapsed:.0f} s")
    print(f"# {' '.join(platform.uname())}; nproc {os.cpu_count()}; bin {args.bin}")
    L = results["latency"]
    print(f"\n1. input-to-subscriber latency ({L['pressed']} presses 200 ms apart, default 20 ms debounce; "
          f"events {L['events']} {L['kinds']}, received {L['received']}, duplicates {L['dups']})")
    p50, p99 = summary("pedal press -> subscriber (recv - event utc)", L["lat"])
    b50, b99 = summary("baseline mosquitto_pub -> mosquitto_sub", L["base"])
    summary("  same, minus the 1 byte at 9600 baud", [x - BYTE_NS_9600 for x in L["lat"]])
    print(f"  ratio pedal/baseline: p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x")
    print("  slowest (ms, seq, type): " + ", ".join(f"{ms:.1f} #{seq} {kind}" for ms, seq, kind in L["slowest"]))
    print("\n2. sustained events/s (firmware-debounced pedal at 115200 baud, a write every 1 ms)")
    for S in results["sustained"]:
        print(f"  {S['per_write']} press(es) per write, {S['duration_s']:.1f} s, {S['offered']} presses offered, "
              f"{S['presses_seen']} seen by the pedal driver, table missed_observations {S['missed_observations']}")
        print(f"    logged {S['logged']} events ({S['pedal_events']} from the pedal), delivered {S['delivered']}"
              f" (+{S['dups']} duplicates), order/gaps: {S['problems'] or 'ok'}; subscriber caught up: "
              f"{S['caught_up']}, {S['catch_up_s']:.2f} s after the input ended")
        pl, ps = S["per_sec_log"], S["per_sec_sub"]
        print(f"    event log:  {S['log_rate']:6.0f} events/s overall; per second p50 "
              f"{statistics.median(pl) if pl else 0:.0f}, min {min(pl, default=0)}, max {max(pl, default=0)}")
        print(f"    subscriber: {S['sub_rate']:6.0f} events/s overall; per second p50 "
              f"{statistics.median(ps) if ps else 0:.0f}, min {min(ps, default=0)}, max {max(ps, default=0)};"
              f" the last press's event arrived {S['lag_end_s'] * 1000:.1f} ms after its stamp")
        print(f"    per second, log:        {pl}")
        print(f"    per second, subscriber: {ps}")
        dr = S["rss_during_kib"]
        print(f"    daemon CPU {S['cpu_s']:.1f} s ({S['cpu_s'] / max(1, S['logged']) * 1e6:.0f} us per event); RSS during "
              f"p50 {statistics.median(dr) / 1024 if dr else 0:.1f} MiB, max {max(dr, default=0) / 1024:.1f} MiB; "
              f"after {S['rss_after_kib'] / 1024:.1f} MiB; peak (VmHWM) {S['rss_peak_kib'] / 1024:.1f} MiB")
    print("\n3. outbox replay after a broker outage")
    for r in results.get("replay", []):
        print(f"  backlog {r['backlog']:6d} (log already held {r['history']} acknowledged events): complete {r['done']}, "
              f"order/gaps {r['problems'] or 'ok'}, duplicates {r['dups']}, subscriber connected before the daemon: "
              f"{r['subscriber_connected_first']}")
        print(f"    daemon start -> READY {r['ready_s'] * 1000:.0f} ms, RSS at READY {r['rss_ready_kib'] / 1024:.1f} MiB,"
              f" 1.2 s after start (broker unreachable, no new event yet) {r['rss_down_kib'] / 1024:.1f} MiB")
        if r["online_to_all_s"]:
            print(f"    broker listening -> daemon's `online` at subscriber {r['listen_to_online_ms']:.0f} ms "
                  f"(reconnect backoff 50-300 ms)")
            print(f"    `online` -> last event at subscriber {r['online_to_all_s'] * 1000:.0f} ms = "
                  f"{r['rate_online']:.0f} events/s; broker listening -> all: {r['up_to_all_s'] * 1000:.0f} ms "
                  f"= {r['rate_up']:.0f} events/s")
        print(f"    RSS with the backlog (broker down) {r['rss_backlog_kib'] / 1024:.1f} MiB, after the replay "
              f"{r['rss_after_kib'] / 1024:.1f} MiB, peak (VmHWM) {r['rss_peak_kib'] / 1024:.1f} MiB")
    print("\n4. RSS (VmRSS)")
    print(f"  connected, before any event       {results['rss_fresh_kib'] / 1024:.1f} MiB")
    idle = results["rss_idle_kib"]
    print(f"  idle after {L['events']} events          {statistics.median(idle) / 1024:.1f} MiB (median of {len(idle)})")
    print("  during the sustained runs and with a backlog: above")


if __name__ == "__main__":
    main()
