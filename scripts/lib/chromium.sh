# Shared by scripts/: the browser the dashboard's tests drive (tests/e2e/browser.py):
# Debian's chromium, headless, through Playwright's driver (from the dev extra).
#
# ensure_chromium: install chromium (and chromium-driver) when missing (root, apt-get); quiet
# when they are there. Never fatal: without them the browser tests are reported as skipped,
# with the reason.

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: missing and cannot install (needs root and apt-get)" >&2
    return 0
  fi
  echo "chromium: installing Debian's chromium for the dashboard's browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1; } ||
    echo "chromium: could not install chromium" >&2
  return 0
}
