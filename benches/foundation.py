#!/usr/bin/env python3
"""Foundation figures for BENCHMARKS.md: config validation time, start-to-READY time,
SIGTERM-to-exit time and idle memory of the daemon, against real parts (mosquitto on loopback,
four `croupier simulate` devices on pseudo-terminals, a unix socket as NOTIFY_SOCKET).

Usage: python3 benches/foundation.py [--runs N] [--bin target/release/croupier]
Prints median and p99 of each figure. Build the release binary first (`cargo build --release`).
"""
import argparse, os, signal, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def pct(values, q):
    v = sorted(values); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]

def summary(name, values, unit="ms"):
    print(f"{name:<34} n={len(values):<4} median={statistics.median(values):8.2f} {unit}   p99={pct(values, 0.99):8.2f} {unit}   max={max(values):8.2f} {unit}")

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bin", default="target/release/croupier")
    args = ap.parse_args()
    exe = os.path.abspath(args.bin)
    tmp = tempfile.TemporaryDirectory()
    d = tmp.name
    port = free_port()
    with open(f"{d}/mosquitto.conf", "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
    procs = [subprocess.Popen(["/usr/sbin/mosquitto", "-c", f"{d}/mosquitto.conf"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    roles = [("wheel", "cammegh"), ("shoe", "line"), ("rfid", "ascii"), ("pedal", "serial")]
    for role, _ in roles:
        procs.append(subprocess.Popen([exe, "simulate", role, "--pace", "5", "--link", f"{d}/{role}"],
                                      env={**env, "CROUPIER_LOG": "warn"}, stdout=subprocess.DEVNULL))
    try:
        deadline = time.time() + 10
        while not all(os.path.lexists(f"{d}/{r}") for r, _ in roles) and time.time() < deadline:
            time.sleep(0.02)
        http = free_port()
        cfg = f"{d}/table.toml"
        with open(cfg, "w") as f:
            f.write(f'[table]\nstudio = "bench"\nid = "t1"\ngame = "roulette"\n'
                    f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n[storage]\ndir = "state"\n'
                    f'[http]\nlisten = "127.0.0.1:{http}"\n[log]\nfilter = "warn"\n')
            for role, driver in roles:
                f.write(f'[[device]]\nrole = "{role}"\ndriver = "{driver}"\nport = "{d}/{role}"\n')

        validate = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([exe, "validate", "--config", cfg], check=True, stdout=subprocess.DEVNULL)
            validate.append((time.perf_counter() - t) * 1000)

        ready, stop, rss = [], [], []
        for i in range(args.runs):
            sock_path = f"{d}/notify-{i}.sock"
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sock_path); s.settimeout(15)
            t = time.perf_counter()
            p = subprocess.Popen([exe, "run", "--config", cfg], env={**env, "NOTIFY_SOCKET": sock_path},
                                 stderr=subprocess.DEVNULL)
            while True:
                msg = s.recv(4096).decode()
                if "READY=1" in msg:
                    ready.append((time.perf_counter() - t) * 1000)
                    if "4/4 devices up" not in msg:
                        print("warning: READY without every device:", msg, file=sys.stderr)
                    break
            if i < 5:
                time.sleep(2)
                rss.append(rss_kib(p.pid) / 1024)
            t = time.perf_counter()
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)
            stop.append((time.perf_counter() - t) * 1000)
            s.close(); os.unlink(sock_path)

        print(f"# {time.strftime('%Y-%m-%d')} {os.uname().nodename} {os.cpu_count()} cores; bin {args.bin}")
        summary("validate (process, whole config)", validate)
        summary("start -> READY=1 (4 devices, broker)", ready)
        summary("SIGTERM -> exit (clean stop)", stop)
        summary("RSS 2 s after READY", rss, "MiB")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try: p.wait(timeout=5)
            except subprocess.TimeoutExpired: p.kill()

if __name__ == "__main__":
    main()
