#!/usr/bin/env bash
# Installs the Debian packages the suite needs, only when some are missing, so
# repeated `make run` / `make test` cost nothing. diffoscope comes without its
# recommends (they pull ~4 GB); the tools it uses on .debs are listed instead.
set -euo pipefail

packages=(python3 python3-venv postgresql-15 postgresql-15-debversion redis-server
          devscripts dput gnupg dpkg-dev fakeroot wrk
          openssh-client  # bzr+ssh: the tests push with the system ssh client, and ssh-keygen
          protobuf-compiler)  # make proto, and the test that the config descriptor is current
norecommends=(diffoscope binutils-multiarch xz-utils zstd python3-debian python3-tlsh
              libarchive-tools xxd file
              chromium chromium-driver)  # the tests' headless browser (pages, injected scripts)
if [ "${1:-}" = compose ]; then
  # make compose-test: a container engine and what makes the base image.
  packages=(docker.io docker-compose debootstrap)
  norecommends=()
fi

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || printf '%s\n' "$p"
  done
}

mapfile -t need < <(missing "${packages[@]}")
mapfile -t need_nr < <(missing "${norecommends[@]+"${norecommends[@]}"}")
if [ ${#need[@]} -eq 0 ] && [ ${#need_nr[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system-deps: missing ${need[*]} ${need_nr[*]}; run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "system-deps: installing ${need[*]} ${need_nr[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq "${need[@]}"
fi
if [ ${#need_nr[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need_nr[@]}"
fi
