#!/usr/bin/env bash
# The Python x OpenSSL test matrix (issue 10): run the test suite where learners are.
#
#   tools/matrix.sh [CELL...]        (make test-matrix [CELLS="trixie bookworm"])
#
# Cells (default: all, in this order):
#   reference     this machine's Python and OpenSSL: `make test` in this checkout, browser test included
#   trixie        Debian 13's own python3 (3.13) and OpenSSL 3.5              gates
#   bookworm      Debian 12's own /usr/bin/python3.11 (3.11.2) and OpenSSL 3.0 gates
#   forky         Debian testing's python3 (3.14) and OpenSSL 3.6             reported, never gates
#   forky-py3.15  python3.15 from Debian testing, same OpenSSL                reported, never gates
#
# Each Debian cell is a root file system made with debootstrap from Debian's archive and cached in
# build/matrix/roots/SUITE (FRESH=1 rebuilds it). In it: a fresh `git clone` of this repository's
# HEAD (committed files only), `make setup` with that root's Python (the venv lives in the root), and
# `make test PYTEST_ARGS='-m "not browser and not classroom"'` inside a loopback-only network namespace with a clean
# environment. pip inside the root uses this machine's package index and CA file (read-only bind
# mounts, given to pip only); the root's own trust store is left alone, the tests use it.
#
# Every mount is made inside a private mount namespace (unshare -m) that dies with the command, so
# no mount can outlive a run or show up under build/ on this machine.
#
# Exit status: 1 when a gating cell fails (tests or setup), else 0. An archive that cannot be
# reached (debootstrap or apt fails) is reported loudly and its cell skipped: that is not a test
# failure. Needs root (debootstrap, chroot, unshare) for the Debian cells.
set -uo pipefail

REPO=${MATRIX_REPO:-$(cd "$(dirname "$0")/.." && pwd -P)}
MATRIX=${MATRIX_DIR:-$REPO/build/matrix}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ALL_CELLS="reference trixie bookworm forky forky-py3.15"
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1500}   # seconds for one cell's test suite
# pytest arguments in the Debian cells (the browser test needs Chromium: reference only; the
# classroom test needs JupyterHub's proxy from npm, and the roots have no Node: reference only,
# and with "not classroom" `make test` does not build the classroom venv there).
# Override to try one file in every root: SUITE_ARGS='-m "not browser" tests/test_probe.py'.
SUITE_ARGS=${SUITE_ARGS:-'-m "not browser and not classroom"'}
REBUILT=""
HOST_PYTHON=${HOST_PYTHON:-python3}    # whose `pip config` tells us the package index

# Packages installed with apt after debootstrap (debootstrap alone cannot resolve a Provides on forky).
# netbase (/etc/services, /etc/protocols) is on every real Debian system but not in a minbase root:
# without it getaddrinfo(host, "https") fails.
ROOT_PACKAGES="ca-certificates netbase make git openssl curl tshark tcpdump gnutls-bin pebble"

# ---------------------------------------------------------------------------------------- cells
cell_suite() {
    case $1 in
        trixie) echo trixie ;; bookworm) echo bookworm ;; forky | forky-py3.15) echo forky ;;
        *) return 1 ;;
    esac
}
cell_python() {
    case $1 in
        trixie | forky) echo python3 ;;
        bookworm) echo /usr/bin/python3.11 ;;
        forky-py3.15) echo python3.15 ;;
    esac
}
cell_python_packages() {
    case $1 in
        trixie | forky) echo "python3 python3-venv" ;;
        bookworm) echo "python3.11 python3.11-venv" ;;
        forky-py3.15) echo "python3.15 python3.15-venv" ;;
    esac
}
cell_title() {
    case $1 in
        reference) echo "the CI machine: CPython built by pyenv on Debian 12" ;;
        trixie) echo 'Debian 13 "trixie", `python3`' ;;
        bookworm) echo 'Debian 12 "bookworm", `/usr/bin/python3.11`' ;;
        forky) echo 'Debian testing "forky", `python3`' ;;
        forky-py3.15) echo 'Debian testing "forky", `python3.15`' ;;
    esac
}
cell_gates() { case $1 in reference | trixie | bookworm) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------------------------------- output
say() { printf '[matrix %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
loud() {
    printf '\n%s\n' "########################################################################"
    printf '#### %s\n' "$@"
    printf '%s\n\n' "########################################################################"
}

# ---------------------------------------------------------------------------------------- safety
# Mounts under build/matrix in *this* namespace should never exist (all ours live in private
# namespaces); if one does (someone else's, or a crash of an older script), detach it.
unmount_leftovers() {
    local target
    findmnt -rn -o TARGET | grep -F "$MATRIX/" | sort -r | while read -r target; do
        say "detaching a leftover mount: $target"
        umount -l "$target" || true
    done
}

# rm -rf a root only when nothing is mounted under it, checked right before.
remove_tree() {
    local dir=$1
    [ -e "$dir" ] || return 0
    case $dir in "$MATRIX"/*) ;; *) say "refusing to remove $dir: not under $MATRIX"; return 1 ;; esac
    unmount_leftovers
    if findmnt -rn -o TARGET | grep -qF "$dir"; then
        say "refusing to remove $dir: something is still mounted under it"
        return 1
    fi
    rm -rf --one-file-system "$dir"
}

# Processes still running chrooted in ROOT after its command ended: all started by this script,
# found by their root directory, ended by PID. Kernels whose test process is gone notice it within
# about a second and exit by themselves, so give them a few seconds first.
processes_in() {
    local proc
    for proc in /proc/[0-9]*; do
        [ "$(readlink "$proc/root" 2>/dev/null)" = "$1" ] && echo "${proc#/proc/}"
    done
}
end_leftover_processes() {
    local root=$1 pids tries
    for tries in 1 2 3 4 5; do
        pids=$(processes_in "$root")
        [ -z "$pids" ] && return 0
        sleep 1
    done
    say "ending $(echo "$pids" | wc -l) processes still running in $root 5 s after its command ended:"
    for pid in $pids; do
        say "  $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-90)"
        kill -9 "$pid" 2>/dev/null || true
    done
}

trap unmount_leftovers EXIT

# ---------------------------------------------------------------------------------------- pip
# This machine's pip configuration (index, extra indexes, find-links, CA file), as pip sees it.
pip_setting() {
    "$HOST_PYTHON" -m pip config list 2>/dev/null |
        sed -n "s/^[^.]*\.$1='\(.*\)'$/\1/p" | tail -n 1
}

PIP_ENV=()        # given to pip (make setup) only
RO_MOUNTS=()      # host path -> same path in the root, read-only
collect_pip_config() {
    local index extra links cert url path
    index=${PIP_INDEX_URL:-$(pip_setting index-url)}
    extra=${PIP_EXTRA_INDEX_URL:-$(pip_setting extra-index-url)}
    links=${PIP_FIND_LINKS:-$(pip_setting find-links)}
    cert=${PIP_CERT:-$(pip_setting cert)}
    for url in $index $extra; do
        case $url in file://*)
            path=${url#file://}
            RO_MOUNTS+=("$(dirname "$path")") ;;  # .../simple links to ../files
        esac
    done
    for url in $links; do
        case $url in file://*) RO_MOUNTS+=("${url#file://}") ;; /*) RO_MOUNTS+=("$url") ;; esac
    done
    [ -n "$index" ] && PIP_ENV+=("PIP_INDEX_URL=$index")
    [ -n "$extra" ] && PIP_ENV+=("PIP_EXTRA_INDEX_URL=$extra")
    [ -n "$links" ] && PIP_ENV+=("PIP_FIND_LINKS=$links")
    if [ -n "$cert" ] && [ -f "$cert" ]; then
        RO_MOUNTS+=("$cert=/opt/matrix-pip/ca.crt")
        PIP_ENV+=("PIP_CERT=/opt/matrix-pip/ca.crt")
    fi
    PIP_ENV+=("PIP_DISABLE_PIP_VERSION_CHECK=1" "PIP_DEFAULT_TIMEOUT=180" "PIP_PROGRESS_BAR=off")
}

# ---------------------------------------------------------------------------------------- roots
# in_root ROOT online|offline COMMAND [VAR=value...]
# Runs COMMAND with bash in ROOT, with only a minimal environment plus the given variables.
# offline: a new network namespace whose only interface is loopback.
in_root() {
    local root=$1 net=$2 cmd=$3
    shift 3
    local ns=(-m --propagation private)
    [ "$net" = offline ] && ns+=(-n)
    unshare "${ns[@]}" /bin/bash -c '
        set -e
        R=$1 net=$2 cmd=$3 mounts=$4
        shift 4
        if [ "$net" = offline ]; then ip link set lo up; fi
        mount -t proc proc "$R/proc"
        mount --rbind /dev "$R/dev"
        mount -t sysfs -o ro sysfs "$R/sys"
        for spec in $mounts; do
            src=${spec%%=*}; dst=${spec#*=}
            [ -e "$src" ] || continue
            if [ -d "$src" ]; then mkdir -p "$R$dst"; else mkdir -p "$(dirname "$R$dst")"; : >>"$R$dst"; fi
            mount --bind -o ro "$src" "$R$dst"
        done
        exec chroot "$R" /usr/bin/env -i "$@" /bin/bash -c "$cmd"
    ' in_root "$root" "$net" "$cmd" "$(ro_mount_specs)" \
        HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
ro_mount_specs() {
    local m
    for m in "${RO_MOUNTS[@]}"; do
        case $m in *=*) echo "$m" ;; *) echo "$m=$m" ;; esac
    done | tr '\n' ' '
}

apt_options() {
    # Debian testing's Release file can be past its Valid-Until between archive runs.
    echo "-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0"
}

sources_list() {
    case $1 in
        bookworm | trixie)
            echo "deb $MIRROR $1 main"
            echo "deb $MIRROR $1-updates main"
            echo "deb $SECURITY_MIRROR $1-security main" ;;
        *) echo "deb $MIRROR $1 main" ;;
    esac
}

# ensure_root SUITE LOG: a cached, ready root or a new one. Returns 3 if the archive failed.
ensure_root() {
    local suite=$1 log=$2 dir="$MATRIX/roots/$1" script=$1 rebuild=
    # FRESH=1 rebuilds each root once per run (forky serves two cells).
    case " $REBUILT " in *" $suite "*) ;; *) [ -n "${FRESH:-}" ] && rebuild=1 ;; esac
    if [ -z "$rebuild" ] && [ -f "$dir/.matrix-ready" ] && [ "$(cat "$dir/.matrix-ready")" = "$ROOT_PACKAGES" ]; then
        say "$suite: reusing the cached root $dir (FRESH=1 rebuilds it)"
        return 0
    fi
    if [ -n "$rebuild" ] || [ ! -f "$dir/.matrix-bootstrapped" ]; then
        REBUILT="$REBUILT $suite"
        remove_tree "$dir" || return 1
        mkdir -p "$MATRIX/roots"
        # bookworm's debootstrap has no script for forky: its sid script serves trixie, forky and sid.
        [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=sid
        say "$suite: debootstrap from $MIRROR (log: $log)"
        if ! debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" "$script" >>"$log" 2>&1; then
            tail -n 20 "$log"
            return 3
        fi
        sources_list "$suite" >"$dir/etc/apt/sources.list"
        touch "$dir/.matrix-bootstrapped"
    fi
    echo "wireshark-common wireshark-common/install-setuid boolean false" >"$dir/tmp/debconf"
    say "$suite: apt-get install $ROOT_PACKAGES"
    if ! in_root "$dir" online "
            set -e
            debconf-set-selections /tmp/debconf
            apt-get $(apt_options) update -q
            apt-get $(apt_options) -y -q dist-upgrade
            apt-get $(apt_options) -y -q install $ROOT_PACKAGES
            apt-get clean" DEBIAN_FRONTEND=noninteractive >>"$log" 2>&1; then
        tail -n 20 "$log"
        return 3
    fi
    echo "$ROOT_PACKAGES" >"$dir/.matrix-ready"
}

# ---------------------------------------------------------------------------------------- results
# One line per cell: cell gates python openssl build result seconds detail
# record CELL GATE PYTHON OPENSSL BUILD RESULT SECONDS DETAIL: one line in build/matrix/results/CELL.tsv
# (INFO arguments may carry PYTHON<tab>OPENSSL<tab>BUILD in one).
record() {
    mkdir -p "$MATRIX/results"
    printf '%s\t' "$@" | sed 's/\t$//' >"$MATRIX/results/$1.tsv"
    echo >>"$MATRIX/results/$1.tsv"
}
gate_of() { if cell_gates "$1"; then echo GATES; else echo report; fi; }

# Python, OpenSSL and how Python was built, measured by the interpreter itself.
INFO_CODE='import platform, ssl, sys, sysconfig
suites = "openssl" if "ssl-default-suites=openssl" in (sysconfig.get_config_var("CONFIG_ARGS") or "") else "python"
where = "debian" if sys.base_prefix == "/usr" else ("pyenv" if ".pyenv" in sys.base_prefix else sys.base_prefix)
print(platform.python_version(), ssl.OPENSSL_VERSION.split()[1],
      f"{where}, suites={suites}, min={ssl.create_default_context().minimum_version.name}", sep="\t")'

# VERBOSE=1 (CI) shows the whole pytest output; otherwise only failures and the final count.
show_progress() {
    if [ -n "${VERBOSE:-}" ]; then cat; else grep -E '^(FAILED|ERROR) |^=+ .* in [0-9.]+s'; fi
}
failed_tests() { grep -E '^(FAILED|ERROR) ' "$1" | sed -E 's/ - .*//' | sort -u; }
summary_of_run() {  # the "=== 3 failed, 200 passed in 80s ===" line
    grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$1" | tail -n 1 | tr -d '='
}

run_reference() {
    local log="$MATRIX/logs/reference.log" t0 t1 info rc
    t0=$SECONDS
    say "reference: make test in $REPO (this machine's Python, browser test included; log: $log)"
    make -C "$REPO" -s setup >"$log" 2>&1
    t1=$SECONDS
    info=$("$REPO/.venv/bin/python" -c "$INFO_CODE" 2>/dev/null || printf '?\t?\t?')
    make -C "$REPO" test 2>&1 | tee -a "$log" | show_progress
    rc=${PIPESTATUS[0]}
    finish_cell reference "$info" "$rc" "$((SECONDS - t0))" "$log" \
        "setup $((t1 - t0)) s, suite $((SECONDS - t1)) s"
}

# finish_cell CELL INFO RC SECONDS LOG TIMES
finish_cell() {
    local cell=$1 info=$2 rc=$3 secs=$4 log=$5 times=$6 result gate=report
    cell_gates "$cell" && gate=GATES
    if [ "$rc" = 0 ]; then
        result="passed"
    else
        result="FAILED ($(failed_tests "$log" | wc -l) tests, exit $rc)"
        failed_tests "$log" >"$MATRIX/logs/$cell.failed"
        if [ "$gate" = GATES ]; then
            loud "$cell FAILED (gating): $(summary_of_run "$log")" "log: $log"
        else
            loud "$cell FAILED (reported, does not gate CI): $(summary_of_run "$log")" "log: $log"
        fi
        failed_tests "$log" | sed 's/^/    /'
    fi
    [ "$rc" = 0 ] && rm -f "$MATRIX/logs/$cell.failed"
    record "$cell" "$gate" "$info" "$result" "$secs" "$times; $(summary_of_run "$log")"
}

run_root_cell() {
    local cell=$1 suite py log t0 t1 t2 t3 rc info dir src commit
    suite=$(cell_suite "$cell")
    py=$(cell_python "$cell")
    log="$MATRIX/logs/$cell.log"
    dir="$MATRIX/roots/$suite"
    : >"$log"
    t0=$SECONDS
    ensure_root "$suite" "$log"
    rc=$?
    if [ "$rc" != 0 ]; then
        loud "$cell SKIPPED: Debian's $suite archive could not be bootstrapped (debootstrap/apt failed)" \
            "This is not a test failure; the cell is left out of this run. Log: $log"
        record "$cell" "$(gate_of "$cell")" "?" "?" "?" \
            "UNAVAILABLE (archive)" "$((SECONDS - t0))" "see $log"
        return 0
    fi
    say "$cell: apt-get install $(cell_python_packages "$cell")"
    local install="apt-get $(apt_options) -y -q install $(cell_python_packages "$cell") && apt-get clean"
    # A cached root's package lists may be stale: refresh them once before giving up.
    if ! in_root "$dir" online "$install" DEBIAN_FRONTEND=noninteractive >>"$log" 2>&1 &&
        ! in_root "$dir" online "apt-get $(apt_options) update -q && $install" DEBIAN_FRONTEND=noninteractive >>"$log" 2>&1; then
        tail -n 5 "$log"
        loud "$cell SKIPPED: apt could not install $(cell_python_packages "$cell") from Debian's $suite" \
            "This is not a test failure; the cell is left out of this run. Log: $log"
        record "$cell" "$(gate_of "$cell")" "?" "?" "?" \
            "UNAVAILABLE (archive)" "$((SECONDS - t0))" "see $log"
        return 0
    fi
    t1=$SECONDS

    # A fresh clone of HEAD: the tests run on committed files, as a learner's clone would.
    src="$dir/srv/$cell"
    remove_tree "$src" || return 1
    mkdir -p "$dir/srv"
    git clone -q "$REPO" "$src" >>"$log" 2>&1 || { say "git clone failed"; return 1; }
    commit=$(git -C "$src" rev-parse --short HEAD)
    say "$cell: make setup PYTHON=$py in a fresh clone of $commit (with network; pip uses this machine's index)"
    if ! in_root "$dir" online "cd /srv/$cell && make setup PYTHON=$py" "${PIP_ENV[@]}" >>"$log" 2>&1; then
        tail -n 30 "$log"
        loud "$cell: make setup FAILED with $py" "log: $log"
        record "$cell" "$(gate_of "$cell")" \
            "$(in_root "$dir" offline "$py -c '$INFO_CODE'" 2>/dev/null || printf '?\t?\t?')" \
            "SETUP FAILED" "$((SECONDS - t0))" "root $((t1 - t0)) s; see $log"
        return 0
    fi
    t2=$SECONDS
    info=$(in_root "$dir" offline "/srv/$cell/.venv/bin/python -c '$INFO_CODE'" 2>/dev/null || printf '?\t?\t?')
    say "$cell: $(echo "$info" | tr '\t' ' ')"
    say "$cell: make test PYTEST_ARGS='$SUITE_ARGS' (loopback-only network, clean environment)"
    in_root "$dir" offline "cd /srv/$cell && timeout -k 30 $SUITE_TIMEOUT make test PYTEST_ARGS='$SUITE_ARGS'" \
        2>&1 | tee -a "$log" | show_progress
    rc=${PIPESTATUS[0]}
    t3=$SECONDS
    end_leftover_processes "$dir"
    finish_cell "$cell" "$info" "$rc" "$((t3 - t0))" "$log" \
        "root $((t1 - t0)) s, setup $((t2 - t1)) s, suite $((t3 - t2)) s"
}

# print_summary CELL...: the table of the cells' last results; returns 1 if a gating cell did not
# pass (failed tests, failed setup, or no result at all). An unavailable archive does not gate.
print_summary() {
    local cell file status=0
    printf '\n%s\n' "========================================= matrix summary ========================================="
    {
        printf 'env\tgate\tPython\tOpenSSL\tbuild\tresult\tseconds\ttimes\n'
        for cell in "$@"; do
            file="$MATRIX/results/$cell.tsv"
            if [ -s "$file" ]; then cat "$file"; else printf '%s\t%s\t?\t?\t?\tNOT RUN\t-\t-\n' "$cell" "$(gate_of "$cell")"; fi
        done
    } | awk -F'\t' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
        END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf("%-" w[i] "s  ", cell[r, i]); sub(/ +$/, "", line); print line } }'
    for cell in "$@"; do
        file="$MATRIX/results/$cell.tsv"
        if cell_gates "$cell" && ! cut -f6 "$file" 2>/dev/null | grep -qE '^(passed|UNAVAILABLE)'; then status=1; fi
        if [ -s "$MATRIX/logs/$cell.failed" ] && [ -s "$file" ] && cut -f6 "$file" | grep -q FAILED; then
            printf '\nfailing in %s (%s):\n' "$cell" "$(gate_of "$cell")"
            sed 's/^/  /' "$MATRIX/logs/$cell.failed"
        fi
    done
    for cell in "$@"; do
        if ! cell_gates "$cell" && [ -s "$MATRIX/results/$cell.tsv" ] && ! cut -f6 "$MATRIX/results/$cell.tsv" | grep -q '^passed'; then
            loud "REPORTED, NOT GATING: $cell did not pass ($(cut -f6 "$MATRIX/results/$cell.tsv")). Fix it before it becomes a gate."
        fi
    done
    if [ "$status" = 1 ]; then
        loud "MATRIX FAILED: a gating environment (reference, trixie, bookworm) failed or did not run"
    else
        say "every gating environment passed or its archive was unavailable"
    fi
    return "$status"
}

# ---------------------------------------------------------------------------------------- main
# tools/matrix.sh --in SUITE [--online] 'command': a shell command in a cached root (for debugging),
# loopback-only unless --online (then pip gets this machine's index, as in make setup).
if [ "${1:-}" = --in ]; then
    dir="$MATRIX/roots/${2:?usage: tools/matrix.sh --in SUITE [--online] COMMAND}"
    shift 2
    [ -f "$dir/.matrix-ready" ] || { echo "no root at $dir: run tools/matrix.sh with a cell first" >&2; exit 2; }
    collect_pip_config
    trap - EXIT
    if [ "${1:-}" = --online ]; then shift; in_root "$dir" online "$*" "${PIP_ENV[@]}"
    else in_root "$dir" offline "$*"; fi
    exit
fi
# tools/matrix.sh --summary [CELL...]: the table of the last results, and the gate (exit status).
if [ "${1:-}" = --summary ]; then
    shift
    trap - EXIT
    print_summary ${*:-$ALL_CELLS}
    exit
fi

# tools/matrix.sh --markdown [CELL...]: the last results as README's "Supported versions" table.
if [ "${1:-}" = --markdown ]; then
    shift
    echo "| environment | Python | OpenSSL | how Python is built (\`create_default_context().minimum_version\`) | CI |"
    echo "|---|---|---|---|---|"
    newest=""
    for cell in ${*:-$ALL_CELLS}; do
        file="$MATRIX/results/$cell.tsv"
        [ -s "$file" ] || continue
        IFS=$'\t' read -r _ _ python openssl build result _ <"$file"
        case $build in
            debian,*) origin="Debian's package" ;; pyenv,*) origin="built by pyenv" ;; *) origin=${build%%,*} ;;
        esac
        case $build in *suites=openssl*) suites=", \`--with-ssl-default-suites=openssl\`" ;; *) suites="" ;; esac
        if cell_gates "$cell"; then gate="gates"; else gate="reported"; fi
        echo "| $(cell_title "$cell") | $python | $openssl | $origin$suites (\`${build##*min=}\`) | $gate |"
        if [ -z "$newest" ] || [ "$file" -nt "$newest" ]; then newest=$file; fi
    done
    [ -n "$newest" ] && echo && echo "Measured by \`.ci/run\` on $(date -u -r "$newest" +%Y-%m-%d)."
    exit
fi

CELLS=${*:-${CELLS:-$ALL_CELLS}}
for cell in $CELLS; do
    case " $ALL_CELLS " in *" $cell "*) ;; *) echo "unknown cell '$cell' (cells: $ALL_CELLS)" >&2; exit 2 ;; esac
done
needs_root=0
for cell in $CELLS; do [ "$cell" = reference ] || needs_root=1; done
if [ "$needs_root" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "The Debian cells need root (debootstrap, chroot, unshare): sudo make test-matrix" >&2
    exit 2
fi
if [ "$needs_root" = 1 ]; then
    for tool in debootstrap unshare chroot ip findmnt git; do
        command -v "$tool" >/dev/null || { echo "missing on this machine: $tool (.ci/run installs it)" >&2; exit 2; }
    done
fi

mkdir -p "$MATRIX/logs" "$MATRIX/results"
# One run at a time in the Debian roots: two would share them.
if [ "$needs_root" = 1 ]; then
    exec 9>"$MATRIX/.lock"
    flock -n 9 || { echo "another tools/matrix.sh is running (lock: $MATRIX/.lock)" >&2; exit 2; }
fi
collect_pip_config
START=$SECONDS
for cell in $CELLS; do rm -f "$MATRIX/results/$cell.tsv" "$MATRIX/logs/$cell.failed"; done
for cell in $CELLS; do
    if [ "$cell" = reference ]; then run_reference; else run_root_cell "$cell"; fi
done
say "these cells took $((SECONDS - START)) s"
# SUMMARY=0: no table (.ci/run prints one for the whole matrix at the end), only the exit status.
if [ "${SUMMARY:-1}" = 0 ]; then print_summary $CELLS >/dev/null; else print_summary $CELLS; fi
