package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// fileConfig is the optional config file: TOML with top-level settings for
// the console and one table per rail. Every key names a flag, the table's
// name joined to the key with a dash:
//
//	kiosk-id = "KIOSK007"
//	[terminal]
//	port = "/dev/ttyUSB0"      # the same as --terminal-port
//
// Flags and PAYDESK_* variables win over the file. Secrets have no flag;
// they come from the environment, a file named by an environment variable,
// or this file (keep it readable by paydesk's user only).
type fileConfig struct {
	path   string
	values map[string]string // flattened: "terminal-port" → "/dev/ttyUSB0"
}

// defaultConfigPath is where paydesk looks for its config file when
// --config is not given: paydesk/paydesk.toml in the user's config
// directory.
func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "paydesk", "paydesk.toml")
}

// loadFileConfig reads path. A missing file is an error only when the user
// named it (required); otherwise it is an empty configuration.
func loadFileConfig(path string, required bool) (*fileConfig, error) {
	fc := &fileConfig{path: path, values: map[string]string{}}
	if path == "" {
		return fc, nil
	}
	var raw map[string]any
	_, err := toml.DecodeFile(path, &raw)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !required:
		return fc, nil
	case err != nil:
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := flatten("", raw, fc.values); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return fc, nil
}

func flatten(prefix string, m map[string]any, out map[string]string) error {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "-" + k
		}
		switch v := v.(type) {
		case map[string]any:
			if err := flatten(name, v, out); err != nil {
				return err
			}
		case string:
			out[name] = v
		case bool:
			out[name] = strconv.FormatBool(v)
		case int64:
			out[name] = strconv.FormatInt(v, 10)
		case float64:
			out[name] = strconv.FormatFloat(v, 'f', -1, 64)
		case []any:
			parts := make([]string, 0, len(v))
			for _, e := range v {
				parts = append(parts, fmt.Sprint(e))
			}
			out[name] = strings.Join(parts, ",")
		default:
			return fmt.Errorf("%s: unsupported value %v (use a string, number, boolean or list)", name, v)
		}
	}
	return nil
}

// envName is the PAYDESK_* variable of a flag or setting: kiosk-id →
// PAYDESK_KIOSK_ID.
func envName(setting string) string {
	return "PAYDESK_" + strings.ToUpper(strings.ReplaceAll(setting, "-", "_"))
}

// apply sets, from the file, every flag that neither the command line nor
// the environment set. Keys that are neither a flag nor one of secrets are
// refused, so a typo is not silently ignored.
func (fc *fileConfig) apply(fs *flag.FlagSet, secrets ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := map[string]bool{}
	for _, s := range secrets {
		known[s] = true
	}
	keys := make([]string, 0, len(fc.values))
	for k := range fc.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var unknown []string
	for _, k := range keys {
		if known[k] || k == "config" {
			continue
		}
		if fs.Lookup(k) == nil {
			unknown = append(unknown, k)
			continue
		}
		if set[k] || os.Getenv(envName(k)) != "" {
			continue
		}
		if err := fs.Set(k, fc.values[k]); err != nil {
			return fmt.Errorf("config file %s: %s: %w", fc.path, k, err)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("config file %s: unknown settings %s (see 'paydesk -h' for the flags; a table's keys are its flags without the prefix)",
			fc.path, strings.Join(unknown, ", "))
	}
	return nil
}

// secret returns a secret setting: PAYDESK_<NAME>, else the contents of the
// file named by PAYDESK_<NAME>_FILE, else the config file's value. A secret
// never has a flag: flags show in the process list.
func (fc *fileConfig) secret(name string) (string, error) {
	env := envName(name)
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if path := os.Getenv(env + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read %s_FILE: %w", env, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if fc != nil {
		return fc.values[name], nil
	}
	return "", nil
}
