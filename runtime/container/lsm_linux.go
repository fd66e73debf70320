package container

import (
	"errors"
	"fmt"
	"os"
)

// Linux security modules. berth applies what the spec asks for and fails
// when it cannot, as runc does: a label or profile is never silently
// dropped, so a host without the LSM refuses the container.

// selinuxEnabled reports whether SELinux is active on this host.
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// applyAppArmor asks the kernel to confine the next exec with profile.
func applyAppArmor(profile string) error {
	if profile == "" {
		return nil
	}
	if err := writeExecAttr("apparmor", "exec "+profile); err != nil {
		return fmt.Errorf("unable to apply apparmor profile: apparmor failed to apply profile: %w", err)
	}
	return nil
}

// applySELinuxLabel sets the SELinux context of the next exec.
func applySELinuxLabel(label string) error {
	if label == "" {
		return nil
	}
	if err := writeExecAttr("selinux", label); err != nil {
		return fmt.Errorf("unable to apply selinux label %q: %w", label, err)
	}
	return nil
}

// writeExecAttr writes the LSM's exec attribute of the calling thread,
// using the per-LSM directory when the kernel has it.
func writeExecAttr(lsm, value string) error {
	paths := []string{"/proc/thread-self/attr/" + lsm + "/exec", "/proc/thread-self/attr/exec"}
	var err error
	for _, p := range paths {
		var f *os.File
		f, err = os.OpenFile(p, os.O_WRONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = f.WriteString(value)
		f.Close()
		return err
	}
	return err
}

// mountLabelData adds the SELinux context option to a mount's data.
func mountLabelData(data, label string) string {
	if label == "" {
		return data
	}
	opt := fmt.Sprintf("context=%q", label)
	if data == "" {
		return opt
	}
	return data + "," + opt
}
