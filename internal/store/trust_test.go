package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/sign"
)

// importAs makes checkpoint name of web look brought from elsewhere,
// with signature sig (nil for none).
func importAs(t *testing.T, s *Store, name string, sig []byte) *Checkpoint {
	t.Helper()
	dir := filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir, name)
	origin, _ := json.Marshal(format.Origin{Imported: true})
	must(t, os.WriteFile(filepath.Join(dir, format.OriginFile), origin, 0o600))
	os.Remove(filepath.Join(dir, format.SignatureFile))
	if sig != nil {
		must(t, os.WriteFile(filepath.Join(dir, format.SignatureFile), sig, 0o600))
	}
	ck, err := s.Load("web", name)
	must(t, err)
	return ck
}

func signManifest(t *testing.T, s *Store, ck *Checkpoint) []byte {
	t.Helper()
	id, err := s.Identity()
	must(t, err)
	raw, err := ck.RawManifest()
	must(t, err)
	sig, err := sign.Sign(id, raw)
	must(t, err)
	return sig
}

func TestTrust(t *testing.T) {
	s, other := newStore(t), newStore(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	// A save signs with the store's key, made on first use.
	p, err := s.Begin("web", "local")
	must(t, err)
	id, err := s.Identity()
	must(t, err)
	p.Signer = id
	local := commit(t, p, &format.Manifest{Created: t0, Mode: format.ModeCold})
	if local.Trust.Level != format.TrustLocal {
		t.Fatalf("local: %+v", local.Trust)
	}
	sig, err := local.Signature()
	must(t, err)
	raw, err := local.RawManifest()
	must(t, err)
	if k, err := sign.Verify(raw, sig); err != nil || !sign.Same(k, id.PublicKey()) {
		t.Fatalf("the save's signature: %v", err)
	}
	for _, f := range []string{filepath.Join(s.Root, format.KeysDir, format.IdentityDir, format.IdentityKey), filepath.Join(local.Dir, format.SignatureFile)} {
		if m := permOf(t, f); m != FileMode {
			t.Errorf("%s: mode %v", f, m)
		}
	}

	// Checkpoints from elsewhere, dated later than the local one.
	unsigned := importAs(t, s, save(t, s, "web", "unsigned", t0.Add(time.Hour), nil).Name, nil)
	byOther := save(t, s, "web", "by-other", t0.Add(2*time.Hour), nil)
	byOther = importAs(t, s, byOther.Name, signManifest(t, other, byOther))
	byMe := save(t, s, "web", "by-me", t0.Add(-time.Hour), nil)
	byMe = importAs(t, s, byMe.Name, signManifest(t, s, byMe))
	otherKey, err := other.PublicKey()
	must(t, err)
	fp := sign.Fingerprint(otherKey)
	for _, tc := range []struct {
		ck    *Checkpoint
		level string
		what  string
	}{
		{unsigned, format.TrustUntrusted, "not trusted: it is not signed"},
		{byOther, format.TrustUntrusted, "not trusted: it is signed by key " + fp + ", which this store does not trust"},
		{byMe, format.TrustSigned, "signed by this store"},
	} {
		if tc.ck.Trust.Level != tc.level || tc.ck.Trust.String() != tc.what {
			t.Errorf("%s: %+v, want %s: %s", tc.ck.Name, tc.ck.Trust, tc.level, tc.what)
		}
	}
	if byOther.Trust.Key != fp {
		t.Errorf("key %q, want %q", byOther.Trust.Key, fp)
	}

	// The newest trusted checkpoint is the newest, however an untrusted
	// one is dated.
	if latest, err := s.Latest("web"); err != nil || latest.Name != "local" {
		t.Fatalf("Latest = %v, %v; want local", latest, err)
	}

	// Trusting the other store applies to what it signed already.
	must(t, s.AddSigner(sign.Signer{Name: "host1", Key: otherKey, Comment: "ckpt@host1"}))
	ck, err := s.Load("web", "by-other")
	must(t, err)
	if ck.Trust.String() != "signed by host1" {
		t.Errorf("after trust add: %+v", ck.Trust)
	}
	if latest, _ := s.Latest("web"); latest.Name != "by-other" {
		t.Errorf("Latest = %s, want by-other, now trusted and newest", latest.Name)
	}
	for _, bad := range []struct {
		signer sign.Signer
		want   string
	}{
		{sign.Signer{Name: "again", Key: otherKey}, "is trusted already, as host1"},
		{sign.Signer{Name: "host1", Key: id.PublicKey()}, "this store's own key"},
		{sign.Signer{Name: "has space", Key: otherKey}, "invalid signer name"},
	} {
		if err := s.AddSigner(bad.signer); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("AddSigner(%s) = %v, want %q", bad.signer.Name, err, bad.want)
		}
	}
	third := newStore(t)
	thirdID, err := third.Identity()
	must(t, err)
	if err := s.AddSigner(sign.Signer{Name: "host1", Key: thirdID.PublicKey()}); err == nil || !strings.Contains(err.Error(), "a signer named host1 is trusted already") {
		t.Errorf("same name, another key: %v", err)
	}
	if m := permOf(t, filepath.Join(s.Root, format.KeysDir, format.AllowedSignersFile)); m != FileMode {
		t.Errorf("allowed_signers: mode %v", m)
	}

	// Removed, by fingerprint: untrusted again.
	if removed, err := s.RemoveSigner(fp); err != nil || removed.Name != "host1" {
		t.Fatalf("RemoveSigner = %+v, %v", removed, err)
	}
	ck, err = s.Load("web", "by-other")
	must(t, err)
	if ck.Trust.Trusted() {
		t.Errorf("after trust rm: %+v", ck.Trust)
	}
	if _, err := s.RemoveSigner("host1"); err == nil || !strings.Contains(err.Error(), "no trusted signer host1") {
		t.Errorf("second RemoveSigner: %v", err)
	}

	// Altered after it was signed (its checksum made to match).
	must(t, s.AddSigner(sign.Signer{Name: "host1", Key: otherKey}))
	raw, err = ck.RawManifest()
	must(t, err)
	writeRawManifest(t, ck.Dir, append(raw, ' '))
	ck, err = s.Load("web", "by-other")
	must(t, err)
	if ck.Trust.Trusted() || !strings.Contains(ck.Trust.Reason, "altered after it was signed") {
		t.Errorf("altered: %+v", ck.Trust)
	}
}

// A pull skips a chunk the store holds only when a checkpoint of the same
// trust lists it.
func TestChunksHeldFor(t *testing.T) {
	s, other := newStore(t), newStore(t)
	data := func(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 300<<10)) }
	local := saveChunked(t, s, "local", "volumes/v.tar", data(0))
	byOther := saveChunked(t, s, "by-other", "volumes/v.tar", data(1))
	byOther = importAs(t, s, byOther.Name, signManifest(t, other, byOther))
	unsigned := saveChunked(t, s, "unsigned", "volumes/v.tar", data(2))
	importAs(t, s, unsigned.Name, nil)
	chunk := func(ck *Checkpoint) string { return ck.Manifest.Files[0].Chunks[0].SHA256 }

	for _, tc := range []struct {
		name  string
		trust Trust
		want  []*Checkpoint
	}{
		{"trusted", Trust{Level: format.TrustSigned, Signer: "x"}, []*Checkpoint{local}},
		{"untrusted, signed by the same key", byOther.Trust, []*Checkpoint{byOther}},
		{"untrusted, signed by another key", Trust{Level: format.TrustUntrusted, Key: "SHA256:other"}, nil},
		{"unsigned", Trust{Level: format.TrustUntrusted, Reason: ReasonUnsigned}, nil},
	} {
		held, err := s.ChunksHeldFor(tc.trust)
		must(t, err)
		if len(held) != len(tc.want) {
			t.Errorf("%s: %d chunks held, want %d", tc.name, len(held), len(tc.want))
		}
		for _, ck := range tc.want {
			if !held[chunk(ck)] {
				t.Errorf("%s: %s's chunk not held", tc.name, ck.Name)
			}
		}
	}
}
