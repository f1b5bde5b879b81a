#!/usr/bin/env bash
# Install what the project's scripts need on a Debian machine, as root:
# mmdebstrap (builds the disposable target image and the package's build
# chroot), shellcheck (lints ci/), iproute2 and util-linux (namespaces),
# dpkg-dev, python3, binutils and git (ci/build-deb.sh: source package,
# debian/copyright check, binary size), apt-utils (apt-ftparchive: the local
# apt repository of ci/deb-in-image.sh), python3-yaml (ci/lava checks).
# Idempotent; runs apt-get update only when a package is missing, so a warm
# machine pays nothing.
set -euo pipefail

packages=(mmdebstrap shellcheck iproute2 util-linux ca-certificates
    dpkg-dev python3 python3-yaml binutils git apt-utils)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo not found: install a Rust toolchain (rustup or Debian's cargo)" >&2
    exit 1
fi
