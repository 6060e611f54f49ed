package ecr

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testdata = "testdata"

// configGolden is what the golden file records of a parsed config.txt:
// the settings as /config shows them (masked), the secrets' real values
// (test data), and the warnings.
type configGolden struct {
	Settings  ConfigTxt         `json:"settings"`
	Revealed  map[string]string `json:"revealed"`
	Warnings  []string          `json:"warnings"`
	LogRecord string            `json:"logRecord"`
}

func TestConfigTxtGolden(t *testing.T) {
	s, warns, err := LoadConfig(filepath.Join(testdata, "config.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("config", "settings", fmt.Sprintf("%+v", s), "pwd", s.TerminalManagerPassword)
	for i := range warns {
		warns[i] = filepath.Base(warns[i])
	}
	g := configGolden{Settings: s, Warnings: warns, LogRecord: strings.TrimSpace(logBuf.String()),
		Revealed: map[string]string{"TERMINAL_MANAGER_PWD": s.TerminalManagerPassword.Reveal(), "HIPAY_PWD": s.HiPayPassword.Reveal()}}
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join(testdata, "config.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readFile(t, path)
	if !bytes.Equal(got, want) {
		t.Errorf("parsed config.txt differs from %s (go test -update to rewrite):\n%s", path, got)
	}
	// The points the golden file pins, spelt out.
	if s.SerialPort != "/dev/ttyUSB0" || s.LocalPort != 8081 || s.TerminalManagerLogin != "log" ||
		s.TerminalManagerPassword.Reveal() != "p#ss word " || s.HiPayPassword.Reveal() != "Test_XXXXXXXXXXXXXXXXXXXXXXXX" ||
		!s.HasUpdateTime || s.UpdateTime != (TimeOfDay{4, 0}) {
		t.Errorf("settings %+v", s)
	}
	if strings.Contains(g.LogRecord, "p#ss") || strings.Contains(g.LogRecord, "Test_X") {
		t.Errorf("a password reached the log: %s", g.LogRecord)
	}
}

func TestConfigTxtWindowsFile(t *testing.T) {
	in := "\xEF\xBB\xBFSERIAL_PORT=COM8\r\nLOCAL_PORT=8080\r\nUPDATE_TIME=4:30\r\n"
	s, warns, err := ParseConfig(strings.NewReader(in), "config.txt")
	if err != nil || len(warns) != 0 {
		t.Fatalf("%v %v", err, warns)
	}
	if s.SerialPort != "COM8" || s.LocalPort != 8080 || s.UpdateTime.String() != "04:30" {
		t.Errorf("%+v", s)
	}
}

func TestConfigTxtErrorsNameTheLine(t *testing.T) {
	_, _, err := LoadConfig(filepath.Join(testdata, "config-bad.txt"))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 4 || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "config-bad.txt:4: LOCAL_PORT=\"80a80\" is not a TCP port") {
		t.Fatalf("error %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"SERIAL_PORT=COM8\nTERMINAL_MANAGER_PWD\n", "x:2: not KEY=VALUE"},
		{"=value\n", "x:1: no key before '='"},
		{"LOCAL_PORT=0\n", "x:1: LOCAL_PORT=\"0\" is not a TCP port"},
		{"LOCAL_PORT=65536\n", "is not a TCP port"},
		{"LOCAL_PORT=-1\n", "is not a TCP port"},
		{"UPDATE_TIME=24:00\n", "x:1: UPDATE_TIME: \"24:00\" is not a time"},
		{"UPDATE_TIME=4h\n", "is not a time in hh:mm form"},
		{"HIPAY_PWD=\"abc\n", "x:1: HIPAY_PWD: value \"abc has no closing \""},
		{"HIPAY_PWD=\"a\"b\"\n", "unescaped"},
		{"# ok\n\nSERIAL PORT=COM8\n", "x:3: \"SERIAL PORT\" is not a key"},
		{"SERIAL_PORT=\xff\n", "x:1: not valid UTF-8"},
		{"SERIAL_PORT=" + strings.Repeat("a", 5000) + "\n", "x:1: line longer than"},
	} {
		_, _, err := ParseConfig(strings.NewReader(tc.in), "x")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
	// The line without '=' is not quoted: it may be a password pasted alone.
	_, _, err = ParseConfig(strings.NewReader("hunter2\n"), "x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v quotes the line", err)
	}
}

func TestConfigTxtEscapesAndDuplicates(t *testing.T) {
	s, warns, err := ParseConfig(strings.NewReader(`HIPAY_PWD="a\"b\\c"`+"\nSERIAL_PORT=COM1\nSERIAL_PORT=COM2\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if s.HiPayPassword.Reveal() != `a"b\c` || s.SerialPort != "COM2" {
		t.Errorf("%+v", s)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "x:3: SERIAL_PORT given again (first on line 2)") {
		t.Errorf("warnings %q", warns)
	}
}

// FuzzParseConfig checks config.txt parsing never panics, and that what
// it accepts has a listen port that is a port.
func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"config.txt", "config-bad.txt"} {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\ufeffLOCAL_PORT = \"8082\"\r\nHIPAY_PWD='a#b'\n; comment\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _, err := ParseConfig(bytes.NewReader(b), "config.txt")
		if err != nil {
			return
		}
		if s.LocalPort < 0 || s.LocalPort > 65535 {
			t.Fatalf("LOCAL_PORT %d accepted", s.LocalPort)
		}
	})
}
