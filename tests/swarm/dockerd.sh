#!/usr/bin/env bash
# The Docker engine of the swarm end-to-end tests.
#
#   tests/swarm/dockerd.sh ensure   start dockerd unless `docker info` answers, then make
#                                   this node a swarm manager if it is not one
#   tests/swarm/dockerd.sh kill     SIGKILL the dockerd that `ensure` started (by its pid)
#                                   and wait until it is gone; refuses any other dockerd
#   tests/swarm/dockerd.sh owned    exit 0 when the running dockerd is one `ensure`
#                                   started (so the tests may kill it)
#
# Why SIGKILL and no --live-restore: dockerd 20.10 refuses to start with --live-restore
# once the node is in a swarm ("--live-restore daemon configuration is incompatible with
# swarm mode"). Without it, a daemon stopped with SIGTERM stops every container, wharf
# included, so nothing could keep serving. A killed daemon (a crash) leaves the
# containers running under their containerd shims until it comes back; then it stops
# them and swarm starts new tasks. The daemon-restart test measures both phases.
#
# Its output goes to $TARGET/swarm/dockerd.log and its pid to $TARGET/swarm/dockerd.pid,
# TARGET being $CARGO_TARGET_DIR or the repository's target/. Fails loudly (non-zero,
# with the log's tail) when the engine does not come up: CI must not skip these tests.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state_dir="${CARGO_TARGET_DIR:-$repo/target}/swarm"
pid_file="$state_dir/dockerd.pid"
log_file="$state_dir/dockerd.log"
# How long the engine gets to answer after being started.
START_TIMEOUT=90

fail() {
    printf 'dockerd.sh: %s\n' "$*" >&2
    if [ -n "${started:-}" ] && [ -s "$log_file" ]; then
        printf -- '---- last lines of %s ----\n' "$log_file" >&2
        tail -n 40 "$log_file" >&2
    fi
    exit 1
}

# True when `docker info` answers (the engine is up and the client can reach it).
engine_up() {
    docker info >/dev/null 2>&1
}

# The pid recorded by `start`, if that process is still a running dockerd.
owned_pid() {
    local pid
    [ -s "$pid_file" ] || return 1
    pid=$(<"$pid_file")
    [ -r "/proc/$pid/comm" ] && [ "$(<"/proc/$pid/comm")" = dockerd ] || return 1
    printf '%s\n' "$pid"
}

start() {
    command -v dockerd >/dev/null 2>&1 || fail "dockerd is not installed (apt-get install docker.io)"
    mkdir -p "$state_dir"
    started=1
    printf '\n==== %s: starting dockerd\n' "$(date -u +%FT%TZ)" >>"$log_file"
    # setsid: the daemon must outlive the shell (and the test process) that started it.
    setsid dockerd >>"$log_file" 2>&1 </dev/null &
    local pid=$! waited=0
    printf '%s\n' "$pid" >"$pid_file"
    until engine_up; do
        kill -0 "$pid" 2>/dev/null || fail "dockerd exited during startup"
        [ "$waited" -lt $((START_TIMEOUT * 5)) ] || fail "dockerd did not answer within ${START_TIMEOUT}s"
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "dockerd is up (pid $pid, log $log_file)"
}

swarm_state() {
    docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true
}

# Waits until this node is an active swarm manager, initialising the swarm if needed.
ensure_swarm() {
    local state waited=0
    state=$(swarm_state)
    # After a restart the node passes through "pending" for a moment.
    while [ "$state" = pending ] && [ "$waited" -lt 300 ]; do
        sleep 0.2
        waited=$((waited + 1))
        state=$(swarm_state)
    done
    if [ "$state" != active ]; then
        echo "swarm state is '${state:-unknown}': docker swarm init --advertise-addr 127.0.0.1"
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null ||
            fail "docker swarm init failed"
    fi
    waited=0
    until docker node ls >/dev/null 2>&1; do
        [ "$waited" -lt 300 ] || fail "this node is not a working swarm manager (docker node ls fails)"
        sleep 0.2
        waited=$((waited + 1))
    done
    echo "swarm active; this node is a manager"
}

ensure() {
    if engine_up; then
        echo "Docker engine already running$(owned_pid >/dev/null && echo ' (started by this script)')"
    else
        start
    fi
    ensure_swarm
}

kill_owned() {
    local pid waited=0
    pid=$(owned_pid) || fail "refusing to kill a dockerd this script did not start"
    echo "killing dockerd (pid $pid)"
    kill -KILL "$pid"
    while [ -d "/proc/$pid" ]; do
        [ "$waited" -lt 150 ] || fail "dockerd (pid $pid) still there 30s after SIGKILL"
        sleep 0.2
        waited=$((waited + 1))
    done
}

case "${1:-}" in
ensure) ensure ;;
kill) kill_owned ;;
owned) owned_pid >/dev/null ;;
*)
    echo "usage: $0 ensure|kill|owned" >&2
    exit 2
    ;;
esac
