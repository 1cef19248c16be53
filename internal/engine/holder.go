package engine

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// HolderLabel marks a network holder container; its value is the name of
// the container whose network namespace it holds.
const HolderLabel = "io.ckpt.holder-of"

// HolderName is the name of the network holder container of container name.
func HolderName(name string) string { return name + "-ckpt-net" }

// InHolder reports whether container c shares the network namespace of its
// holder (its network mode is container:<holder name or id>).
func InHolder(c *container.InspectResponse, holderName, holderID string) bool {
	if c == nil || c.ContainerJSONBase == nil || c.HostConfig == nil {
		return false
	}
	mode := c.HostConfig.NetworkMode
	other := mode.ConnectedContainer()
	return mode.IsContainer() && (other == holderName || (holderID != "" && other == holderID))
}

// HolderImage returns the image network holders run, importing it when this
// engine does not have it: ckpt's own executable as /ckpt, run as
// "/ckpt holder". The tag is a digest of the executable, so an upgraded ckpt
// imports its own. The executable must be static (CGO_ENABLED=0, as make
// build makes it): the image holds nothing else.
func (e *Engine) HolderImage(ctx context.Context) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", err
	}
	if err := requireStatic(exe); err != nil {
		return "", err
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := "ckpt-holder:" + hex.EncodeToString(sum[:6])
	if _, err := e.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: "ckpt", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		if err == nil {
			_, err = tw.Write(data)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	rc, err := e.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/ckpt", "holder"]`, "LABEL " + HolderLabel + "="}})
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("cannot import the network holder image: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", fmt.Errorf("cannot import the network holder image: %w", err)
	}
	return ref, nil
}

// requireStatic returns an error when the ELF executable at path needs a
// dynamic loader.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return hint.New(fmt.Sprintf("%s is linked dynamically, and a network holder image holds nothing but ckpt", path),
				"build ckpt static: CGO_ENABLED=0 go build ./cmd/ckpt (make build does)")
		}
	}
	return nil
}
