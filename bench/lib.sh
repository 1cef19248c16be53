# bench/lib.sh — sourced by bench/run.sh and bench/soak.sh, after they set
# NAME (the container), VOLUME and IMAGE: bench_init makes the work
# directory $work with the store in it (CKPT_STORE), removes the container,
# the volume and $work when the script exits, and imports the test app
# (internal/testapp) as $IMAGE.
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
	rm -rf "$work"
}
