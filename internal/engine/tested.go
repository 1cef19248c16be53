package engine

// TestedVersions are the Docker engine versions the whole integration
// suite runs on in CI, oldest first: make test on this host's engine, and
// make engine-matrix on the others (scripts/engines.sh). ckpt version
// prints them, and docs/engines.md's table names each (a test checks it).
// Change it together with the CI matrix and that table.
func TestedVersions() []string {
	return []string{"20.10.24", "26.1.5", "28.5.2"}
}
