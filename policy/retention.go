package policy

import (
	"fmt"
	"sort"
	"time"

	"github.com/ckpt-dev/ckpt/internal/units"
)

// Item is one complete checkpoint as retention sees it.
type Item struct {
	Container, Name string
	Created         time.Time
	Size            int64
	// Untrusted is true for a checkpoint from elsewhere that is not
	// trusted: it picked its own date, so it counts as older than every
	// trusted one of its container, and never takes their place.
	Untrusted bool
}

// Verdict is what retention decided for one item.
type Verdict struct {
	Item
	Keep   bool
	Reason string
}

// ApplyRetention decides which checkpoints to keep. Pure: no I/O. Returns one
// verdict per item, in the input order.
//
// The rules apply in this order:
//   - the newest checkpoint of each container (trusted ones before
//     untrusted ones, then by Created, ties broken by the greater Name) is
//     always kept, so that retention never removes the only way back;
//   - with KeepLast, the checkpoints of a container beyond its KeepLast
//     newest go;
//   - with MaxAge, the remaining ones created before now-MaxAge go;
//   - with MaxBytes, while the kept checkpoints add up to more than
//     MaxBytes, the oldest kept one that is not the newest of its container
//     goes. When only newest ones are left, they stay, over the limit.
//
// A zero Retention keeps everything.
func ApplyRetention(items []Item, r Retention, now time.Time) []Verdict {
	out := make([]Verdict, len(items))
	for i, it := range items {
		out[i] = Verdict{Item: it, Keep: true}
	}

	// Each container's items, newest first.
	byContainer := map[string][]int{}
	for i, it := range items {
		byContainer[it.Container] = append(byContainer[it.Container], i)
	}
	newest := make([]bool, len(items))
	for _, idx := range byContainer {
		sort.SliceStable(idx, func(a, b int) bool { return newerItem(items[idx[a]], items[idx[b]]) })
		newest[idx[0]] = true
		out[idx[0]].Reason = "newest of " + items[idx[0]].Container
		if r.KeepLast > 0 {
			for _, i := range idx[min(r.KeepLast, len(idx)):] { // never idx[0]
				out[i].Keep, out[i].Reason = false, fmt.Sprintf("beyond keep_last %d", r.KeepLast)
			}
		}
	}

	if r.MaxAge > 0 {
		cutoff := now.Add(-r.MaxAge)
		for i, it := range items {
			if out[i].Keep && !newest[i] && it.Created.Before(cutoff) {
				out[i].Keep, out[i].Reason = false, "older than max_age "+durationText(r.MaxAge)
			}
		}
	}

	if r.MaxBytes > 0 {
		var total int64
		var candidates []int // kept items that may go, oldest first
		for i, it := range items {
			if !out[i].Keep {
				continue
			}
			total += it.Size
			if !newest[i] {
				candidates = append(candidates, i)
			}
		}
		sort.SliceStable(candidates, func(a, b int) bool {
			x, y := items[candidates[a]], items[candidates[b]]
			if x.Created.Equal(y.Created) && x.Name == y.Name {
				return x.Container < y.Container
			}
			return newerItem(y, x)
		})
		for _, i := range candidates {
			if total <= r.MaxBytes {
				break
			}
			out[i].Keep, out[i].Reason = false, "over max_bytes "+units.Bytes(r.MaxBytes)
			total -= items[i].Size
		}
	}

	for i := range out {
		if out[i].Keep && !newest[i] {
			out[i].Reason = "within retention"
		}
	}
	return out
}

// newerItem orders checkpoints newest first: trusted before untrusted,
// then by Created, then by Name descending (default names sort in creation
// order).
func newerItem(a, b Item) bool {
	if a.Untrusted != b.Untrusted {
		return b.Untrusted
	}
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.Name > b.Name
}

// durationText formats d for people, in days when it is whole days: "7d",
// else as time.Duration does: "36h0m0s".
func durationText(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
