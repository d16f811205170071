#!/usr/bin/env bash
# Installs Debian's headless Chromium for the browser tests (skipped if it is already there
# or apt is missing: those tests then skip with a reason).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
command -v apt-get >/dev/null || { echo "no apt-get: browser tests will be skipped" >&2; exit 0; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
