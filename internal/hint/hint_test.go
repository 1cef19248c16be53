package hint

import (
	"errors"
	"testing"
)

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("one"), "one"},
		{errors.New("first\nCRIU log:\n  (00.1) Error"), "first"},
		{Wrap(errors.New("cannot pause web"), "wait"), "cannot pause web"},
	} {
		if got := FirstLine(tc.err); got != tc.want {
			t.Errorf("FirstLine(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
