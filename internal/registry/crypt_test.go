package registry

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// The same chunk under the same data key is the same blob (so pushes
// share it); another key or label opens nothing, nor does a flipped byte.
func TestSeal(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &Encryption{Recipients: []age.Recipient{id.Recipient()}, Set: []string{id.Recipient().String()}, KeyDir: filepath.Join(dir, "keys")}
	k1, err := dataKey("reg.example/web", e)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := dataKey("reg.example/web", e)
	k3, _ := dataKey("reg.example/db", e)
	if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) {
		t.Fatal("a repository's data key is not kept, or is another's")
	}
	if st, err := os.Stat(e.KeyDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys directory: %v %v", st, err)
	}
	s1, _ := newSealer(k1, KeyMediaTypeV2)
	s3, _ := newSealer(k3, KeyMediaTypeV2)
	clear := bytes.Repeat([]byte("memory "), 1000)
	a, b := s1.seal(clear, "x"), s1.seal(clear, "x")
	if !bytes.Equal(a, b) || int64(len(a)) != sealedSize(int64(len(clear))) || bytes.Contains(a, []byte("memory memory")) {
		t.Fatal("sealing is not deterministic, not of the size said, or not sealed")
	}
	if got, err := s1.open(a, "x"); err != nil || !bytes.Equal(got, clear) {
		t.Fatalf("open: %v", err)
	}
	if _, err := s1.open(a, "y"); err == nil {
		t.Error("opened under another label")
	}
	if _, err := s3.open(a, "x"); err == nil {
		t.Error("opened with another key")
	}
	a[len(a)/2] ^= 1
	if _, err := s1.open(a, "x"); err == nil {
		t.Error("opened a flipped byte")
	}

	kb, err := keyBlob(k1, e)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openKey(kb, &Decryption{Identities: []age.Identity{id}}); err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("openKey: %v", err)
	}
	if _, err := openKey(kb, &Decryption{}); !errors.Is(err, ErrEncrypted) {
		t.Errorf("no identity: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := openKey(kb, &Decryption{Identities: []age.Identity{other}}); err == nil {
		t.Error("another identity opened the data key")
	}
}

// Version 2 seals under two subkeys of the data key (HKDF-SHA256, with the
// info strings format.md gives), version 1 under the data key itself: the
// same bytes make other blobs, and neither version opens the other's.
func TestSealVersions(t *testing.T) {
	k := make([]byte, chacha20poly1305.KeySize)
	rand.Read(k)
	v1, err := newSealer(k, KeyMediaType)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newSealer(k, KeyMediaTypeV2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSealer(k, ChunkMediaType); err == nil {
		t.Error("a sealer for a media type that is not a data key's")
	}
	for _, tc := range []struct {
		t string
		v int
	}{{KeyMediaType, 1}, {KeyMediaTypeV2, 2}, {ChunkMediaType, 0}, {"application/vnd.ckpt.checkpoint.key.v3+age", 0}} {
		if got := keyVersion(tc.t); got != tc.v {
			t.Errorf("keyVersion(%s) = %d, want %d", tc.t, got, tc.v)
		}
	}

	nonceKey, err := hkdf.Key(sha256.New, k, nil, "ckpt registry v2 nonce", 32)
	if err != nil {
		t.Fatal(err)
	}
	sealKey, err := hkdf.Key(sha256.New, k, nil, "ckpt registry v2 seal", 32)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(nonceKey, sealKey) || bytes.Equal(nonceKey, k) || bytes.Equal(sealKey, k) {
		t.Fatal("the subkeys are not distinct from each other and from the data key")
	}
	if !bytes.Equal(v2.nonceKey, nonceKey) || !bytes.Equal(v1.nonceKey, k) {
		t.Fatal("the nonce's HMAC key is not the one of the version")
	}

	clear, label := []byte("the same chunk"), "x"
	b1, b2 := v1.seal(clear, label), v2.seal(clear, label)
	if bytes.Equal(b1, b2) || bytes.Equal(b1[:chacha20poly1305.NonceSize], b2[:chacha20poly1305.NonceSize]) {
		t.Fatal("versions 1 and 2 seal the same bytes the same way")
	}
	// Each blob is as format.md describes it: the nonce is the HMAC of
	// the label, a zero byte and the bytes, and the AEAD opens it with
	// the label as associated data.
	for _, tc := range []struct {
		name          string
		blob          []byte
		hmacKey, aKey []byte
	}{{"v1", b1, k, k}, {"v2", b2, nonceKey, sealKey}} {
		m := hmac.New(sha256.New, tc.hmacKey)
		m.Write([]byte(label + "\x00"))
		m.Write(clear)
		if !bytes.Equal(tc.blob[:chacha20poly1305.NonceSize], m.Sum(nil)[:chacha20poly1305.NonceSize]) {
			t.Errorf("%s: the nonce is not the HMAC of its key", tc.name)
		}
		a, _ := chacha20poly1305.New(tc.aKey)
		if got, err := a.Open(nil, tc.blob[:chacha20poly1305.NonceSize], tc.blob[chacha20poly1305.NonceSize:], []byte(label)); err != nil || !bytes.Equal(got, clear) {
			t.Errorf("%s: the AEAD key does not open it: %v", tc.name, err)
		}
	}

	if got, err := v1.open(b1, label); err != nil || !bytes.Equal(got, clear) {
		t.Errorf("v1 does not open its own blob: %v", err)
	}
	if got, err := v2.open(b2, label); err != nil || !bytes.Equal(got, clear) {
		t.Errorf("v2 does not open its own blob: %v", err)
	}
	if _, err := v2.open(b1, label); err == nil {
		t.Error("a blob sealed under version 1 opened as version 2")
	}
	if _, err := v1.open(b2, label); err == nil {
		t.Error("a blob sealed under version 2 opened as version 1")
	}
}

// The key files are named under the store's salt: their names are not the
// plain sha256 of the repository and the set (for a passphrase, a guess of
// it could be checked against it), the same push finds its key again, a
// key file of before the salt is renamed and kept, and two stores have
// other salts.
func TestDataKeySalt(t *testing.T) {
	const repo = "reg.example/web"
	e := &Encryption{Set: []string{"passphrase\nhunter2"}, KeyDir: filepath.Join(t.TempDir(), "keys")}
	text := "ckpt registry data key\n" + repo + "\npassphrase\nhunter2"
	unsalted := sha256.Sum256([]byte(text))

	k1, err := dataKey(repo, e)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := dataKey(repo, e)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("a second push has another key: %v", err)
	}
	salt, err := os.ReadFile(filepath.Join(e.KeyDir, "salt"))
	if err != nil || len(salt) != 32 {
		t.Fatalf("salt: %d bytes, %v", len(salt), err)
	}
	if st, err := os.Stat(filepath.Join(e.KeyDir, "salt")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("salt: %v %v", st, err)
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(text))
	salted := hex.EncodeToString(m.Sum(nil))
	names := keyFiles(t, e.KeyDir)
	if len(names) != 2 || names[0] != salted || names[1] != "salt" {
		t.Fatalf("keys holds %v, want %s and salt", names, salted)
	}
	if salted == hex.EncodeToString(unsalted[:]) {
		t.Fatal("the key file is named by the plain sha256")
	}
	if k, _ := os.ReadFile(filepath.Join(e.KeyDir, salted)); !bytes.Equal(k, k1) {
		t.Fatal("the key file does not hold the key")
	}

	// A store of before the salt: its key is renamed, and used.
	old := &Encryption{Set: e.Set, KeyDir: filepath.Join(t.TempDir(), "keys")}
	os.Mkdir(old.KeyDir, 0o700)
	legacy := make([]byte, 32)
	rand.Read(legacy)
	if err := os.WriteFile(filepath.Join(old.KeyDir, hex.EncodeToString(unsalted[:])), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if k, err := dataKey(repo, old); err != nil || !bytes.Equal(k, legacy) {
			t.Fatalf("the key of before the salt is not kept: %v", err)
		}
	}
	oldSalt, _ := os.ReadFile(filepath.Join(old.KeyDir, "salt"))
	m = hmac.New(sha256.New, oldSalt)
	m.Write([]byte(text))
	if names := keyFiles(t, old.KeyDir); len(names) != 2 || names[0] != hex.EncodeToString(m.Sum(nil)) {
		t.Fatalf("the key file of before the salt is not renamed: %v", names)
	}
	if bytes.Equal(oldSalt, salt) {
		t.Fatal("two stores have the same salt")
	}

	// Pushes that make the salt and the key at once all use the same.
	race := &Encryption{Set: e.Set, KeyDir: filepath.Join(t.TempDir(), "keys")}
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := dataKey(repo, race)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("pushes at once have other keys")
		}
	}
	if names := keyFiles(t, race.KeyDir); len(names) != 2 {
		t.Fatalf("pushes at once left %v", names)
	}

	// A salt that is not one is not replaced: the keys depend on it.
	os.WriteFile(filepath.Join(race.KeyDir, "salt"), []byte("short"), 0o600)
	if _, err := dataKey(repo, race); err == nil || !strings.Contains(err.Error(), "has 5 bytes, not 32") {
		t.Errorf("a damaged salt: %v", err)
	}
}

// keyFiles returns the names in a keys directory, sorted.
func keyFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// memRegistry is the OCI distribution API in memory, as much of it as Push
// and Pull use, for one repository.
type memRegistry struct {
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[string][]byte // by tag and by digest
}

func newMemRegistry(t *testing.T) (*memRegistry, string) {
	r := &memRegistry{blobs: map[digest.Digest][]byte{}, manifests: map[string][]byte{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, strings.TrimPrefix(srv.URL, "http://")
}

func (m *memRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := r.URL.Path
	body, _ := io.ReadAll(r.Body)
	send := func(b []byte, mediaType string) {
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(b).String())
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	}
	switch _, after, _ := strings.Cut(p, "/blobs/"); {
	case p == "/v2/":
	case strings.Contains(p, "/blobs/uploads/") && r.Method == http.MethodPost:
		w.Header().Set("Location", p+"1")
		w.WriteHeader(http.StatusAccepted)
	case strings.Contains(p, "/blobs/uploads/") && r.Method == http.MethodPut:
		d := digest.Digest(r.URL.Query().Get("digest"))
		if digest.FromBytes(body) != d {
			http.Error(w, "digest", http.StatusBadRequest)
			return
		}
		m.blobs[d] = body
		w.WriteHeader(http.StatusCreated)
	case after != "":
		b, ok := m.blobs[digest.Digest(after)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		send(b, "application/octet-stream")
	case strings.Contains(p, "/manifests/"):
		_, ref, _ := strings.Cut(p, "/manifests/")
		if r.Method == http.MethodPut {
			m.putManifest(ref, body)
			w.WriteHeader(http.StatusCreated)
			return
		}
		b, ok := m.manifests[ref]
		if !ok {
			http.NotFound(w, r)
			return
		}
		send(b, ocispec.MediaTypeImageManifest)
	default:
		http.NotFound(w, r)
	}
}

func (m *memRegistry) putManifest(tag string, b []byte) {
	m.manifests[tag] = b
	m.manifests[digest.FromBytes(b).String()] = b
}

// testCheckpoint saves a checkpoint web:cp1 of a file and a chunked one.
func testCheckpoint(t *testing.T) (*store.Store, *store.Checkpoint) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Begin("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]byte, 3<<20)
	rand.Read(pages)
	for _, f := range []struct {
		path    string
		chunked bool
		data    []byte
	}{{"config.json", false, []byte(`{"id":"web"}`)}, {"images/pages-1.img", true, pages}} {
		create := p.Create
		if f.chunked {
			create = p.CreateChunked
		}
		w, err := create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := p.Manifest(&format.Manifest{Created: time.Now().UTC().Add(-time.Hour), Mode: format.ModeCold, Container: format.Container{Name: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := p.Commit(raw)
	if err != nil {
		t.Fatal(err)
	}
	return st, ck
}

// An encrypted push writes a data key of version 2, which a pull opens; a
// checkpoint pushed with version 1 (by an earlier ckpt) still opens; a
// blob sealed under version 1 does not open as version 2.
func TestPushPullKeyVersions(t *testing.T) {
	ctx := context.Background()
	reg, host := newMemRegistry(t)
	st, ck := testCheckpoint(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &Encryption{Recipients: []age.Recipient{id.Recipient()}, Set: []string{id.Recipient().String()}, KeyDir: filepath.Join(st.Root, format.KeysDir)}
	if _, err := Push(ctx, ck, host+"/team/web:v2", Options{PlainHTTP: true, Encrypt: e}); err != nil {
		t.Fatal(err)
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(reg.manifests["v2"], &om); err != nil {
		t.Fatal(err)
	}
	if om.Layers[0].MediaType != KeyMediaTypeV2 {
		t.Fatalf("the data key layer is %s, not %s", om.Layers[0].MediaType, KeyMediaTypeV2)
	}
	want, _ := ck.RawManifest()
	pull := func(tag string) error {
		to, err := store.Open(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := Pull(ctx, to, host+"/team/web:"+tag, PullOptions{
			Options: Options{PlainHTTP: true, Decrypt: &Decryption{Identities: []age.Identity{id}}},
			Free:    func(string) (int64, error) { return 1 << 40, nil }})
		if err != nil {
			return err
		}
		if raw, _ := got.RawManifest(); !bytes.Equal(raw, want) {
			t.Errorf("%s: the pulled checkpoint has another manifest", tag)
		}
		return nil
	}
	if err := pull("v2"); err != nil {
		t.Fatalf("pull of version 2: %v", err)
	}

	// The same checkpoint as an earlier ckpt pushed it: every blob sealed
	// under the data key itself, and a key layer of version 1.
	k, err := dataKey(host+"/team/web", e)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := newSealer(k, KeyMediaType)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := newSealer(k, KeyMediaTypeV2)
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{format.ManifestFile}
	for _, b := range blobs(ck.Manifest) {
		labels = append(labels, b.desc.Digest.Encoded())
	}
	reseal := func(d ocispec.Descriptor, label string) ocispec.Descriptor {
		clear, err := v2.open(reg.blobs[d.Digest], label)
		if err != nil {
			t.Fatalf("%s does not open as version 2: %v", d.Digest, err)
		}
		b := v1.seal(clear, label)
		reg.blobs[digest.FromBytes(b)] = b
		return ocispec.Descriptor{MediaType: d.MediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	old := om
	old.Config = reseal(om.Config, labels[0])
	old.Layers = []ocispec.Descriptor{om.Layers[0]}
	old.Layers[0].MediaType = KeyMediaType
	for i, l := range om.Layers[1:] {
		old.Layers = append(old.Layers, reseal(l, labels[i+1]))
	}
	b, _ := json.Marshal(old)
	reg.putManifest("v1", b)
	if err := pull("v1"); err != nil {
		t.Fatalf("pull of version 1: %v", err)
	}

	// Blobs sealed under version 1 behind a key layer of version 2.
	mixed := old
	mixed.Layers = append([]ocispec.Descriptor{om.Layers[0]}, old.Layers[1:]...)
	b, _ = json.Marshal(mixed)
	reg.putManifest("mixed", b)
	if err := pull("mixed"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "does not open with its data key") {
		t.Fatalf("pull of version 1 blobs as version 2: %v", err)
	}
}

// Credentials sent over plain HTTP, or to a registry whose certificate is
// not verified, are warned of, once, naming the host; when the docker CLI
// has none for the host there is nothing to warn of.
func TestCredentialWarning(t *testing.T) {
	const user, pass = "alice", "secret"
	var sawAuth sync.Map
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every request asks for the credentials again.
		if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
			sawAuth.Store(r.Host, true)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()
	plainHost := strings.TrimPrefix(plain.URL, "http://")
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")

	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	dir := t.TempDir()
	withCreds := filepath.Join(dir, "config.json")
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q},%q:{"auth":%q}}}`, plainHost, basic, tlsHost, basic)
	if err := os.WriteFile(withCreds, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	noCreds := filepath.Join(dir, "empty.json")
	os.WriteFile(noCreds, []byte(`{}`), 0o600)

	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, config string
		o                  Options
		want               string // "" for no warning
	}{
		{"plain HTTP", plainHost, withCreds, Options{PlainHTTP: true}, "sending the docker CLI's credentials for " + plainHost + " over plain HTTP (--plain-http)"},
		{"insecure", tlsHost, withCreds, Options{Insecure: true}, "sending the docker CLI's credentials for " + tlsHost + " to a registry whose TLS certificate is not verified (--insecure)"},
		{"plain HTTP, no credentials", plainHost, noCreds, Options{PlainHTTP: true}, ""},
		{"insecure, no credentials", tlsHost, noCreds, Options{Insecure: true}, ""},
	} {
		var warnings []string
		sawAuth.Clear()
		tc.o.DockerConfig = tc.config
		tc.o.Warn = func(s string) { warnings = append(warnings, s) }
		// A pull, then more requests through one repository, each of
		// which the registry answers by asking for the credentials.
		_, _, err := Pull(context.Background(), st, tc.host+"/team/web:v1", PullOptions{Options: tc.o})
		if err == nil {
			t.Fatalf("%s: the pull succeeded", tc.name)
		}
		repo, err := repository(tc.host+"/team/web", tc.o)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			repo.Resolve(context.Background(), "v1")
		}
		switch {
		case tc.want == "" && len(warnings) > 0:
			t.Errorf("%s: warnings %q", tc.name, warnings)
		case tc.want != "" && (len(warnings) != 2 || warnings[0] != tc.want || warnings[1] != tc.want):
			t.Errorf("%s: warnings %q, want %q once per repository", tc.name, warnings, tc.want)
		}
		if _, sent := sawAuth.Load(tc.host); sent != (tc.config == withCreds) {
			t.Errorf("%s: credentials sent: %v", tc.name, sent)
		}
	}

	// Without either option, credentials go over verified TLS: no warning.
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600)
	var warnings []string
	o := Options{CAFile: ca, DockerConfig: withCreds, Warn: func(s string) { warnings = append(warnings, s) }}
	repo, err := repository(tlsHost+"/team/web", o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Resolve(context.Background(), "v1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("verified TLS: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("verified TLS: warnings %q", warnings)
	}
}
