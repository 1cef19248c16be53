package sign

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	s, err := LoadOrCreate(filepath.Join(t.TempDir(), "id", "ckpt_ed25519"), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	s := newSigner(t)
	msg := []byte(`{"formatVersion":4,"name":"x"}`)
	sig, err := Sign(s, msg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Verify(msg, sig)
	if err != nil {
		t.Fatal(err)
	}
	if !Same(k, s.PublicKey()) {
		t.Fatal("Verify returned another key")
	}
	altered := append(bytes.Clone(msg), ' ')
	if _, err := Verify(altered, sig); !errors.Is(err, ErrMismatch) {
		t.Fatalf("altered message: %v, want ErrMismatch", err)
	}
	// A flipped bit inside the armored signature.
	bad := bytes.Clone(sig)
	i := bytes.IndexByte(bad, '\n') + 100
	bad[i] ^= 0x01
	if _, err := Verify(msg, bad); err == nil {
		t.Fatal("a damaged signature verified")
	}
	for _, junk := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte("a"), MaxSignature+1)} {
		if _, err := Verify(msg, junk); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%.20q) = %v, want ErrMalformed", junk, err)
		}
	}
}

// A signature made by ssh-keygen for another namespace (a git commit's,
// a file's) is not a checkpoint signature, even for the same bytes.
func TestVerifyOtherNamespace(t *testing.T) {
	keygen := sshKeygen(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-f", key)
	msg := filepath.Join(dir, "m")
	os.WriteFile(msg, []byte("manifest"), 0o600)
	run(t, keygen, "-q", "-Y", "sign", "-f", key, "-n", "file", msg)
	sig, _ := os.ReadFile(msg + ".sig")
	if _, err := Verify([]byte("manifest"), sig); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `namespace "file"`) {
		t.Fatalf("Verify = %v, want ErrMalformed naming the namespace", err)
	}
}

// ckpt's signatures are OpenSSH's: ssh-keygen checks ckpt's, and ckpt
// checks ssh-keygen's, with ed25519 and RSA keys.
func TestSSHKeygenInterop(t *testing.T) {
	keygen := sshKeygen(t)
	dir := t.TempDir()
	msg := []byte("{\"name\":\"20261208T000000Z\"}\n")
	msgPath := filepath.Join(dir, "manifest.json")
	os.WriteFile(msgPath, msg, 0o600)

	// ckpt signs, ssh-keygen verifies against an allowed-signers file
	// that WriteAllowed wrote.
	s := newSigner(t)
	sig, err := Sign(s, msg)
	if err != nil {
		t.Fatal(err)
	}
	sigPath := filepath.Join(dir, "manifest.json.sig")
	os.WriteFile(sigPath, sig, 0o600)
	allowed := filepath.Join(dir, "allowed_signers")
	if err := WriteAllowed(allowed, []Signer{{Name: "host1", Key: s.PublicKey(), Comment: "ckpt@host1"}}); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "host1", "-n", Namespace, "-s", sigPath)
	verify.Stdin = bytes.NewReader(msg)
	if out, err := verify.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify of ckpt's signature: %v\n%s", err, out)
	}
	verify = exec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "host1", "-n", Namespace, "-s", sigPath)
	verify.Stdin = bytes.NewReader(append(bytes.Clone(msg), 'x'))
	if err := verify.Run(); err == nil {
		t.Fatal("ssh-keygen verified an altered manifest")
	}

	// ssh-keygen signs, ckpt verifies.
	for _, typ := range []string{"ed25519", "rsa"} {
		key := filepath.Join(dir, "key-"+typ)
		run(t, keygen, "-q", "-t", typ, "-N", "", "-f", key)
		os.Remove(sigPath)
		run(t, keygen, "-q", "-Y", "sign", "-f", key, "-n", Namespace, msgPath)
		sig, _ := os.ReadFile(sigPath)
		k, err := Verify(msg, sig)
		if err != nil {
			t.Fatalf("%s: Verify of ssh-keygen's signature: %v", typ, err)
		}
		pub, _ := os.ReadFile(key + ".pub")
		want, _, err := ParseKey(string(pub))
		if err != nil || !Same(k, want) {
			t.Fatalf("%s: key %v, want the one in %s (%v)", typ, k, key+".pub", err)
		}
		if _, err := Verify(append(bytes.Clone(msg), 'x'), sig); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: altered: %v", typ, err)
		}
	}
}

func TestParseAllowed(t *testing.T) {
	a, b := newSigner(t).PublicKey(), newSigner(t).PublicKey()
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	data := "# comment\n\n" +
		"host1 " + line(a) + " plain\n" +
		"host2,alias namespaces=\"git,checkpoint@ckpt.dev\" " + line(b) + "\n" +
		"gitonly namespaces=\"git\" " + line(a) + "\n" +
		"wild namespaces=\"*@ckpt.dev\",valid-after=\"20260101\" " + line(b) + " with spaces in comment\n" +
		"ca cert-authority " + line(a) + "\n"
	got, err := ParseAllowed([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "host1 host2,alias wild" {
		t.Fatalf("signers %v", names)
	}
	if !Same(got[0].Key, a) || got[0].Comment != "plain" || !Same(got[2].Key, b) {
		t.Fatalf("keys or comments wrong: %+v", got)
	}
	if _, err := ParseAllowed([]byte("host1 ssh-ed25519 notbase64\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad line: %v", err)
	}

	// What WriteAllowed writes reads back the same.
	path := filepath.Join(t.TempDir(), "trust", "allowed_signers")
	if err := WriteAllowed(path, got); err != nil {
		t.Fatal(err)
	}
	again, err := ReadAllowed(path)
	if err != nil || len(again) != len(got) {
		t.Fatalf("read back %d signers, %v", len(again), err)
	}
	for i := range got {
		if again[i].Name != got[i].Name || !Same(again[i].Key, got[i].Key) || again[i].Comment != got[i].Comment {
			t.Errorf("signer %d: %+v, want %+v", i, again[i], got[i])
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if none, err := ReadAllowed(filepath.Join(t.TempDir(), "missing")); none != nil || err != nil {
		t.Errorf("missing file: %v %v", none, err)
	}
}

// Processes that create the key at once all get the same one, and the
// key file is the store's alone.
func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity", "ckpt_ed25519")
	var wg sync.WaitGroup
	keys := make([]ssh.PublicKey, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := LoadOrCreate(path, "ckpt@test")
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = s.PublicKey()
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !Same(k, keys[0]) {
			t.Fatal("two different keys were created")
		}
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		if st, err := os.Stat(p); err != nil || st.Mode() != mode {
			t.Errorf("%s: %v %v, want %v", p, st.Mode(), err, mode)
		}
	}
	pub, _ := os.ReadFile(path + ".pub")
	if k, comment, err := ParseKey(string(pub)); err != nil || !Same(k, keys[0]) || comment != "ckpt@test" {
		t.Fatalf(".pub: %v %q %v", k, comment, err)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"host1": true, "ckpt@web-1.example:store": true, "": false, "a b": false, "a,b": false, "-x": false, strings.Repeat("a", 65): false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}

func sshKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CKPT_TEST_DISALLOW_SKIP") == "1" {
			t.Fatal("ssh-keygen (openssh-client) is missing; CKPT_TEST_DISALLOW_SKIP=1 forbids skipping")
		}
		t.Skip("ssh-keygen (openssh-client) is missing")
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
