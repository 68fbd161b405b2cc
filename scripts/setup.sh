#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, as root: system packages, a Docker Engine
# that answers, and the project's virtualenv in .venv. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(docker.io busybox-static openssh-server iproute2 iptables procps psmisc mmdebstrap postgresql
              python3 python3-venv python3-pip ca-certificates
              libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk fonts-dejavu-core poppler-utils chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A Docker Engine that answers (started in the background when none does).
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/bcdrill-dockerd.log)"
  # in a session of its own: ending the command (or its process group) that set up must not end Docker
  setsid -f dockerd >>/var/log/bcdrill-dockerd.log 2>&1 </dev/null
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start"; tail -20 /var/log/bcdrill-dockerd.log; exit 4; }
fi

# The project's virtualenv.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# constraints.txt pins every package to the version the suite passed with: a fresh machine
# resolves to what was tested, not to whatever was released since.
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
# The project's own bytecode, as pip compiles every package it installs: an editable install
# compiles nothing, and where PYTHONDONTWRITEBYTECODE is set no command ever writes it, so each
# `bcdrill` would compile its modules again (~0.25 s of CPU per command). A stale file after an
# update is detected by Python and ignored.
.venv/bin/python -m compileall -q -j 0 engine drills reports benchmarks
# The local runner's empty Prefect database, migrated once per installation (~20 s): a first
# `bcdrill run` then starts from a copy instead of migrating a new one.
.venv/bin/python -m engine.orchestration.prefect_database \
  || echo "setup: note: no Prefect database template; the runner's first start migrates one"
echo "setup: ready ($(.venv/bin/python --version), $(docker version --format 'Docker {{.Server.Version}}'))"
