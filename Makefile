# The README's two commands.  Both set up everything they need on a fresh Debian machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
# Debian packages the tests start for real: PostgreSQL, mbpoll (a third-party Modbus master), Chromium
# (the browser tests drive /usr/bin/chromium through Playwright: `playwright install` is never run),
# redis-server (the Socket.IO message queue), poppler-utils (pdftotext/pdffonts read the protocols) and
# libportaudio2 (the speech recorder's ALSA capture, tested on ALSA's null device: no sound card needed).
APT_PKGS := postgresql mbpoll chromium redis-server poppler-utils libportaudio2

.PHONY: demo test lint types pytest venv sysdeps bench clean

# apt-get as root, or through sudo for a user who may
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# waits for another apt/dpkg run (unattended upgrades, a second make) instead of failing on its lock
APT     := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

# Debian's own python3 makes a venv only with the python3-venv package: install it when missing.
$(BIN)/python:
	@$(PY) -m venv $(VENV) || { rm -rf $(VENV); echo "installing python3-venv"; \
	  $(APT) update -qq && $(APT) install -y -qq python3-venv >/dev/null && $(PY) -m venv $(VENV); }

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The system packages of APT_PKGS, installed only when missing (a package removed but for its config
# files is missing: `dpkg -s` would still succeed for it).
sysdeps:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT) update -qq && $(APT) install -y -qq $$missing >/dev/null; \
	fi

# The whole simulated chamber, left running: simulator with wire timing, controller, web pages and
# simulated deputies who take part; prints every page's URL and a login.  (The scripted sitting that
# this target ran before is `chamber demo --bus`.)
demo: venv
	$(BIN)/chamber run --demo --config config.toml

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: venv
	$(BIN)/mypy

pytest: venv sysdeps
	$(BIN)/pytest

test: lint types pytest

bench: venv
	$(BIN)/chamber bench core --json

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
