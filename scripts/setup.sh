#!/usr/bin/env bash
# One-shot set-up for a fresh Debian 12 + Node 20 machine: installs what is missing, nothing else.
# Called by `npm run demo`, `npm test` (with --test) and `npm run bench`; safe to run again.
#   --test  also what only the tests need: Chromium (browser tests, driven by playwright-core
#           without a browser download) and poppler-utils (pdftotext reads the PDFs back).
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=""
[ "${1:-}" = "--test" ] && for_tests=1

missing=()
# PostgreSQL binaries for the cluster hpki manages under $HPKI_HOME/pg (src/store/managed-pg.ts).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  missing+=(postgresql)
  # Only the binaries are wanted: no system-wide "main" cluster listening on port 5432.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    if [ "$(id -u)" -eq 0 ]; then mk=""; else mk="sudo"; fi
    $mk mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $mk tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
fi
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Japanese font for the receipt (受領書) and packing-list PDFs.
[ -f /usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf ] || missing+=(fonts-ipaexfont-gothic)
if [ -n "$for_tests" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
fi
if ((${#missing[@]})); then
  echo "setup: installing from Debian: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # confold: keep the createcluster.conf written above when postgresql-common installs its own.
  $sudo env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is absent or older than the lockfile. Never through a symlinked
# node_modules (a git worktree sharing another checkout's): npm ci would empty the target.
if [ -L node_modules ]; then
  echo "setup: node_modules is a symlink (shared install): not running npm ci" >&2
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
