// Package sign signs checkpoint manifests and checks their signatures, in
// OpenSSH's signature format (SSHSIG, PROTOCOL.sshsig in OpenSSH's sources)
// with ed25519 keys, so that anyone can check a ckpt signature with
// ssh-keygen alone:
//
//	ssh-keygen -Y verify -f allowed_signers -I NAME -n checkpoint@ckpt.dev \
//		-s manifest.json.sig < manifest.json
//
// A store signs with an identity of its own (LoadOrCreate) and trusts the
// signers listed in an allowed-signers file (ReadAllowed), in the format of
// ssh-keygen's ALLOWED SIGNERS section.
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Namespace is the SSHSIG namespace of checkpoint signatures: a signature
// made for another purpose (git commits, files) never passes for one.
const Namespace = "checkpoint@ckpt.dev"

// MaxSignature is the largest armored signature read; an ed25519 one has
// about 300 bytes, an RSA-8192 one about 2.2 KB.
const MaxSignature = 8 << 10

const (
	magic      = "SSHSIG"
	sigVersion = 1
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
	hashSHA512 = "sha512"
	hashSHA256 = "sha256"
)

// Kinds of bad signatures; test with errors.Is.
var (
	// ErrMalformed is a signature that is not an SSHSIG one, or not for
	// Namespace.
	ErrMalformed = errors.New("not an SSH signature of a ckpt checkpoint")
	// ErrMismatch is a well-formed signature that does not match the
	// message: the message was altered after it was signed.
	ErrMismatch = errors.New("the signature does not match: the checkpoint was altered after it was signed")
)

// Sign returns the armored SSHSIG signature of msg by s in Namespace.
func Sign(s ssh.Signer, msg []byte) ([]byte, error) {
	if alg, ok := s.(ssh.AlgorithmSigner); ok && s.PublicKey().Type() == ssh.KeyAlgoRSA {
		s = rsaSHA512{alg}
	}
	sig, err := s.Sign(rand.Reader, signedData(hashSHA512, msg))
	if err != nil {
		return nil, fmt.Errorf("cannot sign: %w", err)
	}
	blob := append([]byte(magic), 0, 0, 0, sigVersion)
	blob = appendString(blob, s.PublicKey().Marshal())
	blob = appendString(blob, []byte(Namespace))
	blob = appendString(blob, nil) // reserved
	blob = appendString(blob, []byte(hashSHA512))
	blob = appendString(blob, ssh.Marshal(sig))
	return armor(blob), nil
}

// rsaSHA512 signs with rsa-sha2-512, as SSHSIG asks of RSA keys.
type rsaSHA512 struct{ ssh.AlgorithmSigner }

func (r rsaSHA512) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return r.SignWithAlgorithm(rand, data, ssh.KeyAlgoRSASHA512)
}

// Verify checks that armored is a valid signature of msg in Namespace and
// returns the key that made it. Whether that key is trusted is the
// caller's decision.
func Verify(msg, armored []byte) (ssh.PublicKey, error) {
	blob, err := unarmor(armored)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(blob, []byte(magic)) || len(blob) < len(magic)+4 {
		return nil, fmt.Errorf("%w: no %s preamble", ErrMalformed, magic)
	}
	rest := blob[len(magic):]
	if v := uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3]); v != sigVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	rest = rest[4:]
	var fields [5][]byte
	for i := range fields {
		if fields[i], rest, err = readString(rest); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the signature", ErrMalformed, len(rest))
	}
	pkBytes, ns, hashAlg, sigBytes := fields[0], string(fields[1]), string(fields[3]), fields[4]
	if ns != Namespace {
		return nil, fmt.Errorf("%w: it is for namespace %q", ErrMalformed, ns)
	}
	if hashAlg != hashSHA512 && hashAlg != hashSHA256 {
		return nil, fmt.Errorf("%w: hash %q", ErrMalformed, hashAlg)
	}
	pub, err := ssh.ParsePublicKey(pkBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: its key: %v", ErrMalformed, err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(sigBytes, &sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if sig.Format == ssh.KeyAlgoRSA { // SHA-1: SSHSIG refuses it
		return nil, fmt.Errorf("%w: an RSA signature with SHA-1", ErrMalformed)
	}
	if err := pub.Verify(signedData(hashAlg, msg), &sig); err != nil {
		return nil, ErrMismatch
	}
	return pub, nil
}

// signedData is what SSHSIG signs: the preamble, namespace, reserved
// field, hash algorithm and the hash of msg.
func signedData(hashAlg string, msg []byte) []byte {
	var h hash.Hash = sha512.New()
	if hashAlg == hashSHA256 {
		h = sha256.New()
	}
	h.Write(msg)
	d := []byte(magic)
	d = appendString(d, []byte(Namespace))
	d = appendString(d, nil)
	d = appendString(d, []byte(hashAlg))
	return appendString(d, h.Sum(nil))
}

func appendString(b, s []byte) []byte {
	n := len(s)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, s...)
}

func readString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated")
	}
	n := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	if uint64(len(b)-4) < n {
		return nil, nil, errors.New("truncated")
	}
	return b[4 : 4+n], b[4+n:], nil
}

// armor wraps blob as ssh-keygen does: base64 in lines of 70 characters
// between the BEGIN and END lines.
func armor(blob []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString(armorBegin + "\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n" + armorEnd + "\n")
	return []byte(b.String())
}

func unarmor(a []byte) ([]byte, error) {
	if len(a) > MaxSignature {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(a), MaxSignature)
	}
	s := strings.TrimSpace(string(a))
	if !strings.HasPrefix(s, armorBegin) || !strings.HasSuffix(s, armorEnd) {
		return nil, fmt.Errorf("%w: no %s ... %s armor", ErrMalformed, armorBegin, armorEnd)
	}
	body := strings.Join(strings.Fields(s[len(armorBegin):len(s)-len(armorEnd)]), "")
	blob, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return blob, nil
}

// Fingerprint is the key's SHA256 fingerprint as ssh-keygen -l prints it.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// Same reports whether a and b are the same key.
func Same(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

// NewKey makes a new ed25519 key and returns it as an OpenSSH private key
// file (PEM) with comment.
func NewKey(comment string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
}
