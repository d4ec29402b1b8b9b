#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on Debian 12, and nothing when it is all there.
#
# Idempotent and fast: it asks dpkg which packages are missing and only then runs apt-get
# (update + install of the missing ones). The Rust toolchain is checked, not installed:
# Debian 12's cargo is too old (1.63), see docs/install.md for rustup.
set -euo pipefail

# Packages by purpose; later capabilities add theirs here.
PACKAGES=(
  build-essential pkg-config   # building the -sys crates
  mosquitto mosquitto-clients  # the demo's broker and the tests' real broker
  socat                        # pseudo-terminal plumbing in device tests
  systemd                      # systemd-analyze verify of the unit
  iproute2 procps              # network namespaces and process checks in tests
  curl ca-certificates         # health checks in the demo and docs
  openssl                      # makes the CA and the client/server certificates of tests/uplink_tls.rs (mTLS)
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0  # GStreamer's timecode, the oracle of tests/timecode_gstreamer.rs
  # Video (pipelines/): building against GStreamer 1.22, and the elements the cameras use.
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice
  gstreamer1.0-x               # textoverlay and timeoverlay (Debian ships the Pango plugin here)
  gstreamer1.0-libav           # avdec_h264: tests/whip_server.py decodes what the WHIP client pushes
  gir1.2-gst-rtsp-server-1.0   # the IP camera of tests/video_camera_loss.rs (tests/rtsp_camera.py)
  chromium                     # the WebRTC and LL-HLS viewer of the video tests (headless)
  kdegames-card-data-kf5 librsvg2-bin python3-opencv python3-numpy  # vision test data: tests/vision/synth.py (card decks, SVG export, rendering)
  libopencv-dev clang libclang-dev  # vision/: the opencv crate builds against OpenCV 4.6 (its binding generator needs libclang)
  python3-prometheus-client    # tests/pages_browser.rs parses /metrics with Prometheus' own text parser
  prometheus                   # promtool: tests/ops_files.rs checks and unit-tests ops/prometheus/ alert rules
)
# Node.js drives Chromium in the browser tests (playwright-core). A Node already on the machine
# (nodesource, nvm) is used as is; otherwise Debian's.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts mosquitto and prometheus as services on install; the demo and tests run
  # their own broker, and only promtool is wanted.
  for service in mosquitto prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
      "${SUDO[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
  done
fi

if ! command -v cargo >/dev/null; then
  for dir in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [[ -x "$dir/cargo" ]] && export PATH="$dir:$PATH"
  done
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found. Install Rust >= 1.85 with rustup: https://rustup.rs (see docs/install.md)" >&2
  exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if ((rust_minor < 85)); then
  echo "install-deps: rustc $(rustc --version) is too old; Croupier needs 1.85 or newer (rustup update)" >&2
  exit 1
fi

# The browser harness's own packages (tests/browser/package-lock.json), installed once.
browser_dir="$(dirname "$0")/../tests/browser"
stamp="$browser_dir/node_modules/.croupier-lock"
if ! cmp -s "$browser_dir/package-lock.json" "$stamp" 2>/dev/null; then
  echo "install-deps: npm ci in tests/browser"
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$browser_dir/package-lock.json" "$stamp"
fi
