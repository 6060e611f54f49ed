package mpesa

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"paydesk/mpesa/daraja"
)

// PathSecretFile is the name of the file, beside the journal, that keeps
// the callback path secret when none is configured.
const PathSecretFile = "mpesa-path-secret"

// LoadPathSecret returns the callback path secret kept in file, making a
// new one (NewPathSecret) and keeping it there, mode 0600, when the file
// does not exist yet; created says which. The callback URLs sent with
// each push and registered for C2B then stay the same across restarts.
// A file others may read, or one whose content is not a usable path
// segment, is refused.
func LoadPathSecret(file string) (secret string, created bool, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return createPathSecret(file)
	}
	if err != nil {
		return "", false, fmt.Errorf("M-Pesa path secret: %w", err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", false, fmt.Errorf("M-Pesa path secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", false, fmt.Errorf("M-Pesa path secret %s: mode %v lets others read it; chmod 600 it", file, fi.Mode().Perm())
	}
	secret = strings.TrimSpace(string(b))
	if err := checkPathSecret(secret); err != nil {
		return "", false, fmt.Errorf("M-Pesa path secret %s: %w", file, err)
	}
	return secret, false, nil
}

func createPathSecret(file string) (string, bool, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", false, fmt.Errorf("M-Pesa path secret: %w", err)
	}
	secret := NewPathSecret()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another start made it first: use theirs.
		return LoadPathSecret(file)
	}
	if err != nil {
		return "", false, fmt.Errorf("M-Pesa path secret: %w", err)
	}
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return "", false, fmt.Errorf("M-Pesa path secret %s: %w", file, err)
	}
	return secret, true, nil
}

// CheckPathSecret refuses a path secret too short to be unguessable, or
// one that is not a single URL path segment Daraja accepts (the hub's
// path secret is checked as a kiosk's is).
func CheckPathSecret(s string) error { return checkPathSecret(s) }

// checkPathSecret refuses a path secret too short to be unguessable, or
// one that is not a single URL path segment Daraja accepts.
func checkPathSecret(s string) error {
	if len(s) < 12 {
		return errors.New("at least 12 characters are needed")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("only letters, digits, '-' and '_' may be used, not %q", c)
		}
	}
	// Checked here rather than by daraja.CheckCallbackURL, whose error would
	// repeat the secret.
	if w, ok := daraja.BannedURLWord(s); ok {
		return fmt.Errorf("it contains %q, which Daraja refuses in URLs", w)
	}
	return nil
}
