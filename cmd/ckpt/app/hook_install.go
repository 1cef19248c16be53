package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/systemd"
	"github.com/ckpt-dev/ckpt/policy"
)

// unitNames are the hooks' units, the shutdown one first.
var unitNames = []string{systemd.ShutdownUnit, systemd.BootUnit}

// systemdRunning reports whether systemd is PID 1, that is whether
// systemctl can talk to a running manager. A variable for the tests.
var systemdRunning = func() bool {
	comm, err := os.ReadFile("/proc/1/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "systemd"
}

func unitDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "unit-dir", Usage: "systemd unit `DIR`", Value: systemd.DefaultDir}
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
ckpt did not write are never replaced.

When systemd is running and the units go into /etc/systemd/system, install
then reloads systemd, enables both units and starts ckpt-shutdown.service
(which does nothing until it is stopped at shutdown); --no-enable skips that.
See docs/hooks.md.`,
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

			live, isDefault := systemdRunning(), filepath.Clean(dir) == systemd.DefaultDir
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
					why = "not enabled (the units are not in " + systemd.DefaultDir + ")"
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
shutdown hook. Checkpoints in the store are not touched.`,
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

			live := systemdRunning() && filepath.Clean(dir) == systemd.DefaultDir
			if live {
				// Not "disable --now": stopping ckpt-shutdown.service runs
				// its ExecStop=, the shutdown hook, which would save the
				// containers now. Once its file is gone and systemd has
				// reloaded, the unit stays active until shutdown but has
				// no ExecStop= left to run.
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
