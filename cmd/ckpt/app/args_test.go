package app

import (
	"strings"
	"testing"
)

func TestFlagsBeforeArgs(t *testing.T) {
	app := New(nil, nil)
	for in, want := range map[string]string{
		"ckpt export web -o web.ckpt":                       "ckpt export -o web.ckpt web",
		"ckpt export web:cp1 -o - --compress none":          "ckpt export -o - --compress none web:cp1",
		"ckpt --store /s save web --leave-running --name x": "ckpt --store /s save --leave-running --name x web",
		"ckpt save --cold web db":                           "ckpt save --cold web db",
		"ckpt resume web --from=cp1 --no-fallback":          "ckpt resume --from=cp1 --no-fallback web",
		"ckpt hook run shutdown --policy p.yaml":            "ckpt hook run shutdown --policy p.yaml",
		"ckpt import - --identity key":                      "ckpt import --identity key -",
		"ckpt rm web -- -odd-name":                          "ckpt rm web -- -odd-name",
		"ckpt save web --bogus":                             "ckpt save web --bogus",
		"ckpt ls":                                           "ckpt ls",
		"ckpt":                                              "ckpt",
		"ckpt export web -o":                                "ckpt export -o web",
	} {
		got := strings.Join(flagsBeforeArgs(app, strings.Fields(in)), " ")
		if got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}
