#!/usr/bin/env bash
# One-shot set-up for a fresh Debian 12 + Node 20 machine: installs what is missing, nothing else.
# Called by `npm run demo`, `npm test` and `npm run bench`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Japanese font for the receipt (受領書) and packing-list PDFs.
[ -f /usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf ] || missing+=(fonts-ipaexfont-gothic)
# Tests: the SSO center's Python relying party (Authlib, as a clinical system's developer uses it).
/usr/bin/python3 -c "import authlib, requests" >/dev/null 2>&1 || missing+=(python3-authlib python3-requests)
if ((${#missing[@]})); then
  echo "setup: installing from Debian: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is absent or older than the lockfile. Never through a symlinked
# node_modules (a git worktree sharing another checkout's): npm ci would empty the target.
if [ -L node_modules ]; then
  echo "setup: node_modules is a symlink (shared install): not running npm ci" >&2
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
