#!/usr/bin/env bash
# Debian packages vizcore uses when they can be installed: the real Fashion-MNIST data and the
# headless Chromium the browser tests drive. Skips quickly when they are present; does nothing
# (with a note) where apt-get is missing or we are not root.
set -u
want="dataset-fashion-mnist chromium chromium-driver"
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "note: could not install$missing (needs apt-get as root). The app falls back to the bundled"
  echo "      Fashion-MNIST sample; browser tests are skipped without /usr/bin/chromium."
  exit 0
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null || {
  echo "note: apt-get could not install$missing; continuing without them"; exit 0; }
