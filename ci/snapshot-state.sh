#!/bin/bash
# Deterministic text snapshot of the target state that the FR-1 suite must
# leave untouched ("leaves nothing behind" in the test-case catalog).
#
# Usage (inside the image, as root; ci/target-image.sh installs this file as
# /usr/local/sbin/fr1-snapshot-state):
#     fr1-snapshot-state > before
#     ... run the suite ...
#     fr1-snapshot-state > after && diff -u before after
#
# Content only, never timestamps: files are identified by sha256 + mode +
# owner, so a file that was edited and restored byte for byte compares equal.
# Backup files that shadow's tools rewrite on every change (/etc/passwd- etc.)
# are deliberately not listed.
set -euo pipefail
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

section() { printf '\n## %s\n' "$1"; }

# One line per path: type, mode, owner, and the content hash (files) or the
# link target (symlinks). Owners are printed as names and numbers, so a
# renumbered account shows up even if its name is reused.
describe() {
    local p=$1
    if [ -L "$p" ]; then
        printf 'link %s %s %s -> %s\n' "$p" "$(stat -c '%a' "$p")" "$(stat -c '%U(%u):%G(%g)' "$p")" "$(readlink "$p")"
    elif [ -f "$p" ]; then
        printf 'file %s %s %s %s\n' "$p" "$(stat -c '%a' "$p")" "$(stat -c '%U(%u):%G(%g)' "$p")" "$(sha256sum < "$p" | cut -d' ' -f1)"
    elif [ -d "$p" ]; then
        printf 'dir  %s %s %s\n' "$p" "$(stat -c '%a' "$p")" "$(stat -c '%U(%u):%G(%g)' "$p")"
    elif [ -e "$p" ]; then
        printf 'other %s %s %s\n' "$p" "$(stat -c '%F %a' "$p")" "$(stat -c '%U(%u):%G(%g)' "$p")"
    else
        printf 'absent %s\n' "$p"
    fi
}

# Every entry of a tree (the tree itself included), sorted by path.
describe_tree() {
    local root=$1 p
    if [ ! -e "$root" ]; then
        printf 'absent %s\n' "$root"
        return
    fi
    find "$root" -print | sort | while IFS= read -r p; do describe "$p"; done
}

section 'account databases'
for f in /etc/passwd /etc/shadow /etc/group /etc/gshadow /etc/subuid /etc/subgid; do
    describe "$f"
done

section 'configuration trees'
for d in /etc/pam.d /etc/ssh /etc/security; do
    describe_tree "$d"
done

section 'home directories'
# Listing only (path, mode, owner): home contents legitimately differ by
# content (shell history is not created by the suite's non-interactive use,
# but a user's own files are none of our business beyond existence).
if [ -d /home ]; then
    find /home -printf '%p %m %u(%U):%g(%G)\n' | sort
else
    echo 'absent /home'
fi

# systemd names a unit's process "(NAME)" between fork and exec: a service
# caught while it starts (auditd, which cannot open the audit socket in a
# container, is restarted by systemd again and again) is not a process the
# suite started or left, and the same moment never repeats in two snapshots.
transient_filtered() {
    grep -Ev '^[^ ]+ \([^ ()]+\)$' || true
}

section 'processes'
# user + command line of every process, minus this snapshot: the script
# itself and everything it started (ps, awk, sort, subshells), the shells
# that called it (they differ between a "before" and an "after" caller), and
# the other children of the calling shell, i.e. its pipeline partners
# ("fr1-snapshot-state | tee before") and the caller's own jobs. Processes
# left behind by the suite are never children of a shell that started after
# the suite; they are re-parented to PID 1. So when the caller is PID 1
# itself (run directly by the runner), its children are kept.
ps -e -o pid=,ppid=,user:32=,args= | awk -v self="$$" '
    {
        pid = $1; parent[pid] = $2
        cmd = $0
        sub(/^[ \t]*[0-9]+[ \t]+[0-9]+[ \t]+[^ \t]+[ \t]+/, "", cmd)
        line[pid] = $3 " " cmd; order[++n] = pid
    }
    END {
        # the snapshot and its ancestors
        p = self
        while (p in parent && !(p in skip)) { skip[p] = 1; p = parent[p] }
        # its descendants (iterate to a fixed point)
        mine[self] = 1
        do {
            changed = 0
            for (i = 1; i <= n; i++) {
                q = order[i]
                if (!(q in mine) && (parent[q] in mine)) { mine[q] = 1; skip[q] = 1; changed = 1 }
            }
        } while (changed)
        # other children of the caller: pipeline partners and its own jobs
        caller = parent[self]
        if (caller != 1)
            for (i = 1; i <= n; i++) if (parent[order[i]] == caller) skip[order[i]] = 1
        for (i = 1; i <= n; i++) if (!(order[i] in skip)) print line[order[i]]
    }
' | transient_filtered | sort

section 'listening TCP sockets'
# With the listening process and its PID: a system sshd that was restarted
# (the suite must never) shows with another PID.
ss -ltnpH | sed -E 's/[[:space:]]+/ /g' | sort

section 'fail2ban bans'
if command -v fail2ban-client > /dev/null && fail2ban-client ping > /dev/null 2>&1; then
    fail2ban-client banned 2>&1
else
    echo 'fail2ban not running'
fi

section 'network namespaces'
ip netns list | sort

section 'network links'
# Interfaces left behind (e.g. a veth pair for the remote-ban test).
ip -o link show | sed -E 's/^[0-9]+: //; s/ qdisc.*//' | sort

section 'nftables ruleset'
# fail2ban's bans (CR1.11 remote ban) live here. fail2ban creates its own
# table (f2b-*) at its first ban and keeps it until the jail stops, with empty
# sets once every ban is lifted; such a table bans nobody and is fail2ban's
# runtime state, not something a test left behind, so it is not listed. A
# fail2ban table that still holds an address (an "elements" line) is listed
# in full.
if command -v nft > /dev/null; then
    nft list ruleset 2>&1 | sed -E 's/[[:space:]]+$//' | awk '
        /^table [a-z0-9]+ f2b-/ { f2b = 1; block = $0; banned = 0; next }
        f2b {
            block = block "\n" $0
            if ($0 ~ /elements = /) banned = 1
            if ($0 == "}") { if (banned) print block; f2b = 0 }
            next
        }
        { print }
    '
else
    echo 'nft not installed'
fi

section 'faillock records'
# /var/run is a symlink to /run on Debian: report each real directory once.
seen=
for d in /run/faillock /var/run/faillock; do
    r=$(readlink -f "$d" 2>/dev/null || printf '%s' "$d")
    case " $seen " in *" $r "*) continue ;; esac
    seen="$seen $r"
    describe_tree "$r"
done
