package ecr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The API's rules, named by their flags.
func TestSettingsRules(t *testing.T) {
	for _, c := range []struct {
		s    Settings
		want string
	}{
		{Settings{Listen: "127.0.0.1:0", Login: "kiosk"}, "needs a login and a password"},
		{Settings{Listen: "127.0.0.1:0", Password: "pw"}, "needs a login and a password"},
		{Settings{Listen: "8081", Login: "kiosk", Password: "pw"}, `--terminal-api-listen "8081"`},
		{Settings{Listen: "127.0.0.1:http", Login: "kiosk", Password: "pw"}, `port "http" is not 0-65535`},
		{Settings{Listen: "127.0.0.1:65536", Login: "kiosk", Password: "pw"}, `port "65536" is not 0-65535`},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
		if _, err := c.s.Open(nil, nil, nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open %+v: %v, want %q", c.s, err, c.want)
		}
	}
	if err := (Settings{Listen: "127.0.0.1:8081", Login: "kiosk", Password: "pw"}).Validate(); err != nil {
		t.Error(err)
	}
}

// config.txt fills only what the operator left unset.
func TestSettingsLoadConfigTxt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.txt")
	os.WriteFile(path, []byte("SERIAL_PORT=/dev/ttyUSB0\r\nLOCAL_PORT=8082\r\nTERMINAL_MANAGER_LOGIN=kiosk\r\nTERMINAL_MANAGER_PWD=pw\r\nHIPAY_LOGIN=shop\r\nHIPAY_PWD=n0t1fy\r\n"), 0o600)
	s := Settings{ConfigTxt: path, Login: "mine"}
	port, _, err := s.LoadConfigTxt()
	if err != nil {
		t.Fatal(err)
	}
	if port != "/dev/ttyUSB0" || s.Listen != "127.0.0.1:8082" || s.Login != "mine" || s.Password != "pw" || s.NotifyLogin != "shop" || s.NotifyPassword != "n0t1fy" || s.File.LocalPort != 8082 {
		t.Errorf("port %q, settings %+v", port, s)
	}
	s = Settings{ConfigTxt: path, Listen: "127.0.0.1:9000"}
	if _, _, err := s.LoadConfigTxt(); err != nil || s.Listen != "127.0.0.1:9000" {
		t.Errorf("--terminal-api-listen given: %q %v", s.Listen, err)
	}
	s = Settings{ConfigTxt: filepath.Join(t.TempDir(), "none.txt")}
	if _, _, err := s.LoadConfigTxt(); err == nil {
		t.Error("a missing config.txt was accepted")
	}
}
