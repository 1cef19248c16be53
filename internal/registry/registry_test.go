package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// What people meet first gets a hint: no registry there, a registry that
// talks HTTP, a CA not trusted, credentials missing. (The acceptance of
// push and pull is in integration/registry_test.go, against Debian's
// docker-registry; these are the refusals that need no registry at all.)
func TestExplain(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pull := func(ref string, o Options) error {
		_, _, err := Pull(context.Background(), st, ref, PullOptions{Options: o})
		return err
	}
	// Nothing listens on port 1.
	if err := pull("127.0.0.1:1/team/web:v1", Options{}); err == nil || !strings.Contains(hint.Of(err), "is the registry running") {
		t.Errorf("no registry: %v (hint %q)", err, hint.Of(err))
	}
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	host := strings.TrimPrefix(plain.URL, "http://")
	if err := pull(host+"/team/web:v1", Options{}); err == nil || !strings.Contains(hint.Of(err), "--plain-http") {
		t.Errorf("an HTTP registry: %v (hint %q)", err, hint.Of(err))
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer tls.Close()
	host = strings.TrimPrefix(tls.URL, "https://")
	if err := pull(host+"/team/web:v1", Options{}); err == nil || !strings.Contains(hint.Of(err), "--ca-file") {
		t.Errorf("a CA not trusted: %v (hint %q)", err, hint.Of(err))
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{}`), 0o600)
	if err := pull(host+"/team/web:v1", Options{Insecure: true, DockerConfig: cfg}); err == nil || !strings.Contains(hint.Of(err), "docker login "+host) {
		t.Errorf("no credentials: %v (hint %q)", err, hint.Of(err))
	}
	if err := pull("reg.example/web", Options{}); err == nil || !strings.Contains(err.Error(), "names no tag or digest") {
		t.Errorf("no tag: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(st.Root, "containers", "*")); len(left) > 0 {
		t.Errorf("a refused pull wrote into the store: %v", left)
	}
}
