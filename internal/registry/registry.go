// Package registry moves checkpoints through an OCI registry: Push uploads
// a checkpoint of the store as an OCI artifact, Pull brings one into a
// store. The registry is the one a team already runs for its images
// (Docker's distribution, Harbor, GHCR, ...); credentials come from the
// docker CLI's configuration.
//
// # Layout
//
// A checkpoint is one OCI image manifest
// (application/vnd.oci.image.manifest.v1+json, schemaVersion 2) whose
//
//   - config is the checkpoint's manifest.json, byte for byte, with media
//     type ConfigMediaType: its digest is the sha256 in the store's
//     manifest.json.sha256;
//   - layers are the checkpoint's content as blobs: every non-empty file
//     the manifest lists without chunks (FileMediaType, with its path as
//     the org.opencontainers.image.title annotation), then every distinct
//     chunk of the chunked files (ChunkMediaType), in the order the
//     manifest first names them; a push sends each digest once. A blob's digest is the sha256
//     the manifest gives, so the registry stores a chunk once however many
//     checkpoints (or tags, or repositories, where it mounts blobs) list
//     it, and a second push of a container that changed a little uploads
//     the chunks that changed;
//   - annotations name the checkpoint: AnnotationContainer,
//     AnnotationCheckpoint, AnnotationFormat (the manifest's format
//     version) and org.opencontainers.image.created, and, when the
//     checkpoint is signed, AnnotationSignature: the armored SSH signature
//     of the config's bytes (the clear manifest.json, also when the blobs
//     are encrypted) by the store that made it, by which a pull decides
//     whether the checkpoint comes back whole (docs/security.md).
//
// The manifest is written last, so a tag never names a checkpoint whose
// blobs are not all in the registry.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/progress"
)

// Media types and annotations of the layout.
const (
	ConfigMediaType = "application/vnd.ckpt.checkpoint.manifest.v1+json"
	FileMediaType   = "application/vnd.ckpt.checkpoint.file.v1"
	ChunkMediaType  = "application/vnd.ckpt.checkpoint.chunk.v1"

	AnnotationContainer  = "dev.ckpt.container"
	AnnotationCheckpoint = "dev.ckpt.checkpoint"
	AnnotationFormat     = "dev.ckpt.format-version"
	AnnotationSignature  = "dev.ckpt.signature"
)

// Options says how to reach the registry.
type Options struct {
	// CAFile is a PEM file of certificate authorities to trust, besides
	// the system's and /etc/docker/certs.d/HOST/ca.crt.
	CAFile string
	// Insecure skips the verification of the registry's TLS certificate.
	Insecure bool
	// PlainHTTP talks HTTP, not HTTPS.
	PlainHTTP bool
	// DockerConfig is the docker CLI's config.json to read credentials
	// from (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).
	DockerConfig string
	// Concurrency is how many blobs move at once (default 4).
	Concurrency int
	// Progress receives a "push" or "pull" event about once a second.
	Progress progress.Reporter
	// Encrypt, on a push, encrypts the checkpoint.
	Encrypt *Encryption
	// Decrypt, on a pull, decrypts an encrypted checkpoint.
	Decrypt *Decryption
	// Signature, on a push, is the signature of the checkpoint's manifest
	// to send along (store.SignatureFor); nil sends none, and whoever
	// pulls it gets its data only.
	Signature []byte
	// Warn receives warnings, such as credentials sent without TLS, as
	// text without a prefix (default: printed to os.Stderr as
	// "ckpt: warning: ...").
	Warn func(string)
}

// certsDir is where the docker engine looks for a registry's CA
// (HOST/ca.crt), so a registry docker trusts is trusted here too.
var certsDir = "/etc/docker/certs.d"

// Stats counts what moved.
type Stats struct {
	// Blobs is the checkpoint's number of blobs (files and distinct
	// chunks) and Bytes their size; Skipped and SkippedBytes are those
	// not moved because the other side had them.
	Blobs, Skipped      int
	Bytes, SkippedBytes int64
	// Digest is the digest of the OCI manifest.
	Digest string
	// Elapsed is how long it took.
	Elapsed time.Duration
}

// Sent is the number of bytes moved.
func (s Stats) Sent() int64 { return s.Bytes - s.SkippedBytes }

// ParseRef parses a registry reference as the docker CLI does
// ("registry.example:5000/team/web:tag", "team/web" on Docker Hub). It
// returns the reference oras understands and its tag or digest ("" for
// none).
func ParseRef(ref string) (repo, tagOrDigest string, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", hint.Wrap(fmt.Errorf("%q is not a registry reference: %w", ref, err),
			"give HOST[:PORT]/REPOSITORY[:TAG], as for docker push")
	}
	host := reference.Domain(named)
	if host == "docker.io" {
		host = "registry-1.docker.io"
	}
	repo = host + "/" + reference.Path(named)
	switch r := named.(type) {
	case reference.Digested:
		tagOrDigest = r.Digest().String()
	case reference.Tagged:
		tagOrDigest = r.Tag()
	}
	return repo, tagOrDigest, nil
}

// repository returns the repository repo ("host/path") reached as o says.
func repository(repo string, o Options) (*remote.Repository, error) {
	r, err := remote.NewRepository(repo)
	if err != nil {
		return nil, err
	}
	r.PlainHTTP = o.PlainHTTP
	host := r.Reference.Registry
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.Insecure}
	cas := []string{filepath.Join(certsDir, host, "ca.crt")}
	if o.CAFile != "" {
		cas = append(cas, o.CAFile)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for i, f := range cas {
		pem, err := os.ReadFile(f)
		if i == 0 && errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f)
		}
	}
	tr.TLSClientConfig.RootCAs = pool
	var creds credentials.Store
	if o.DockerConfig != "" {
		creds, err = credentials.NewStore(o.DockerConfig, credentials.StoreOptions{})
	} else {
		creds, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("reading the docker CLI's credentials: %w", err)
	}
	r.Client = &auth.Client{
		Client:     &http.Client{Transport: retry.NewTransport(tr)},
		Cache:      auth.NewCache(),
		Credential: warnCredential(credentials.Credential(creds), o),
		Header:     http.Header{"User-Agent": {"ckpt"}},
	}
	return r, nil
}

// warnCredential is cred, which warns once through o.Warn when it gives a
// credential that --plain-http or --insecure exposes.
func warnCredential(cred auth.CredentialFunc, o Options) auth.CredentialFunc {
	var how string
	switch {
	case o.PlainHTTP:
		how = "over plain HTTP (--plain-http)"
	case o.Insecure:
		how = "to a registry whose TLS certificate is not verified (--insecure)"
	default:
		return cred
	}
	warn := o.Warn
	if warn == nil {
		warn = func(s string) { fmt.Fprintf(os.Stderr, "ckpt: warning: %s\n", s) }
	}
	var once sync.Once
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		c, err := cred(ctx, hostport)
		if err == nil && c != auth.EmptyCredential {
			once.Do(func() { warn("sending the docker CLI's credentials for " + hostport + " " + how) })
		}
		return c, err
	}
}

// explain adds a hint to the errors people meet first: the registry not
// there, its certificate, its credentials.
func explain(err error, host string) error {
	if err == nil {
		return nil
	}
	var resp *errcode.ErrorResponse
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var opErr *net.OpError
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound), errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		login := "docker login " + host
		if host == "registry-1.docker.io" {
			login = "docker login" // Docker Hub's credentials have a key of their own
		}
		return hint.Wrap(err, "log in with "+login+": ckpt uses the docker CLI's credentials")
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		return hint.Wrap(err, "the credentials for "+host+" do not allow this: check the account's rights on the repository")
	case errors.As(err, &unknownCA):
		return hint.Wrap(err, fmt.Sprintf("give the registry's CA with --ca-file FILE (or put it in %s/%s/ca.crt, as for docker); --insecure skips the check", certsDir, host))
	case errors.As(err, &hostname):
		return hint.Wrap(err, "the registry's certificate is not for "+host+": use the name it was made for")
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return hint.Wrap(err, "the registry at "+host+" dropped the connection: check that it still runs, then try again")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return hint.Wrap(err, "is the registry running, and at "+host+"?")
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return hint.Wrap(err, "the registry talks plain HTTP: add --plain-http")
	}
	return err
}
