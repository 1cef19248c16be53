package app

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/restore"
)

func TestHintFor(t *testing.T) {
	damaged := &store.DamagedError{Container: "web", Name: "cp1", Err: errors.New("criu/pages-1.img: sha256 mismatch")}
	decrypt := func(e transfer.DecryptError) error { return fmt.Errorf("import: %w", &e) }
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"none", errors.New("x"), ""},
		{"library hint", hint.New("x", "do y"), "do y"},
		{"damaged manifest", fmt.Errorf("resume: %w", damaged),
			"nothing was changed; resume another checkpoint with ckpt resume web:NAME (ckpt ls web lists them), or remove this one with ckpt rm web:cp1"},
		{"damaged file", &store.DamagedError{Container: "web", Name: "cp1", Files: true, Err: errors.New("x")},
			"nothing was started or changed; resume an older checkpoint with ckpt resume web:NAME (ckpt ls web lists them), or remove this one with ckpt rm web:cp1"},
		{"damaged, the command's own hint", hint.Wrap(fmt.Errorf("export: %w", damaged), "export another one"), "export another one"},
		{"store permission", fmt.Errorf("%w: %w", store.ErrCannotCreate, fs.ErrPermission),
			"run ckpt as root, or point --store (CKPT_STORE) at a directory you own"},
		{"store other", fmt.Errorf("%w: %w", store.ErrCannotCreate, errors.New("read-only file system")), ""},
		{"another arch", fmt.Errorf("memory cannot be restored here: %w", &criu.IncompatibleError{Arch: "s390x", HostArch: "amd64"}),
			"resume it on an s390x host, or use its data only (the resume does that unless --require-memory)"},
		{"another CPU", &criu.IncompatibleError{Arch: "amd64", HostArch: "amd64", Missing: []string{"avx512f"}},
			"resume it on a host with the same CPU features, or use its data only (the resume does that unless --require-memory)"},
		{"encrypt", fmt.Errorf("%w: bad recipient", transfer.ErrCannotEncrypt), "check the --recipient values"},
		{"no room", fmt.Errorf("web: %w", &preflight.SpaceError{Dir: "/var/lib/ckpt", Container: "web", Need: 2, Free: 1}),
			"free space there (ckpt rm removes old checkpoints) or use another --store; nothing was changed"},
		{"disk full", fmt.Errorf("write: %w", syscall.ENOSPC), "free space in the store (ckpt rm removes old checkpoints) or use another --store"},
		{"name taken", &store.ExistsError{Container: "web", Name: "cp1"}, "choose another name (ckpt save web:NAME), or remove it with ckpt rm web:cp1"},
		{"no fallback", &restore.NoFallbackError{Err: errors.New("criu failed"), Tried: true},
			"without --require-memory the container starts on its saved data instead (its memory is lost)"},
		{"no fallback, CRIU's own hint first", &restore.NoFallbackError{Err: hint.New("bad size", "a file changed")}, "a file changed"},
		{"unknown encryption", decrypt(transfer.DecryptError{Err: transfer.ErrEncrypted}),
			"it was encrypted by ckpt export --recipient (give the matching private key) or --passphrase-file (give the same file)"},
		{"no identity", decrypt(transfer.DecryptError{Err: transfer.ErrEncrypted, Known: true, Recipients: []string{"X25519", "ssh-ed25519"}}),
			"it is encrypted to X25519, ssh-ed25519 recipients: give the private key of one of them with --identity (an age identity file or an SSH private key)"},
		{"no passphrase", decrypt(transfer.DecryptError{Err: transfer.ErrEncrypted, Known: true, Passphrase: true}),
			"it is encrypted with a passphrase: give the file that holds it with --passphrase-file"},
		{"wrong identities", decrypt(transfer.DecryptError{Err: transfer.ErrNoIdentityMatch, Known: true, Recipients: []string{"X25519"}, GotIdentities: true}),
			"it is encrypted to X25519 recipients, and none of the --identity files holds the private key of one of them"},
		{"passphrase for recipients", decrypt(transfer.DecryptError{Err: transfer.ErrNoIdentityMatch, Known: true, Recipients: []string{"X25519"}, GotPassphrase: true}),
			"it is encrypted to X25519 recipients: give the private key of one of them with --identity (an age identity file or an SSH private key)"},
		{"wrong passphrase", decrypt(transfer.DecryptError{Err: transfer.ErrNoIdentityMatch, Known: true, Passphrase: true, GotPassphrase: true}),
			"it is encrypted with a passphrase, and that of --passphrase-file is not it"},
		{"identity for passphrase", decrypt(transfer.DecryptError{Err: transfer.ErrNoIdentityMatch, Known: true, Passphrase: true, GotIdentities: true}),
			"it is encrypted with a passphrase: give the file that holds it with --passphrase-file"},
		{"recipients unknown", decrypt(transfer.DecryptError{Err: transfer.ErrEncrypted, Known: true}),
			"it is encrypted to recipients: give the private key of one of them with --identity (an age identity file or an SSH private key)"},
	} {
		if got := hintFor(tc.err); got != tc.want {
			t.Errorf("%s: hintFor(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
