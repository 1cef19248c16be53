package app

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/restore"
)

// hintFor returns the advice printed under err: the hint a library or a
// command attached to it, or else the one the command line gives for the
// typed errors whose fix is one of its flags (the libraries name no flags).
// "" when there is none.
func hintFor(err error) string {
	if h := hint.Of(err); h != "" {
		return h
	}
	return flagHint(err)
}

// flagHint is the advice for the library errors whose fix is a flag.
func flagHint(err error) string {
	var (
		damaged    *store.DamagedError
		decrypt    *transfer.DecryptError
		incompat   *criu.IncompatibleError
		space      *preflight.SpaceError
		exists     *store.ExistsError
		noFallback *restore.NoFallbackError
		untrusted  *restore.UntrustedError
		ranAfter   *restore.RanAfterError
	)
	switch {
	case errors.As(err, &damaged) && damaged.Files:
		return fmt.Sprintf("nothing was started or changed; resume an older checkpoint with ckpt resume %s:NAME (ckpt ls %s lists them), or remove this one with ckpt rm %s",
			damaged.Container, damaged.Container, refString(damaged.Container, damaged.Name))
	case errors.As(err, &damaged):
		return fmt.Sprintf("nothing was changed; resume another checkpoint with ckpt resume %s:NAME (ckpt ls %s lists them), or remove this one with ckpt rm %s",
			damaged.Container, damaged.Container, refString(damaged.Container, damaged.Name))
	case errors.As(err, &decrypt):
		return decryptHint(decrypt)
	case errors.As(err, &incompat) && len(incompat.Missing) == 0:
		return "resume it on an " + incompat.Arch + " host, or use its data only (the resume does that unless --require-memory)"
	case errors.As(err, &incompat):
		return "resume it on a host with the same CPU features, or use its data only (the resume does that unless --require-memory)"
	case errors.Is(err, store.ErrNotStore):
		return "point --store (CKPT_STORE) at a new or empty directory, or at an existing store; nothing was changed"
	case errors.Is(err, store.ErrCannotCreate) && errors.Is(err, fs.ErrPermission):
		return "run ckpt as root, or point --store (CKPT_STORE) at a directory you own"
	case errors.Is(err, transfer.ErrCannotEncrypt):
		return "check the --recipient values"
	case errors.As(err, &space):
		return "free space there (ckpt rm removes old checkpoints) or use another --store; nothing was changed"
	case errors.Is(err, syscall.ENOSPC):
		return "free space in the store (ckpt rm removes old checkpoints) or use another --store"
	case errors.As(err, &exists):
		return "choose another name (ckpt save " + exists.Container + ":NAME), or remove it with ckpt rm " + refString(exists.Container, exists.Name)
	case errors.As(err, &ranAfter):
		return "nothing was changed; save it again to keep what it is now, or resume with --force to go back to the checkpoint's memory over its newer files (a database may not survive that)"
	case errors.As(err, &untrusted):
		return "nothing was changed; read the list, and if you trust where the archive came from, resume with --trust"
	case errors.As(err, &noFallback):
		return "without --require-memory the container starts on its saved data instead (its memory is lost)"
	}
	return ""
}

// decryptHint says what decrypts an archive that import could not decrypt.
func decryptHint(e *transfer.DecryptError) string {
	switch {
	case !e.Known:
		return "it was encrypted by ckpt export --recipient (give the matching private key) or --passphrase-file (give the same file)"
	case e.Passphrase && e.GotPassphrase:
		return "it is encrypted with a passphrase, and that of --passphrase-file is not it"
	case e.Passphrase:
		return "it is encrypted with a passphrase: give the file that holds it with --passphrase-file"
	}
	what := "recipients"
	if len(e.Recipients) > 0 {
		what = strings.Join(e.Recipients, ", ") + " recipients"
	}
	if e.GotIdentities {
		return "it is encrypted to " + what + ", and none of the --identity files holds the private key of one of them"
	}
	return "it is encrypted to " + what + ": give the private key of one of them with --identity (an age identity file or an SSH private key)"
}
