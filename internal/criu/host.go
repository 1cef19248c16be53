package criu

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
)

// CPUFlags returns the CPU feature flags of this machine (from
// /proc/cpuinfo), sorted; nil when they cannot be read.
func CPUFlags() []string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "flags" {
			flags := strings.Fields(v)
			slices.Sort(flags)
			return flags
		}
	}
	return nil
}

// Facts are what decides whether a process dumped on one machine can be
// restored on another.
type Facts struct {
	Kernel   string
	Arch     string
	CPUFlags []string
}

// HostFacts returns this machine's facts.
func HostFacts() Facts {
	return Facts{Kernel: Kernel(), Arch: runtime.GOARCH, CPUFlags: CPUFlags()}
}

// IncompatibleError is a checkpoint whose processes cannot be restored on
// this host: made on another architecture (Arch is the checkpoint's,
// HostArch this host's), or on a CPU with features this one lacks (Missing,
// empty in the first case). Its fix is to resume elsewhere or to use the data only, which
// the caller words (the command line names its flag).
type IncompatibleError struct {
	Arch, HostArch string
	Missing        []string
}

func (e *IncompatibleError) Error() string {
	if len(e.Missing) == 0 {
		return fmt.Sprintf("the checkpoint was made on %s and this host is %s: processes cannot move between architectures", e.Arch, e.HostArch)
	}
	missing := e.Missing
	if len(missing) > 8 {
		missing = append(slices.Clone(missing[:8]), fmt.Sprintf("and %d more", len(missing)-8))
	}
	return "this host's CPU lacks features the checkpoint's CPU had: " + strings.Join(missing, " ")
}

// Compatible says why processes dumped on a machine with facts from cannot
// be restored on a machine with facts to (an *IncompatibleError), or nil
// when nothing rules it out. Another kernel is not in itself a reason (CRIU
// restores across kernel versions; what the new kernel needs of CRIU is
// checked separately), but another architecture is, and so is a CPU that
// lacks features the old one had: the restored code may use them.
func Compatible(from, to Facts) error {
	if from.Arch != "" && from.Arch != to.Arch {
		return &IncompatibleError{Arch: from.Arch, HostArch: to.Arch}
	}
	if len(from.CPUFlags) > 0 && len(to.CPUFlags) > 0 {
		var missing []string
		for _, f := range from.CPUFlags {
			if _, ok := slices.BinarySearch(to.CPUFlags, f); !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return &IncompatibleError{Arch: from.Arch, HostArch: to.Arch, Missing: missing}
		}
	}
	return nil
}
