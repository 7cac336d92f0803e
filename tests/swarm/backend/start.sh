#!/bin/sh
# Entry point of wharf-test/backend.
#
#   GET /                 the task's name: $TASK_NAME, or the hostname (a swarm test
#                         sets --hostname '{{.Task.Name}}', which is unique per task)
#   GET /cgi-bin/slow?S   the same after sleeping S seconds (default 1)
#
# On SIGTERM it stops accepting at once, lets requests in flight finish for
# $DRAIN_SECONDS (default 1), then exits: a well-behaved app, not one that hangs on
# until swarm kills it.
set -eu

name="${TASK_NAME:-$(hostname)}"
printf '%s\n' "$name" >/www/index.html

httpd -f -p "${PORT:-80}" -h /www &
pid=$!

stop() {
    kill "$pid" 2>/dev/null || true
    sleep "${DRAIN_SECONDS:-1}"
    exit 0
}
trap stop TERM INT
wait "$pid"
