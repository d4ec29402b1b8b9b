# Croupier — the two commands a newcomer needs, and what a technician installs with.
#
#   make demo      install what is missing, build, run a whole simulated table
#   make test      install what is missing, run every test
#   make vision-bench  regenerate the synthetic vision set and print its accuracy table
#   make install   put the binary, unit, udev rules and example config in their FHS places
#                  (DESTDIR and PREFIX are honoured; see docs/install.md)

PREFIX        ?= /usr
SYSCONFDIR    ?= /etc
DESTDIR       ?=
CARGO         ?= cargo
BIN           := target/release/croupier
# The game the demo table plays: baccarat (with the card camera and vision), roulette or
# blackjack (make demo GAME=roulette).
GAME          ?= baccarat
# The demo's card camera: one deck's faces, a table pose and an empty-table frame, rendered by
# tests/vision/synth.py (seconds; redone when the renderer changes).
DEMO_KIT      := target/demo-vision

BINDIR        := $(DESTDIR)$(PREFIX)/bin
UNITDIR       := $(DESTDIR)$(PREFIX)/lib/systemd/system
SYSUSERSDIR   := $(DESTDIR)$(PREFIX)/lib/sysusers.d
MODULESDIR    := $(DESTDIR)$(PREFIX)/lib/modules-load.d
UDEVDIR       := $(DESTDIR)$(SYSCONFDIR)/udev/rules.d
CONFDIR       := $(DESTDIR)$(SYSCONFDIR)/croupier
DOCDIR        := $(DESTDIR)$(PREFIX)/share/doc/croupier

.PHONY: all deps build demo test lint fuzz-build vision-bench install uninstall clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked

$(BIN):
	$(CARGO) build --release --locked

demo: build $(DEMO_KIT)/manifest.json
	$(BIN) demo --game $(GAME) $(if $(filter baccarat,$(GAME)),--vision-kit $(DEMO_KIT))

$(DEMO_KIT)/manifest.json: tests/vision/synth.py
	rm -rf $(DEMO_KIT)
	/usr/bin/python3 tests/vision/synth.py --seed 1 --out $(DEMO_KIT) --decks standard \
	  --tables 1 --scenes 0 --empty 1 --wheel 0

test: deps
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Regenerates the synthetic vision set (deterministic from SEED) and prints the accuracy and
# latency table of BENCHMARKS.md. DECKS=all for every deck (slow: ~10 min of rendering); the
# larger sets of BENCHMARKS.md: SEED=10 SCENES=220 EMPTY=100 WHEEL=0 (~7 min of rendering).
SEED          ?= 7
DECKS         ?= standard,dondorf,gm-paris,nicu-white
SCENES        ?= 25
EMPTY         ?= 50
WHEEL         ?= 90
VISION_DATA   ?= target/vision-data
vision-bench: deps
	$(CARGO) build --release --locked
	/usr/bin/python3 tests/vision/synth.py --seed $(SEED) --out $(VISION_DATA) --decks $(DECKS) \
	  --tables 4 --scenes $(SCENES) --empty $(EMPTY) --wheel $(WHEEL) --jobs 2
	$(BIN) vision bench --data $(VISION_DATA)

# Builds every fuzz target (fuzz/). cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the
# stable toolchain take them. Run one with: RUSTC_BOOTSTRAP=1 cargo fuzz run wheel_codec
fuzz-build:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build

install: $(BIN)
	install -Dm755 $(BIN) $(BINDIR)/croupier
	install -Dm644 systemd/croupier.service $(UNITDIR)/croupier.service
	install -Dm644 systemd/croupier.sysusers $(SYSUSERSDIR)/croupier.conf
	install -Dm644 systemd/croupier-modules.conf $(MODULESDIR)/croupier.conf
	install -Dm644 examples/table.toml $(DOCDIR)/examples/table.toml
	install -Dm644 README.md $(DOCDIR)/README.md
	install -m644 docs/*.md $(DOCDIR)/
	@# Site files are the technician's: never overwrite an edited one.
	@if [ -e $(UDEVDIR)/99-croupier.rules ]; then \
	  echo "keeping existing $(UDEVDIR)/99-croupier.rules (new version in $(DOCDIR)/99-croupier.rules)"; \
	  install -Dm644 udev/99-croupier.rules $(DOCDIR)/99-croupier.rules; \
	else install -Dm644 udev/99-croupier.rules $(UDEVDIR)/99-croupier.rules; fi
	@if [ -e $(CONFDIR)/table.toml ]; then \
	  echo "keeping existing $(CONFDIR)/table.toml"; \
	else install -Dm640 examples/table.toml $(CONFDIR)/table.toml; fi
	@# On the real system (no DESTDIR), create the user and tell systemd and udev.
	@if [ -z "$(DESTDIR)" ]; then \
	  systemd-sysusers $(PREFIX)/lib/sysusers.d/croupier.conf || true; \
	  chgrp croupier $(CONFDIR)/table.toml 2>/dev/null || true; \
	  systemctl daemon-reload 2>/dev/null || true; \
	  udevadm control --reload 2>/dev/null || true; \
	  systemctl restart systemd-modules-load 2>/dev/null || true; \
	fi

uninstall:
	rm -f $(BINDIR)/croupier $(UNITDIR)/croupier.service $(SYSUSERSDIR)/croupier.conf $(MODULESDIR)/croupier.conf
	rm -rf $(DOCDIR)
	@echo "left in place: $(CONFDIR)/ and $(UDEVDIR)/99-croupier.rules (site files), /var/lib/croupier (state)"

clean:
	$(CARGO) clean
