package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/systemd"
	"github.com/ckpt-dev/ckpt/policy"
)

// unitNames are the hooks' units, the shutdown one first.
var unitNames = []string{systemd.ShutdownUnit, systemd.BootUnit}

// defaultUnitDir is where the units go unless --unit-dir says otherwise,
// and runtimeUnitDir where systemd reads runtime drop-ins. Variables for
// the tests.
var (
	defaultUnitDir = systemd.DefaultDir
	runtimeUnitDir = systemd.RuntimeDir
)

// systemdRunning reports whether systemd is PID 1, that is whether
// systemctl can talk to a running manager. A variable for the tests.
var systemdRunning = func() bool {
	comm, err := os.ReadFile("/proc/1/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "systemd"
}

func unitDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "unit-dir", Usage: "systemd unit `DIR`", Value: defaultUnitDir}
}

func hookInstallCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "install the systemd units that run the hooks at shutdown and boot",
		Description: `Writes ckpt-shutdown.service, which runs "ckpt hook run shutdown" when the
host goes down, before the Docker engine stops, and ckpt-boot.service, which
runs "ckpt hook run boot" once the engine is up at boot. The units name this
ckpt binary, the store and the policy file; the shutdown unit's timeout is the
policy's deadline plus 30s, so run install again after changing it. Units
ckpt did not write are never replaced. A policy file with errors is refused;
its warnings (see ckpt policy check) are printed.

When systemd is running and the units go into /etc/systemd/system, install
then reloads systemd, enables both units and starts ckpt-shutdown.service
(which does nothing until it is stopped at shutdown); --no-enable skips that.
The units of the ckpt package, in /usr/lib/systemd/system, are left as they
are: the ones install writes take their place. See hooks.md (in /usr/share/doc/ckpt, or docs/ in
ckpt's source).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` for the hooks", Value: policy.DefaultFile},
			unitDirFlag(),
			&cli.BoolFlag{Name: "no-enable", Usage: "only write the units: do not enable or start them"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("hook install takes no arguments")
			}
			bin, err := os.Executable()
			if err == nil {
				bin, err = filepath.EvalSymlinks(bin)
			}
			if err != nil {
				return fmt.Errorf("finding the ckpt binary: %w", err)
			}
			policyFile, err := filepath.Abs(c.String("policy"))
			if err != nil {
				return err
			}
			storeDir, err := filepath.Abs(c.String("store"))
			if err != nil {
				return err
			}
			pol, err := policy.Load(policyFile)
			if err != nil {
				return policyError(c, err)
			}
			// The units are written from this policy: an older unit's
			// timeout does not matter.
			warnings, err := policyWarnings(pol, policyFile, "")
			if err != nil {
				return err
			}
			printPolicyWarnings(c.App.ErrWriter, warnings)
			dir := c.String("unit-dir")
			paths, err := systemd.Install(dir, systemd.Options{
				Binary: bin, Policy: policyFile, Store: storeDir, Deadline: pol.Deadline,
			})
			for _, p := range paths {
				fmt.Fprintf(c.App.Writer, "wrote %s\n", p)
			}
			if err != nil {
				return err
			}

			live, isDefault := systemdRunning(), filepath.Clean(dir) == defaultUnitDir
			if live && isDefault {
				// An earlier uninstall disarmed the unit until the next
				// boot: the new one, which systemd prefers, is armed.
				p, err := systemd.Rearm(runtimeUnitDir)
				if err != nil {
					return err
				}
				if p != "" {
					fmt.Fprintf(c.App.Writer, "removed %s\n", p)
				}
			}
			if live && isDefault && !c.Bool("no-enable") {
				// Starting ckpt-shutdown.service arms it: its ExecStop,
				// the hook, runs when it is stopped at shutdown. Starting
				// ckpt-boot.service would resume containers now.
				for _, args := range [][]string{
					{"daemon-reload"},
					append([]string{"enable"}, unitNames...),
					{"start", systemd.ShutdownUnit},
				} {
					if err := systemctl(c, args...); err != nil {
						return err
					}
				}
				fmt.Fprintf(c.App.Writer, "the hooks are enabled: %s runs at shutdown, %s at boot\n",
					systemd.ShutdownUnit, systemd.BootUnit)
				return nil
			}

			// Say what to run instead. systemctl enable takes the path of
			// a unit outside systemd's directories and links it in.
			enable := unitNames
			if !isDefault {
				enable = paths
			}
			var why string
			var cmds []string
			switch {
			case !live:
				// systemctl enable works without a running systemd
				// (in an image, a chroot); both units start at the
				// next boot.
				why = "systemd is not running here"
				cmds = []string{"systemctl enable " + shellJoin(enable)}
			default:
				why = "not enabled (--no-enable)"
				if !isDefault {
					why = "not enabled (the units are not in " + defaultUnitDir + ")"
				}
				cmds = []string{
					"systemctl daemon-reload",
					"systemctl enable " + shellJoin(enable),
					"systemctl start " + systemd.ShutdownUnit,
				}
			}
			fmt.Fprintf(c.App.Writer, "%s; to enable the hooks, run: %s\n", why, strings.Join(cmds, " && "))
			return nil
		},
	}
}

func hookUninstallCommand() *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "remove the systemd units of the hooks",
		Description: `Disables and removes ckpt-shutdown.service and ckpt-boot.service, if ckpt
wrote them. It does not stop ckpt-shutdown.service: that would run the
shutdown hook. The unit stays active until shutdown, and a drop-in in
/run/systemd/system, gone at the next boot, empties its ExecStop= so that it
runs nothing then (the ckpt package's unit of the same name included).
Checkpoints in the store are not touched.`,
		Flags: []cli.Flag{unitDirFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("hook uninstall takes no arguments")
			}
			dir := c.String("unit-dir")
			var ours []string
			for _, name := range unitNames {
				path := filepath.Join(dir, name)
				switch yes, err := systemd.IsOurs(path); {
				case errors.Is(err, fs.ErrNotExist):
				case err != nil:
					return err
				case yes:
					ours = append(ours, name)
				default:
					printWarning(c.App.ErrWriter, "", hint.New("left "+path+": "+systemd.ErrNotOurs.Error(),
						"ckpt only removes units it wrote"))
				}
			}
			if len(ours) == 0 {
				fmt.Fprintf(c.App.Writer, "no ckpt units in %s\n", dir)
				return nil
			}

			live := systemdRunning() && filepath.Clean(dir) == defaultUnitDir
			if live {
				// Not "disable --now": stopping ckpt-shutdown.service runs
				// its ExecStop=, the shutdown hook, which would save the
				// containers now. The unit stays active until shutdown;
				// a runtime drop-in empties its ExecStop= (Disarm), as
				// systemd would otherwise load the package's unit of the
				// same name into it once ours is gone.
				if err := systemctl(c, append([]string{"disable"}, ours...)...); err != nil {
					return err
				}
			}
			removed, err := systemd.Uninstall(dir)
			for _, p := range removed {
				fmt.Fprintf(c.App.Writer, "removed %s\n", p)
			}
			if err != nil {
				return err
			}
			if live {
				if slices.Contains(ours, systemd.ShutdownUnit) {
					p, err := systemd.Disarm(runtimeUnitDir)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %s: %s stays active until shutdown, and runs nothing then\n", p, systemd.ShutdownUnit)
				}
				return systemctl(c, "daemon-reload")
			}
			cmd := "systemctl disable " + shellJoin(ours)
			if systemdRunning() {
				cmd += " && systemctl daemon-reload"
			}
			fmt.Fprintf(c.App.Writer, "if the hooks were enabled, also run: %s\n", cmd)
			return nil
		},
	}
}

// policyError reports a policy file that does not load.
func policyError(c *cli.Context, err error) error {
	const h = "fix the policy file (ckpt policy check FILE reports its problems), then install again"
	var errs policy.Errors
	if !errors.As(err, &errs) {
		return hint.Wrap(err, h)
	}
	for _, e := range errs {
		fmt.Fprintf(c.App.ErrWriter, "ckpt: error: %s\n", e)
	}
	fmt.Fprintf(c.App.ErrWriter, "ckpt: hint: %s\n", h)
	return errReported
}

// systemctl runs systemctl with args and says so.
func systemctl(c *cli.Context, args ...string) error {
	cmd := exec.CommandContext(c.Context, "systemctl", args...)
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	line := "systemctl " + shellJoin(args)
	if err := cmd.Run(); err != nil {
		return hint.Wrap(fmt.Errorf("%s: %w", line, err), "see its messages above; the unit files are in place, run it again by hand")
	}
	fmt.Fprintf(c.App.Writer, "ran %s\n", line)
	return nil
}

// shellJoin quotes words for a POSIX shell where needed and joins them.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@=%") == "" {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
