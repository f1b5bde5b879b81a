#!/usr/bin/env bash
# Install what the project's scripts need on a Debian machine, as root:
# mmdebstrap (builds the disposable target image and the package's build
# chroot), shellcheck (lints ci/), iproute2 and util-linux (namespaces),
# dpkg-dev, python3, binutils and git (ci/build-deb.sh: source package,
# debian/copyright check, binary size), apt-utils (apt-ftparchive: the local
# apt repository of ci/deb-in-image.sh), python3-yaml (ci/lava checks),
# qemu-system-x86, qemu-system-arm (the arm64 boot) and e2fsprogs
# (ci/qemu-image.sh), systemd-container (systemd-nspawn: ci/target-image.sh
# run --boot), qemu-user-binfmt (ci/cross-build.sh, ci/arch-suite.sh), tidy, chromium and python3-markdown (the report
# acceptance test validates the HTML report, renders it headless and
# renders the Markdown one; chromium installs in about 9 s from a warm apt
# cache), with --delivery Isar's host tools and the en_US.UTF-8 locale
# (ci/isar-build.sh), and a Rust toolchain when none is on PATH (Debian's
# own). Idempotent; runs
# apt-get update only when a package is missing, so a warm machine pays
# nothing.
set -euo pipefail

packages=(mmdebstrap shellcheck iproute2 util-linux ca-certificates
    dpkg-dev python3 python3-yaml binutils git apt-utils e2fsprogs
    systemd-container tidy chromium python3-markdown)

# Installs those of PACKAGES that are not installed yet (WHAT names them in
# messages).
install_missing() { # WHAT PACKAGES...
    local what=$1 p missing=()
    shift
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install $what: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-deps: installing $what: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
install_missing "the tools" "${packages[@]}"

# QEMU on bookworm comes from bookworm-backports: machines of this
# kind ship qemu-utils from there, which bookworm's qemu-system-common (7.2)
# cannot be installed next to.
install_qemu() {
    local codename uri list=/etc/apt/sources.list.d/fr1-bookworm-backports.sources
    codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
    export DEBIAN_FRONTEND=noninteractive
    if [ "$codename" != bookworm ]; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-system-arm qemu-user-binfmt
        return
    fi
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # The same archive as the machine's own bookworm sources.
        uri=$(grep -rhs '^URIs:.*/debian/\{0,1\}$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
        printf '%s\n' 'Types: deb' "URIs: ${uri:-http://deb.debian.org/debian}" \
            'Suites: bookworm-backports' 'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' > "$list"
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t bookworm-backports \
        qemu-system-x86 qemu-system-arm qemu-user-binfmt
}
# Isar's host tools (its user manual's list, less qemu-user-static and
# binfmt-support: only amd64 is built, and qemu-user-static cannot be
# installed next to qemu-user-binfmt), and the en_US.UTF-8 locale bitbake
# refuses to start without; for ci/isar-build.sh, delivery checks only.
isar_packages=(bubblewrap bzip2 arch-test apt-utils dpkg-dev gettext-base git
    python3 quilt reprepro sudo unzip xz-utils git-buildpackage pristine-tar
    sbuild schroot zstd locales)
if [ "$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)" = bookworm ]; then
    isar_packages+=(python3-distutils)
fi
if [ "${1:-}" = --delivery ]; then
    install_missing "Isar's host tools" "${isar_packages[@]}"
    if ! locale -a 2> /dev/null | grep -qx 'en_US.utf8'; then
        [ "$(id -u)" -eq 0 ] || { echo "install-deps: need root to generate the en_US.UTF-8 locale" >&2; exit 1; }
        echo "install-deps: generating the en_US.UTF-8 locale (bitbake needs it)"
        grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen 2> /dev/null || echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen
        locale-gen > /dev/null
    fi
fi

# QEMU only for the delivery checks (ci/delivery-test.sh passes --delivery).
if [ "${1:-}" = --delivery ] && { ! command -v qemu-system-x86_64 > /dev/null ||
    ! command -v qemu-system-aarch64 > /dev/null || [ ! -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; }; then
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: need root to install QEMU" >&2; exit 1; }
    echo "install-deps: installing qemu-system-x86, qemu-system-arm and qemu-user-binfmt"
    install_qemu
fi

# Rust: whatever toolchain is on PATH (rustup's, say); on a machine without
# one, Debian's own. The workspace needs Rust >= 1.85: bookworm's rustc is
# 1.63, but bookworm-security carries the newer rustc-web/cargo-web family
# (with its clippy and rustfmt), which trixie has too; the release's own
# packages are taken where no -web family exists.
MIN_RUST=1.85
install_debian_rust() {
    local family=(cargo-web rustc-web rust-web-clippy rustfmt-web)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-cache policy cargo-web 2> /dev/null | grep -Eq '^ *Candidate: [0-9]'; then
        family=(cargo rustc rust-clippy rustfmt)
    fi
    echo "install-deps: no cargo on PATH: installing Debian's Rust toolchain (${family[*]})"
    apt-get install -y -qq --no-install-recommends "${family[@]}" gcc libc6-dev
}
if ! command -v cargo > /dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: cargo not found and not root: install Rust >= $MIN_RUST (rustup or Debian's cargo)" >&2; exit 1; }
    install_debian_rust
fi
rust_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n' "$MIN_RUST" "$rust_version" | sort -V | head -n1)" != "$MIN_RUST" ]; then
    echo "install-deps: rustc $rust_version is older than $MIN_RUST, which Cargo.lock needs (rustup, or Debian's rustc-web)" >&2
    exit 1
fi
