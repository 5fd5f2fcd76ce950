#!/bin/sh
# sh wrapper.sh <command> [args...]: run a game server that cannot hear SIGTERM.
#
# Headless Godot 4 installs no SIGTERM handler, so the signal kills it before any script runs
# and the players it holds go unsaved. Under this wrapper, TERM or INT instead creates the stop
# file named by HOMEPORT_STOP_FILE, which the game polls; the wrapper then waits for the game to
# save everyone and leave on its own, and exits with the game's status. It forwards no signal:
# the fleet's SIGKILL after its grace period is the last word.

if [ "$#" -eq 0 ]; then
    echo "usage: sh wrapper.sh <command> [args...]" >&2
    exit 2
fi

if [ -z "${HOMEPORT_STOP_FILE:-}" ]; then
    HOMEPORT_STOP_FILE="${TMPDIR:-/tmp}/homeport-stop.$$"
fi
export HOMEPORT_STOP_FILE
rm -f "$HOMEPORT_STOP_FILE"  # one left by an earlier run would stop the game at once
trap 'rm -f "$HOMEPORT_STOP_FILE"' EXIT

# Only a builtin runs in the trap: an external command would make the shell wait for it and
# possibly reap the game early, losing its exit status.
stopping=
trap 'if [ -z "$stopping" ]; then stopping=1; : >"$HOMEPORT_STOP_FILE"; fi' TERM INT

"$@" &
child=$!

# A trapped signal makes `wait` return early (status > 128) while the game still runs: wait
# again until it has really gone. A game that exits meanwhile stays a zombie (kill -0 still
# succeeds) until `wait` collects its status, so that status is never missed.
status=0
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done
exit "$status"
