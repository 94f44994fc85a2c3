#!/bin/sh
# Install headless Chromium for the report's browser test (tests/test_report_browser.py)
# when it is missing. Idempotent and quiet; never fails the build: without Chromium
# the browser test skips and says why.
set -u
for b in chromium chromium-browser google-chrome; do
    command -v "$b" >/dev/null 2>&1 && exit 0
done
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = "0" ] || { command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"; }
    export DEBIAN_FRONTEND=noninteractive
    if $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; }; then
        exit 0
    fi
fi
echo "ensure_chromium: could not install chromium; the browser test will be skipped" >&2
exit 0
