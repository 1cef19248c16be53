# bench/lib.sh — sourced by the benchmarks after they set NAME (the
# container), VOLUME and IMAGE: bench_init makes the work directory $work
# with the store in it (CKPT_STORE), removes the container, the volume,
# whatever bench_more_cleanup (when defined) removes, and $work when the
# script exits, and imports the test app (internal/testapp) as $IMAGE.
bench_init() {
	work=$(mktemp -d "/var/tmp/$1.XXXXXX")
	export CKPT_STORE=$work/store
	trap bench_cleanup EXIT
	CGO_ENABLED=0 go build -o "$work/app" ./internal/testapp
	tar -C "$work" -c app | docker import -c 'ENTRYPOINT ["/app"]' -c 'EXPOSE 8080' - "$IMAGE" >/dev/null
}

bench_cleanup() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	docker volume rm "$VOLUME" >/dev/null 2>&1 || true
	if declare -F bench_more_cleanup >/dev/null; then bench_more_cleanup; fi
	rm -rf "$work"
}

# bench_wait CONTAINER: until the test app in CONTAINER (port 8080
# published) answers.
bench_wait() {
	until curl -fsS "http://$(docker port "$1" 8080/tcp | sed -n 1p)/state" >/dev/null 2>&1; do sleep 0.05; done
}
