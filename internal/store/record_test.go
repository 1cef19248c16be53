package store

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
)

func TestShutdownRecord(t *testing.T) {
	s := newStore(t)
	doc, err := s.ReadShutdownRecord()
	if doc != nil || err != nil {
		t.Fatalf("ReadShutdownRecord before any = %+v, %v", doc, err)
	}
	for _, name := range []string{"web", "db"} { // the second replaces the first
		want := &format.ShutdownRecordDoc{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Saved: []format.SavedContainer{{Name: name, Mode: format.ModeHot, Checkpoint: "cp1"}}}
		must(t, s.WriteShutdownRecord(want))
		got, err := s.ReadShutdownRecord()
		must(t, err)
		if !got.Time.Equal(want.Time) || !reflect.DeepEqual(got.Saved, want.Saved) {
			t.Errorf("ReadShutdownRecord = %+v, want %+v", got, want)
		}
		if m := permOf(t, s.recordPath()); m != FileMode {
			t.Errorf("record mode %v", m)
		}
		ents, err := os.ReadDir(filepath.Dir(s.recordPath()))
		must(t, err)
		if len(ents) != 1 || ents[0].Name() != format.ShutdownRecord {
			t.Errorf("hooks directory holds %v, want only the record", ents) // no temporary file
		}
	}
	must(t, s.FinishShutdownRecord())
	if doc, err := s.ReadShutdownRecord(); doc != nil || err != nil {
		t.Errorf("ReadShutdownRecord after Finish = %+v, %v", doc, err)
	}
}
