# Shared by scripts/: the tools the routing mesh's tests use to build hosts out of network
# namespaces (iproute2's `ip netns`) and to drive the kernel data path (`nft`).
#
# ensure_net_tools: install what is missing (root, apt-get). Never fatal: without them those
# tests are reported as skipped, with the reason.

ensure_net_tools() {
  local missing=()
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "net: ${missing[*]} missing and cannot install (needs root and apt-get)" >&2
    return 0
  fi
  echo "net: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
    echo "net: could not install ${missing[*]}" >&2
  return 0
}
