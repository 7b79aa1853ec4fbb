# Shared by scripts/: a Docker Engine for the container runtime's tests, and their image.
#
# ensure_docker_engine: install Debian's docker.io when dockerd is missing (root, apt-get),
# start dockerd when no engine answers, wait for it, and import the test image. Never fatal:
# without an engine the container tests are reported as skipped, with the reason.
# SHOAL_DOCKER=0 skips all of this.

_engine_answers() {
  .venv/bin/python -m tests.docker.testimage ping 2>/dev/null
}

_install_docker() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "docker: dockerd not installed and cannot install it (needs root and apt-get)" >&2
    return 1
  fi
  echo "docker: installing docker.io and busybox-static" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends docker.io busybox-static >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      apt-get install -y -q --no-install-recommends docker.io busybox-static >/dev/null 2>&1; }
}

_start_dockerd() {
  local log=${SHOAL_DOCKERD_LOG:-/tmp/shoal-dockerd.log}
  if [ "$(id -u)" != 0 ]; then
    echo "docker: no engine answers, and starting dockerd needs root" >&2
    return 1
  fi
  echo "docker: starting dockerd (log: $log)" >&2
  # Its own session, so that it outlives this script (other runs and people may use it).
  setsid dockerd >"$log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    _engine_answers && return 0
    sleep 1
  done
  echo "docker: dockerd did not answer within 60s; see $log" >&2
  return 1
}

ensure_docker_engine() {
  [ "${SHOAL_DOCKER:-1}" = 0 ] && return 0
  if ! _engine_answers; then
    # Only the local default engine is ours to install and start.
    case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
      unix:///var/run/docker.sock) ;;
      *)
        echo "docker: no engine answers at $DOCKER_HOST" >&2
        return 0
        ;;
    esac
    if ! command -v dockerd >/dev/null 2>&1; then
      _install_docker || return 0
    fi
    _start_dockerd || return 0
  fi
  if [ ! -x /bin/busybox ] && ! command -v busybox >/dev/null 2>&1; then
    _install_docker || true
  fi
  .venv/bin/python -m tests.docker.testimage build >&2 ||
    echo "docker: the test image could not be built; container tests will be skipped" >&2
}
