#!/usr/bin/env bash
# Two lanpay peers, alice and bob, on this machine over loopback.
#
# Both run inside a private network namespace that holds only `lo`, so nothing
# is sent on the machine's real network.  With a terminal and tmux, you get a
# tmux window with alice on the left and bob on the right to type into
# (try: balance, pay 10 lunch, history, peer, exit).  Ctrl-b then o (or a mouse
# click) moves to the other pane; after exit, a pane stays until you press Enter,
# so its Goodbye. can be read.  Without a terminal, without
# tmux, or with --scripted, the two real processes play a short session and
# both transcripts are printed.
#
# usage: tools/loopback_demo.sh [--scripted | --tmux]
set -euo pipefail

mode=auto
case "${1:-}" in
    ""|--auto) ;;
    --scripted) mode=scripted ;;
    --tmux) mode=tmux ;;
    -h|--help) sed -n '2,/^# usage/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--scripted | --tmux]" >&2; exit 2 ;;
esac

die() { echo "loopback_demo: $*" >&2; exit 1; }

# --- outside: enter a private namespace and run this script again in it -------
if [ -z "${LANPAY_DEMO_INSIDE:-}" ]; then
    command -v unshare >/dev/null || die "needs unshare (util-linux)"
    command -v ip >/dev/null || die "needs ip (iproute2)"
    if [ "$(id -u)" -eq 0 ]; then
        enter=(unshare --net)
    else
        enter=(unshare --net --map-root-user)  # unprivileged user namespaces
    fi
    "${enter[@]}" true 2>/dev/null \
        || die "cannot create a network namespace: run as root (or enable user namespaces)"
    LANPAY_DEMO_INSIDE=1 exec "${enter[@]}" -- "$0" "--$mode"
fi

# --- inside: only loopback exists here --------------------------------------
ip link set lo up
links=$(ip -o link show | awk -F': ' '{print $2}')
[ "$links" = "lo" ] || die "expected only lo in the private namespace, found: $links"

if command -v lanpay >/dev/null; then
    LANPAY=(lanpay)
else
    LANPAY=(python3 -m lanpay)
fi
"${LANPAY[@]}" --version >/dev/null 2>&1 \
    || die "lanpay is not installed: run  python3 -m pip install -e .  first"

if [ "$mode" = auto ]; then
    if [ -t 0 ] && [ -t 1 ] && command -v tmux >/dev/null; then mode=tmux; else mode=scripted; fi
fi

if [ "$mode" = tmux ]; then
    command -v tmux >/dev/null || die "--tmux needs tmux installed"
    [ -t 0 ] && [ -t 1 ] || die "--tmux needs a terminal"
    pane() {  # pane NAME: lanpay in a pane that stays readable after it leaves
        local run
        run=$(printf '%q ' "${LANPAY[@]}" --name "$1" --interface lo)
        printf '%s; echo; echo "[%s left with status $?; press Enter to close this pane]"; read -r _' \
            "$run" "$1"
    }
    unset TMUX
    sockdir=$(mktemp -d)
    trap 'tmux -S "$sockdir/tmux" kill-server 2>/dev/null || true; rm -rf "$sockdir"' EXIT
    echo "alice is on the left, bob on the right: Ctrl-b then o (or a click) switches pane."
    sleep 1
    tmux -S "$sockdir/tmux" -f /dev/null \
        new-session -s lanpay-demo -n "alice | bob" "$(pane alice)" \; \
        set -g mouse on \; \
        set -g status-left-length 60 \; \
        set -g status-left " alice | bob · Ctrl-b o: other pane · " \; \
        split-window -h "$(pane bob)" \; \
        select-pane -L
    exit 0
fi

# --- scripted: feed both processes through fifos, wait for each answer ------
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start_peer() {  # start_peer NAME FD: the peer reads commands from fd FD
    mkfifo "$work/$1.in"
    : >"$work/$1.log"
    "${LANPAY[@]}" --name "$1" --interface lo <"$work/$1.in" >>"$work/$1.log" 2>&1 &
    pids+=($!)
    eval "exec $2>\"\$work/\$1.in\""
}

say() {  # say NAME FD COMMAND...: type a command, and note it in the transcript
    local name=$1 fd=$2
    shift 2
    echo "$name> $*" >>"$work/$name.log"
    echo "$*" >&"$fd"
}

wait_for() {  # wait_for NAME COUNT REGEX: until REGEX has matched COUNT lines (20 s at most)
    local tries=0
    while [ "$(grep -c -E "$3" "$work/$1.log" || true)" -lt "$2" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 200 ]; then
            echo "loopback_demo: $1 never printed /$3/; transcript so far:" >&2
            cat "$work/$1.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

amount='^-?[0-9]+\.[0-9]{2}$'
start_peer alice 3
start_peer bob 4
wait_for alice 1 '^Welcome'
wait_for bob 1 '^Welcome'
say alice 3 balance;       wait_for alice 1 "$amount"
say bob 4 balance;         wait_for bob 1 "$amount"
say alice 3 pay 10 coffee; wait_for alice 1 '^Sent'
wait_for bob 1 'You were paid'
say alice 3 balance;       wait_for alice 2 "$amount"
say bob 4 balance;         wait_for bob 2 "$amount"
say alice 3 exit;          wait_for alice 1 '^Goodbye'
say bob 4 exit;            wait_for bob 1 '^Goodbye'
exec 3>&- 4>&-
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
pids=()

for name in alice bob; do
    echo "=== $name's screen"
    cat "$work/$name.log"
    echo
done
[ "$status" -eq 0 ] || die "a peer exited with status $status"
