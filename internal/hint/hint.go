// Package hint attaches advice for people to errors.
//
// Library code wraps errors with %w as usual; where the fix is something a
// person can do (start the engine, free disk space, pick another checkpoint),
// it wraps them once more with a hint. The command line prints the message and
// the hint on separate lines and picks the exit code in one place.
package hint

import (
	"errors"
	"os"
	"strings"
)

// Error is an error with advice for the person who sees it.
type Error struct {
	// Err is the error itself; its text is the message.
	Err error
	// Hint says what to do about it, lowercase, without a trailing period.
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns err with hint attached, or nil when err is nil.
func Wrap(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: hint}
}

// New returns an error with message msg and the given hint.
func New(msg, hint string) error { return &Error{Err: errors.New(msg), Hint: hint} }

// Of returns the outermost hint attached to err, or "".
func Of(err error) string {
	var h *Error
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

// FirstLine is the first line of err's message ("" for nil): for one-line
// reports of errors that carry a log or a hint on further lines.
func FirstLine(err error) string {
	if err == nil {
		return ""
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// DocDir is where the Debian package installs the pages of ckpt's docs/
// (scripts/deb.sh); a variable for tests.
var DocDir = "/usr/share/doc/ckpt/docs"

// Doc names page (engines.md, a page of ckpt's docs/) where the person who
// reads a message can open it: the installed copy when there is one (the
// package compresses the larger pages), else the page in ckpt's source.
func Doc(page string) string {
	for _, p := range []string{DocDir + "/" + page, DocDir + "/" + page + ".gz"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "docs/" + page + " in ckpt's source, https://github.com/ckpt-dev/ckpt"
}
