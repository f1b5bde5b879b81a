#!/usr/bin/env bash
# Keeps the build cache ($FR1_CACHE, default /var/cache/cip-iec-fr1-tests)
# bounded on a machine that runs CI for months:
#   - Isar's sstate and downloads: files not read for KEEP_DAYS days go,
#     then the least recently read ones until each is under its size cap;
#   - the keyed entries (target and build roots, package caches, QEMU
#     images, Isar build directories of other Isar commits): an entry
#     neither read nor written for KEEP_DAYS days goes. An entry in use is
#     read at every run (its files' access times move at least daily under
#     relatime), so only entries of inputs no longer built are removed.
#
#   ci/cache-prune.sh [--dry-run]
#
# Environment: FR1_CACHE_KEEP_DAYS (default 14), FR1_SSTATE_MAX_GB (10),
# FR1_DOWNLOADS_MAX_GB (6). Takes the cache's lock exclusively (builds hold
# it shared, see cache_lock in ci/lib.sh), so it never removes what a build
# is writing; while one is, it prunes nothing and says so. Prints what it removed and
# the cache's size before and after.
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

KEEP_DAYS=${FR1_CACHE_KEEP_DAYS:-14}
SSTATE_MAX_GB=${FR1_SSTATE_MAX_GB:-10}
DOWNLOADS_MAX_GB=${FR1_DOWNLOADS_MAX_GB:-6}
dry=0
case ${1:-} in
    '') ;;
    --dry-run) dry=1 ;;
    *) die "unknown argument '$1' (--dry-run)" 2 ;;
esac
for n in "$KEEP_DAYS" "$SSTATE_MAX_GB" "$DOWNLOADS_MAX_GB"; do
    [[ $n =~ ^[0-9]+$ ]] || die "FR1_CACHE_KEEP_DAYS, FR1_SSTATE_MAX_GB and FR1_DOWNLOADS_MAX_GB take whole numbers, not '$n'" 2
done
[ -d "$CACHE_ROOT" ] || { log "no cache at $CACHE_ROOT"; exit 0; }

removed=0
remove() { # PATH...
    local p
    for p in "$@"; do
        removed=$((removed + 1))
        if [ "$dry" -eq 1 ]; then
            log "would remove $p"
        else
            rm -rf --one-file-system -- "$p"
        fi
    done
}

# Files of DIR: first those not read for KEEP_DAYS days, then the least
# recently read until DIR holds at most MAX_GB. A download's ".done" stamp
# goes with its file (bitbake fetches again a file whose stamp is gone).
prune_files() { # DIR MAX_GB
    local dir=$1 cap=$(($2 * 1024 * 1024 * 1024)) total=0 atime size path
    [ -d "$dir" ] || return 0
    while IFS=$'\t' read -r atime size path; do
        if [ "$atime" -lt "$(($(date +%s) - KEEP_DAYS * 86400))" ] || [ $((total + size)) -gt "$cap" ]; then
            remove "$path"
            [ ! -e "$path.done" ] || remove "$path.done"
        else
            total=$((total + size))
        fi
        # Newest first: what is read now is kept before what was read long ago.
    done < <(find "$dir" -type f ! -name '*.done' ! -name '*.lock' -printf '%A@\t%s\t%p\n' |
        sed 's/\.[0-9]*\t/\t/' | sort -t $'\t' -k1,1 -n -r)
    log "$dir: $((total / 1024 / 1024)) MiB kept (cap ${2} GiB)"
}

# A cache entry's last use: the newest access or change of a file in its
# first three levels (a run reads a rootfs's usr/bin/bash, a build its
# tools, a package cache its .deb files), or of the entry itself. Files
# only: reading a directory (du, find) moves a directory's access time, not
# a file's.
last_use() { # PATH -> epoch seconds
    {
        stat -c '%Y' "$1"
        find "$1" -maxdepth 3 -type f -printf '%A@\n%T@\n' | sed 's/\..*//'
    } | sort -n | tail -n 1
}

# (du may find a build's temporary directory gone by the time it reads it.)
size_of() { du -sh "$1" 2> /dev/null | cut -f1 || true; }

exec {lockfd}> "$CACHE_ROOT/.lock"
# Never waits: while a build holds the cache (another run on this machine),
# the cache is pruned next time.
if ! flock -n "$lockfd"; then
    log "the cache is in use by a build: not pruned this time"
    exit 0
fi
before=$(size_of "$CACHE_ROOT")
prune_files "$CACHE_ROOT/isar-sstate" "$SSTATE_MAX_GB"
prune_files "$CACHE_ROOT/isar-downloads" "$DOWNLOADS_MAX_GB"
cutoff=$(($(date +%s) - KEEP_DAYS * 86400))
for entry in "$CACHE_ROOT"/rootfs-* "$CACHE_ROOT"/debs-* "$CACHE_ROOT"/debs/* \
    "$CACHE_ROOT"/cross-rootfs-* "$CACHE_ROOT"/buildroot-* "$CACHE_ROOT"/qemu-* \
    "$CACHE_ROOT"/isar-build-* "$CACHE_ROOT"/isar-image-build-* "$CACHE_ROOT"/isar-cip-core-* \
    "$CACHE_ROOT"/isar-*; do
    [ -e "$entry" ] || continue
    # Of the other isar-* names only the Isar trees (isar-COMMIT): not
    # sstate, downloads or the source clone, which are pruned above or small.
    case ${entry##*/} in
        isar-build-* | isar-image-build-* | isar-cip-core-*) ;;
        isar-*) [[ ${entry##*/} =~ ^isar-[0-9a-f]{40}$ ]] || continue ;;
    esac
    [ "$(last_use "$entry")" -ge "$cutoff" ] || remove "$entry"
done
exec {lockfd}>&-
log "removed $removed file(s) or entries; the cache took $before, now $(size_of "$CACHE_ROOT")"
