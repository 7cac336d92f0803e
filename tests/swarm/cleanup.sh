#!/usr/bin/env bash
# Removes what swarm end-to-end test runs left behind. Every stack, service and network
# the tests create is named wst-...-PID, PID being the test process; this removes those
# whose process is gone (killed, or ended before its cleanup finished), and leaves the
# ones of a run still going alone.
#
# Usage: tests/swarm/cleanup.sh
set -euo pipefail

# True when the name's owner (its last dash-separated field, before any `_` of a stack
# service) is a running test process.
owner_alive() {
    local base=${1%%_*} pid comm
    pid=${base##*-}
    case "$pid" in
    '' | *[!0-9]*) return 1 ;;
    esac
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ "$comm" == e2e* ]]
}

stale() {
    local name
    while read -r name; do
        [[ "$name" == wst-* ]] || continue
        owner_alive "$name" || printf '%s\n' "$name"
    done
}

mapfile -t services < <(docker service ls --format '{{.Name}}' | stale)
for service in "${services[@]}"; do
    docker service rm "$service" >/dev/null && echo "removed service $service"
done

mapfile -t stacks < <(docker stack ls --format '{{.Name}}' | stale)
for stack in "${stacks[@]}"; do
    docker stack rm "$stack" >/dev/null 2>&1 && echo "removed stack $stack"
done

# A network goes once the containers of the removed tasks have stopped.
mapfile -t networks < <(docker network ls --format '{{.Name}}' | stale)
for network in "${networks[@]}"; do
    for _ in $(seq 150); do
        if docker network rm "$network" >/dev/null 2>&1 || ! docker network inspect "$network" >/dev/null 2>&1; then
            echo "removed network $network"
            continue 2
        fi
        sleep 0.2
    done
    echo "cleanup.sh: network $network is still in use after 30s" >&2
    exit 1
done
