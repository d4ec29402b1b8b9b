#!/usr/bin/env python3
"""Video figures for BENCHMARKS.md, against real parts: the daemon (`croupier run`) with a test
camera (videotestsrc through the same capture/encode path a V4L2 or RTSP camera takes), and
Debian's headless Chromium as the viewer (tests/browser/*.mjs, playwright-core), run in a
network namespace joined to the host by a veth pair (libnice gathers no loopback candidates).

1. CPU of the daemon per camera, x264 (superfast, zerolatency) at 720p30 and 1080p30 with the
   overlay, LL-HLS and the recording on: utime+stime of the daemon from /proc over a window,
   as % of one core, with 0 viewers, then while 1, 2 and 4 WebRTC viewers watch. The extra per
   viewer is (CPU with N - CPU with 0) / N. Chromium runs on the same 2 cores and takes CPU
   from everyone: the figures are the daemon's own, measured side by side in one run.
2. Glass-to-glass latency at 720p30: each frame carries a QR code (`debugqroverlay`, the
   frame's PTS; `/status` gives UTC - PTS); Chromium decodes the QR of every presented frame
   (requestVideoFrameCallback + jsQR) and takes latency = presentation time - capture UTC.
   Over WebRTC (WHEP) and over LL-HLS.
3. LL-HLS latency as the player computes it: now - PROGRAM-DATE-TIME of the playing position.

Usage: python3 benches/video.py [--bin target/release/croupier] [--seconds 10] [--reps 2]
Build the release binary first (`cargo build --release --locked`) and install the browser
harness (`make deps`). Needs root (network namespace). Takes about 4 minutes.
Every process it starts, and the namespace, are removed on the way out, on failure too.
"""
import argparse, json, os, platform, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS, HOST_IF, NS_IF = f"crpbench{os.getpid()}", f"vhb{os.getpid() % 10000}", f"vnb{os.getpid() % 10000}"
HOST_IP, NS_IP = "10.213.7.1", "10.213.7.2"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def netns_up():
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    for c in (["ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF], ["ip", "link", "set", NS_IF, "up"],
              ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", HOST_IP]):
        sh("ip", "netns", "exec", NS, *c)


def netns_down():
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "link", "del", HOST_IF, check=False)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.load(r)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Daemon:
    def __init__(self, binary, width, height, qr=False):
        self.dir = tempfile.mkdtemp(prefix="croupier-video-bench-")
        self.port = free_port()
        cfg = f"""[table]
studio = "bench"
id = "v1"
game = "roulette"
[timing]
timecode_rate = "30"
[mqtt]
url = "mqtt://127.0.0.1:{free_port()}"
[storage]
dir = "{self.dir}/state"
[http]
listen = "0.0.0.0:{self.port}"
[[camera]]
name = "cam"
source = "test"
width = {width}
height = {height}
fps = "30"
bitrate_kbps = {2500 if height <= 720 else 5000}
qr_timestamp = {"true" if qr else "false"}
"""
        path = os.path.join(self.dir, "table.toml")
        with open(path, "w") as f:
            f.write(cfg)
        self.proc = subprocess.Popen([binary, "run", "--config", path], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"),
                                     env={**os.environ, "CROUPIER_LOG": "warn"})
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if status(self.port)["components"]["camera:cam"]["state"] == "up":
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("camera never came up")
        time.sleep(3)  # let the LL-HLS window fill

    def facts(self):
        return status(self.port)["components"]["camera:cam"]["facts"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["rm", "-rf", self.dir])


def viewers(daemon, pages, seconds, mode="whep"):
    url = f"http://{HOST_IP}:{daemon.port}/video/cam"
    return subprocess.Popen(["ip", "netns", "exec", NS, "node", os.path.join(ROOT, "tests/browser/view.mjs"),
                             "--url", url, "--mode", mode, "--pages", str(pages), "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def cpu_over(daemon, seconds):
    a, t0 = cpu_seconds(daemon.proc.pid), time.time()
    time.sleep(seconds)
    return 100 * (cpu_seconds(daemon.proc.pid) - a) / (time.time() - t0)


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/croupier"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    netns_up()
    daemons = []
    try:
        print(f"# {platform.node()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
        print("\n## CPU of the daemon per camera (% of one core), median of reps")
        for (w, h) in [(1280, 720), (1920, 1080)]:
            rows = {}
            for _ in range(args.reps):
                d = Daemon(args.bin, w, h); daemons.append(d)
                rows.setdefault(0, []).append(cpu_over(d, args.seconds))
                for n in (1, 2, 4):
                    v = viewers(d, n, args.seconds + 6)
                    time.sleep(5)  # connect
                    c = cpu_over(d, args.seconds)
                    facts = d.facts()
                    out, _ = v.communicate(timeout=60)
                    rep = json.loads(out)
                    decoded = [p["framesDecoded"] for p in rep["pages"]]
                    assert facts["encoders"] == "1", facts
                    rows.setdefault(n, []).append(c)
                    rows.setdefault(f"decoded{n}", []).append(min(decoded))
                d.stop(); daemons.remove(d)
            base = statistics.median(rows[0])
            print(f"{w}x{h}@30: 0 viewers {base:.1f} %", end="")
            for n in (1, 2, 4):
                m = statistics.median(rows[n])
                print(f"; {n} viewers {m:.1f} % (+{(m - base) / n:.1f} %/viewer, "
                      f"min frames decoded {min(rows[f'decoded{n}'])})", end="")
            print()

        print("\n## Glass-to-glass, 720p30 (ms)")
        d = Daemon(args.bin, 1280, 720, qr=True); daemons.append(d)
        offset = d.facts()["pts_utc_offset_us"]
        for mode in ("whep", "hls"):
            out = subprocess.run(["ip", "netns", "exec", NS, "node", os.path.join(ROOT, "tests/browser/glass.mjs"),
                                  "--url", f"http://{HOST_IP}:{d.port}/video/cam", "--mode", mode,
                                  "--seconds", str(args.seconds + 5), "--pts-offset-us", offset],
                                 capture_output=True, text=True, timeout=120)
            r = json.loads(out.stdout)
            print(f"{mode}: p50 {r['p50_ms']} p95 {r['p95_ms']} p99 {r['p99_ms']} "
                  f"(frames {r['frames']}, QR read {r['decoded_qr']})")
        v = viewers(d, 1, args.seconds + 5, mode="hls")
        out, _ = v.communicate(timeout=120)
        page = json.loads(out)["pages"][0]
        lat = [s["latencyMs"] for s in page["samples"] if s.get("latencyMs")]
        print(f"LL-HLS player latency (now - PROGRAM-DATE-TIME): p50 {statistics.median(lat):.0f} ms, "
              f"p95 {pct(lat, 95):.0f} ms over {len(lat)} samples, freezes {page['freezeCount']}")
        d.stop(); daemons.remove(d)
    finally:
        for d in daemons:
            d.stop()
        netns_down()


if __name__ == "__main__":
    main()
