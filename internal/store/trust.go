package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/sign"
)

// Trust says whether a checkpoint may come back whole: its memory
// restored, its container recreated with everything it asks for. A
// checkpoint made here is trusted, and so is one whose manifest carries a
// valid signature by this store's key or by a signer the store trusts
// (ckpt trust add); any other comes back as data only (docs/security.md).
// Trust is decided anew each time a checkpoint is loaded, so adding or
// removing a signer applies to the checkpoints already imported.
type Trust struct {
	// Level is format.TrustLocal, format.TrustSigned or
	// format.TrustUntrusted.
	Level string `json:"level"`
	// Signer is the trusted signer's name, as it was added, or "this
	// store" for the store's own key.
	Signer string `json:"signer,omitempty"`
	// Key is the fingerprint of the key whose valid signature the
	// checkpoint carries, trusted or not.
	Key string `json:"key,omitempty"`
	// Reason says why an untrusted checkpoint is not trusted.
	Reason string `json:"reason,omitempty"`
}

// Trusted reports whether the checkpoint may come back whole.
func (t Trust) Trusted() bool { return t.Level == format.TrustLocal || t.Level == format.TrustSigned }

// String says it in a few words: "made here", "signed by host1", "not
// trusted: it is not signed".
func (t Trust) String() string {
	switch t.Level {
	case format.TrustLocal:
		return "made here"
	case format.TrustSigned:
		return "signed by " + t.Signer
	}
	return "not trusted: " + t.Reason
}

// ReasonUnsigned is the Reason of a checkpoint that carries no signature.
const ReasonUnsigned = "it is not signed"

// SelfSigner is the Signer of a checkpoint signed by the store's own key.
const SelfSigner = "this store"

// identityPath is the store's signing key.
func (s *Store) identityPath() string {
	return filepath.Join(s.Root, format.KeysDir, format.IdentityDir, format.IdentityKey)
}

func (s *Store) allowedPath() string {
	return filepath.Join(s.Root, format.KeysDir, format.AllowedSignersFile)
}

// Identity returns the store's signing key, making it the first time
// (docs/security.md). Its comment names the host and the store.
func (s *Store) Identity() (ssh.Signer, error) {
	host, _ := os.Hostname()
	id, err := sign.LoadOrCreate(s.identityPath(), fmt.Sprintf("ckpt@%s:%s", host, s.Root))
	if err != nil {
		return nil, fmt.Errorf("the store's signing key: %w", err)
	}
	return id, nil
}

// PublicKeyLine returns the store's public key as a line of
// authorized_keys, with its comment: what ckpt trust add takes on other
// hosts. It makes the key the first time.
func (s *Store) PublicKeyLine() (string, error) {
	id, err := s.Identity()
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(s.identityPath() + ".pub"); err == nil {
		if k, _, err := sign.ParseKey(string(b)); err == nil && sign.Same(k, id.PublicKey()) {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(id.PublicKey()))), nil
}

// PublicKey returns the public half of the store's signing key, or nil
// when the store has none yet.
func (s *Store) PublicKey() (ssh.PublicKey, error) {
	id, err := sign.Load(s.identityPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("the store's signing key: %w", err)
	}
	return id.PublicKey(), nil
}

// Signers returns the signers the store trusts besides itself.
func (s *Store) Signers() ([]sign.Signer, error) {
	return sign.ReadAllowed(s.allowedPath())
}

// AddSigner makes the store trust checkpoints signed by signer's key. A
// name or key the store trusts already is refused, naming the entry.
func (s *Store) AddSigner(signer sign.Signer) error {
	if !sign.ValidName(signer.Name) {
		return hint.New(fmt.Sprintf("invalid signer name %q", signer.Name), "use letters, digits and _.@:- (a host's name, say), 64 characters at most")
	}
	if own, err := s.PublicKey(); err != nil {
		return err
	} else if sign.Same(own, signer.Key) {
		return hint.New("that is this store's own key", "a store trusts its own checkpoints already; nothing was changed")
	}
	return s.editSigners(func(all []sign.Signer) ([]sign.Signer, error) {
		for _, e := range all {
			switch {
			case sign.Same(e.Key, signer.Key):
				return nil, hint.New(fmt.Sprintf("key %s is trusted already, as %s", sign.Fingerprint(e.Key), e.Name), "nothing was changed")
			case e.Name == signer.Name:
				return nil, hint.New(fmt.Sprintf("a signer named %s is trusted already, with key %s", e.Name, sign.Fingerprint(e.Key)),
					"nothing was changed; to replace its key, ckpt trust rm "+e.Name+" first, or choose another name")
			}
		}
		return append(all, signer), nil
	})
}

// RemoveSigner stops trusting the signer named ref, or whose key has the
// fingerprint ref, and returns it.
func (s *Store) RemoveSigner(ref string) (sign.Signer, error) {
	var removed sign.Signer
	err := s.editSigners(func(all []sign.Signer) ([]sign.Signer, error) {
		for i, e := range all {
			if e.Name == ref || sign.Fingerprint(e.Key) == ref {
				removed = e
				return append(all[:i:i], all[i+1:]...), nil
			}
		}
		return nil, hint.New("no trusted signer "+ref, "ckpt trust ls lists them, by name and key fingerprint")
	})
	return removed, err
}

// editSigners changes the allowed-signers file under a store-wide lock.
func (s *Store) editSigners(edit func([]sign.Signer) ([]sign.Signer, error)) error {
	dir := filepath.Dir(s.allowedPath())
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	all, err := s.Signers()
	if err != nil {
		return err
	}
	all, err = edit(all)
	if err != nil {
		return err
	}
	return sign.WriteAllowed(s.allowedPath(), all)
}

// CheckSignature decides the trust of a manifest from elsewhere (raw,
// byte for byte) that carries signature sig (nil for none).
func (s *Store) CheckSignature(raw, sig []byte) Trust {
	untrusted := func(key, why string) Trust { return Trust{Level: format.TrustUntrusted, Key: key, Reason: why} }
	if len(sig) == 0 {
		return untrusted("", ReasonUnsigned)
	}
	key, err := sign.Verify(raw, sig)
	switch {
	case errors.Is(err, sign.ErrMismatch):
		return untrusted("", "its signature does not match its manifest: it was altered after it was signed")
	case err != nil:
		return untrusted("", "its signature is not valid ("+err.Error()+")")
	}
	fp := sign.Fingerprint(key)
	if own, err := s.PublicKey(); err != nil {
		return untrusted(fp, err.Error())
	} else if sign.Same(own, key) {
		return Trust{Level: format.TrustSigned, Signer: SelfSigner, Key: fp}
	}
	signers, err := s.Signers()
	if err != nil {
		return untrusted(fp, "the store's trusted signers cannot be read: "+err.Error())
	}
	for _, e := range signers {
		if sign.Same(e.Key, key) {
			return Trust{Level: format.TrustSigned, Signer: e.Name, Key: fp}
		}
	}
	return untrusted(fp, "it is signed by key "+fp+", which this store does not trust")
}

// trustOf decides the trust of the checkpoint in dir, whose origin is o.
func (s *Store) trustOf(c *Checkpoint) Trust {
	if !c.Origin.Imported {
		return Trust{Level: format.TrustLocal}
	}
	raw, err := c.RawManifest()
	if err != nil {
		return Trust{Level: format.TrustUntrusted, Reason: err.Error()}
	}
	sig, err := readSignature(c.Dir)
	if err != nil {
		return Trust{Level: format.TrustUntrusted, Reason: err.Error()}
	}
	return s.CheckSignature(raw, sig)
}

// readSignature reads the checkpoint's SignatureFile; nil when there is
// none.
func readSignature(dir string) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, format.SignatureFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, sign.MaxSignature+1))
}

// Signature returns the signature the checkpoint carries (nil for none):
// what export and push send along.
func (c *Checkpoint) Signature() ([]byte, error) { return readSignature(c.Dir) }

// SignatureFor returns the signature to send along with checkpoint c (an
// export, a push): the one it carries, or, for a checkpoint made here that
// has none (saved before ckpt signed its checkpoints), a new one by the
// store's key. An imported checkpoint keeps its signer's signature, or
// none.
func (s *Store) SignatureFor(c *Checkpoint) ([]byte, error) {
	sig, err := c.Signature()
	if err != nil || sig != nil || c.Origin.Imported {
		return sig, err
	}
	raw, err := c.RawManifest()
	if err != nil {
		return nil, err
	}
	id, err := s.Identity()
	if err != nil {
		return nil, err
	}
	return sign.Sign(id, raw)
}

// ChunksHeldFor returns the chunks that the store's complete checkpoints
// of the same trust as t list: for a trusted t, those of trusted
// checkpoints; for an untrusted t with a valid signature by key K, those
// of untrusted checkpoints signed by K; for any other, none. A pull skips
// only those: a chunk the store holds for another checkpoint is fetched
// and compared all the same, so that an artifact that lists the digests of
// chunks it does not have (computable for well-known files, or seen in
// ckpt inspect --json) never gets their bytes.
func (s *Store) ChunksHeldFor(t Trust) (map[string]bool, error) {
	held := map[string]bool{}
	if !t.Trusted() && t.Key == "" {
		return held, nil
	}
	ents, err := s.List("")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.State != StateComplete {
			continue
		}
		ct := e.Checkpoint.Trust
		if ct.Trusted() != t.Trusted() || (!t.Trusted() && ct.Key != t.Key) {
			continue
		}
		for _, f := range e.Checkpoint.Manifest.Files {
			for _, c := range f.Chunks {
				held[c.SHA256] = true
			}
		}
	}
	return held, nil
}
