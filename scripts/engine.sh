#!/usr/bin/env bash
# engine.sh start|stop|restart|status — run the Docker engine with experimental
# features on. Uses systemd when it is PID 1, otherwise runs dockerd itself
# (containers, CI machines and other hosts without systemd).
set -euo pipefail

LOG=${CKPT_DOCKERD_LOG:-/var/log/ckpt-dockerd.log}
PIDFILE=/var/run/docker.pid
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "engine: $*" >&2; }

have_systemd() { [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemctl >/dev/null; }

running() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

wait_up() {
	for _ in $(seq 1 120); do
		running && return 0
		sleep 0.5
	done
	say "dockerd did not answer within 60 s; last lines of $LOG:"
	tail -n 30 "$LOG" >&2 || true
	return 1
}

start() {
	if running; then return 0; fi
	if have_systemd; then
		systemctl start docker
	else
		# A stale pid file from a killed engine makes dockerd refuse to start.
		if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE"; fi
		say "starting dockerd (log: $LOG)"
		setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
	fi
	wait_up
}

stop() {
	if have_systemd; then
		systemctl stop docker.socket docker 2>/dev/null || systemctl stop docker
		return 0
	fi
	[ -f "$PIDFILE" ] || return 0
	pid=$(cat "$PIDFILE")
	kill -TERM "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
	for _ in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
		sleep 0.5
	done
	say "dockerd (pid $pid) did not stop within 60 s"
	return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) stop; start ;;
status) running ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
