package format

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	good := func() *Manifest {
		return &Manifest{
			Mode:      ModeHot,
			Container: Container{Name: "web", ID: "abc"},
			Files:     []File{{Path: LayerFile, SHA256: sum}, {Path: "volumes/data.tar", SHA256: sum}, {Path: "criu/pages-1.img", SHA256: sum}},
			Layer:     Layer{Archive: LayerFile},
			Volumes:   []Volume{{Name: "data", Archive: "volumes/data.tar"}},
		}
	}
	for _, tt := range []struct {
		name   string
		change func(m *Manifest)
		want   string // "" for none
	}{
		{"good", func(*Manifest) {}, ""},
		{"volume archive of another checkpoint", func(m *Manifest) { m.Volumes[0].Archive = "../../../db/checkpoints/cp1/volumes/x.tar" },
			`the archive "../../../db/checkpoints/cp1/volumes/x.tar" of volume data is not one of its files`},
		{"layer archive not listed", func(m *Manifest) { m.Layer.Archive = "/etc/shadow" }, `the layer's archive "/etc/shadow" is not one of its files`},
		{"volume name is a path", func(m *Manifest) { m.Volumes[0].Name = "../x" }, `invalid volume name "../x"`},
		{"listed twice", func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) }, "listed twice"},
		{"reserved name", func(m *Manifest) { m.Files = append(m.Files, File{Path: OriginFile, SHA256: sum}) }, "a reserved name"},
		{"leaves", func(m *Manifest) { m.Files[2].Path = "criu/../../x" }, "leaves the checkpoint directory"},
		{"not a sum", func(m *Manifest) { m.Files[2].SHA256 = "x" }, "is not a sha256"},
	} {
		m := good()
		tt.change(m)
		err := m.Check()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, tt := range []struct {
		name   string
		change func(m *Manifest)
		want   string
	}{
		{"no id", func(m *Manifest) { m.Container.ID = "" }, "no name or no id"},
		{"no name", func(m *Manifest) { m.Container.Name = "" }, "no name or no id"},
		{"mode", func(m *Manifest) { m.Mode = "warm" }, `mode "warm" is neither hot nor cold`},
	} {
		m := good()
		tt.change(m)
		if err := m.CheckResumable(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := good().CheckResumable(); err != nil {
		t.Errorf("good: %v", err)
	}
}
