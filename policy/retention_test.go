package policy

import (
	"slices"
	"testing"
	"time"
)

func TestApplyRetention(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	const (
		day = 24 * time.Hour
		KiB = 1 << 10
		MiB = 1 << 20
	)
	// it is an item of container created age before now.
	it := func(container, name string, age time.Duration, size int64) Item {
		return Item{Container: container, Name: name, Created: now.Add(-age), Size: size}
	}
	for _, tc := range []struct {
		name  string
		items []Item
		r     Retention
		now   time.Time
		want  []string // "container:name keep|remove (reason)", in the input order
	}{
		{
			name: "no items",
			r:    Retention{KeepLast: 1, MaxAge: day, MaxBytes: 1},
			now:  now,
			want: nil,
		},
		{
			name: "zero retention keeps everything",
			items: []Item{
				it("web", "w1", 3*day, 10),
				it("web", "w2", 2*day, 10),
				it("db", "d1", 10*day, 10),
				it("web", "w3", day, 10),
			},
			now: now,
			want: []string{
				"web:w1 keep (within retention)",
				"web:w2 keep (within retention)",
				"db:d1 keep (newest of db)",
				"web:w3 keep (newest of web)",
			},
		},
		{
			name: "an untrusted import dated in the future takes no trusted one's place",
			items: []Item{
				it("web", "w1", 2*day, 10),
				it("web", "w2", day, 10),
				{Container: "web", Name: "pulled", Created: now.Add(day), Size: 10, Untrusted: true},
			},
			r:   Retention{KeepLast: 2},
			now: now,
			want: []string{
				"web:w1 keep (within retention)",
				"web:w2 keep (newest of web)",
				"web:pulled remove (beyond keep_last 2)",
			},
		},
		{
			name: "an untrusted checkpoint alone is the newest",
			items: []Item{
				{Container: "web", Name: "pulled", Created: now.Add(-30 * day), Size: 10, Untrusted: true},
			},
			r:   Retention{KeepLast: 1, MaxAge: day},
			now: now,
			want: []string{
				"web:pulled keep (newest of web)",
			},
		},
		{
			name: "the only checkpoint stays whatever the limits",
			items: []Item{
				it("web", "only", 30*day, 1<<30),
			},
			r:   Retention{KeepLast: 1, MaxAge: time.Hour, MaxBytes: 1},
			now: now,
			want: []string{
				"web:only keep (newest of web)",
			},
		},
		{
			name: "keep_last 2, input order preserved",
			items: []Item{
				it("web", "c3", day, 10),
				it("web", "c1", 3*day, 10),
				it("web", "c4", time.Hour, 10),
				it("web", "c2", 2*day, 10),
			},
			r:   Retention{KeepLast: 2},
			now: now,
			want: []string{
				"web:c3 keep (within retention)",
				"web:c1 remove (beyond keep_last 2)",
				"web:c4 keep (newest of web)",
				"web:c2 remove (beyond keep_last 2)",
			},
		},
		{
			name: "keep_last 1 keeps only the newest of each container",
			items: []Item{
				it("web", "w1", 3*day, 10),
				it("web", "w2", 2*day, 10),
				it("db", "d1", 5*day, 10),
				it("db", "d2", 4*day, 10),
				it("cache", "k1", 9*day, 10),
			},
			r:   Retention{KeepLast: 1},
			now: now,
			want: []string{
				"web:w1 remove (beyond keep_last 1)",
				"web:w2 keep (newest of web)",
				"db:d1 remove (beyond keep_last 1)",
				"db:d2 keep (newest of db)",
				"cache:k1 keep (newest of cache)",
			},
		},
		{
			name: "keep_last above the count keeps all",
			items: []Item{
				it("web", "a", 3*day, 10),
				it("web", "b", 2*day, 10),
				it("web", "c", day, 10),
			},
			r:   Retention{KeepLast: 5},
			now: now,
			want: []string{
				"web:a keep (within retention)",
				"web:b keep (within retention)",
				"web:c keep (newest of web)",
			},
		},
		{
			name: "max_age 7d",
			items: []Item{
				it("web", "a", 30*day, 10),
				it("web", "b", 8*day, 10),
				it("web", "c", 6*day, 10),
				it("web", "d", day, 10),
			},
			r:   Retention{MaxAge: 7 * day},
			now: now,
			want: []string{
				"web:a remove (older than max_age 7d)",
				"web:b remove (older than max_age 7d)",
				"web:c keep (within retention)",
				"web:d keep (newest of web)",
			},
		},
		{
			name: "max_age keeps a checkpoint exactly at the limit",
			items: []Item{
				it("web", "a", 7*day, 10),
				it("web", "b", 7*day+time.Second, 10),
				it("web", "c", time.Hour, 10),
			},
			r:   Retention{MaxAge: 7 * day},
			now: now,
			want: []string{
				"web:a keep (within retention)",
				"web:b remove (older than max_age 7d)",
				"web:c keep (newest of web)",
			},
		},
		{
			name: "max_age never removes the newest of a container",
			items: []Item{
				it("web", "a", 40*day, 10),
				it("web", "b", 20*day, 10),
				it("db", "d", day, 10),
			},
			r:   Retention{MaxAge: 7 * day},
			now: now,
			want: []string{
				"web:a remove (older than max_age 7d)",
				"web:b keep (newest of web)",
				"db:d keep (newest of db)",
			},
		},
		{
			name: "max_age not in whole days",
			items: []Item{
				it("web", "a", 2*day, 10),
				it("web", "b", day, 10),
				it("web", "c", 0, 10),
			},
			r:   Retention{MaxAge: 36 * time.Hour},
			now: now,
			want: []string{
				"web:a remove (older than max_age 36h0m0s)",
				"web:b keep (within retention)",
				"web:c keep (newest of web)",
			},
		},
		{
			name: "keep_last applies before max_age",
			items: []Item{
				it("web", "a", 30*day, 10),
				it("web", "b", 20*day, 10),
				it("web", "c", 10*day, 10),
				it("web", "d", day, 10),
			},
			r:   Retention{KeepLast: 2, MaxAge: 7 * day},
			now: now,
			want: []string{
				"web:a remove (beyond keep_last 2)",
				"web:b remove (beyond keep_last 2)",
				"web:c remove (older than max_age 7d)",
				"web:d keep (newest of web)",
			},
		},
		{
			name: "max_bytes removes the oldest across containers until under",
			items: []Item{
				it("web", "w1", 5*day, 30),
				it("web", "w2", 3*day, 30),
				it("web", "w3", day, 30),
				it("db", "d1", 4*day, 30),
				it("db", "d2", 2*day, 30),
			},
			r:   Retention{MaxBytes: 100},
			now: now,
			want: []string{
				"web:w1 remove (over max_bytes 100 B)",
				"web:w2 keep (within retention)",
				"web:w3 keep (newest of web)",
				"db:d1 remove (over max_bytes 100 B)",
				"db:d2 keep (newest of db)",
			},
		},
		{
			name: "max_bytes removes the oldest first even when it is small",
			items: []Item{
				it("web", "small", 3*day, 1),
				it("web", "big", 2*day, 100),
				it("web", "last", day, 10),
			},
			r:   Retention{MaxBytes: 20},
			now: now,
			want: []string{
				"web:small remove (over max_bytes 20 B)",
				"web:big remove (over max_bytes 20 B)",
				"web:last keep (newest of web)",
			},
		},
		{
			name: "max_bytes met exactly keeps all",
			items: []Item{
				it("web", "a", 2*day, 30),
				it("web", "b", day, 30),
			},
			r:   Retention{MaxBytes: 60},
			now: now,
			want: []string{
				"web:a keep (within retention)",
				"web:b keep (newest of web)",
			},
		},
		{
			name: "max_bytes that only newest ones exceed: they stay",
			items: []Item{
				it("web", "w1", 3*day, 800),
				it("web", "w2", day, 800),
				it("db", "d1", 2*day, 800),
			},
			r:   Retention{MaxBytes: KiB},
			now: now,
			want: []string{
				"web:w1 remove (over max_bytes 1.0 KiB)",
				"web:w2 keep (newest of web)",
				"db:d1 keep (newest of db)",
			},
		},
		{
			name: "max_bytes counts only what keep_last and max_age kept",
			items: []Item{
				it("web", "a", 20*day, MiB),
				it("web", "b", 10*day, MiB),
				it("web", "c", 2*day, MiB),
				it("web", "d", time.Hour, MiB),
				it("db", "x", 9*day, 512*KiB),
				it("db", "y", day, 512*KiB),
			},
			r:   Retention{KeepLast: 2, MaxAge: 7 * day, MaxBytes: 2 * MiB},
			now: now,
			want: []string{
				"web:a remove (beyond keep_last 2)",
				"web:b remove (beyond keep_last 2)",
				"web:c remove (over max_bytes 2.0 MiB)",
				"web:d keep (newest of web)",
				"db:x remove (older than max_age 7d)",
				"db:y keep (newest of db)",
			},
		},
		{
			name: "max_bytes satisfied by keep_last alone",
			items: []Item{
				it("web", "a", 3*day, 50),
				it("web", "b", 2*day, 10),
				it("web", "c", day, 10),
			},
			r:   Retention{KeepLast: 2, MaxBytes: 20},
			now: now,
			want: []string{
				"web:a remove (beyond keep_last 2)",
				"web:b keep (within retention)",
				"web:c keep (newest of web)",
			},
		},
		{
			name: "same time: the greater name is the newer",
			items: []Item{
				it("web", "20261127T114912Z", day, 10),
				it("web", "20261127T114912Z-3", day, 10),
				it("web", "20261127T114912Z-2", day, 10),
			},
			r:   Retention{KeepLast: 2},
			now: now,
			want: []string{
				"web:20261127T114912Z remove (beyond keep_last 2)",
				"web:20261127T114912Z-3 keep (newest of web)",
				"web:20261127T114912Z-2 keep (within retention)",
			},
		},
		{
			name: "the creation time wins over the name",
			items: []Item{
				it("web", "b", 2*day, 10),
				it("web", "a", day, 10),
			},
			r:   Retention{KeepLast: 1},
			now: now,
			want: []string{
				"web:b remove (beyond keep_last 1)",
				"web:a keep (newest of web)",
			},
		},
		{
			name: "max_bytes tie across containers: the first container goes first",
			items: []Item{
				it("web", "a", 2*day, 20),
				it("db", "a", 2*day, 20),
				it("web", "z", day, 10),
				it("db", "z", day, 10),
			},
			r:   Retention{MaxBytes: 50},
			now: now,
			want: []string{
				"web:a keep (within retention)",
				"db:a remove (over max_bytes 50 B)",
				"web:z keep (newest of web)",
				"db:z keep (newest of db)",
			},
		},
		{
			name: "max_bytes tie on time across containers: the smaller name goes first",
			items: []Item{
				it("web", "b", 2*day, 20),
				it("db", "c", 2*day, 20),
				it("web", "z", day, 10),
				it("db", "z", day, 10),
			},
			r:   Retention{MaxBytes: 50},
			now: now,
			want: []string{
				"web:b remove (over max_bytes 50 B)",
				"db:c keep (within retention)",
				"web:z keep (newest of web)",
				"db:z keep (newest of db)",
			},
		},
		{
			name: "times in other zones compare as instants",
			items: []Item{
				{Container: "web", Name: "b", Created: now.Add(-time.Hour).In(time.FixedZone("UTC+5", 5*3600)), Size: 10},
				{Container: "web", Name: "a", Created: now.Add(-time.Minute), Size: 10},
			},
			r:   Retention{KeepLast: 1},
			now: now,
			want: []string{
				"web:b remove (beyond keep_last 1)",
				"web:a keep (newest of web)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.items)
			got := ApplyRetention(tc.items, tc.r, tc.now)
			if !slices.Equal(tc.items, in) {
				t.Errorf("ApplyRetention changed its input:\n got %v\nwant %v", tc.items, in)
			}
			if len(got) != len(tc.items) {
				t.Fatalf("%d verdicts for %d items", len(got), len(tc.items))
			}
			var lines []string
			for i, v := range got {
				if v.Item != tc.items[i] {
					t.Errorf("verdict %d is for %+v, want %+v", i, v.Item, tc.items[i])
				}
				verb := "remove"
				if v.Keep {
					verb = "keep"
				}
				lines = append(lines, v.Container+":"+v.Name+" "+verb+" ("+v.Reason+")")
			}
			if !slices.Equal(lines, tc.want) {
				t.Errorf("verdicts:\n got %q\nwant %q", lines, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour:  "7d",
		24 * time.Hour:   "1d",
		36 * time.Hour:   "36h0m0s",
		90 * time.Minute: "1h30m0s",
		time.Second:      "1s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
	}
}
