package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"paydesk/hub/pgtemp/pgtest"
)

// TestHubOperators adds, lists and removes dashboard operators with 'hub
// user', the password on stdin, then logs in to a running 'paydesk hub'
// as one and fetches the day's CSV, which is 'hub report --csv'.
func TestHubOperators(t *testing.T) {
	cl := pgtest.Own(t)
	dsn := cl.DSN("postgres")
	ctx := context.Background()
	hubCmd := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append([]string{"hub"}, args...), strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	const password = "a long enough password"
	if out, err := hubCmd(password+"\n", "user", "add", "ann", "--db", dsn); err != nil || !strings.Contains(out, "operator ann added") {
		t.Fatalf("user add: %q, %v", out, err)
	}
	if _, err := hubCmd("", "user", "add", "bob", "--db", dsn); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Fatalf("user add without a password: %v", err)
	}
	if _, err := hubCmd("short\n", "user", "add", "bob", "--db", dsn); err == nil || !strings.Contains(err.Error(), "10 to 72") {
		t.Fatalf("user add with a short password: %v", err)
	}
	if _, err := hubCmd(password+"\n", "user", "add", "ann", "--db", dsn); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("user add twice: %v", err)
	}
	if _, err := hubCmd("", "user", "add", "bob", "--password", "x", "--db", dsn); err == nil {
		t.Fatal("user add took a --password flag")
	}
	if out, err := hubCmd("", "user", "list", "--db", dsn); err != nil || !regexp.MustCompile(`OPERATOR +ADDED\nann +\d{4}-`).MatchString(out) {
		t.Fatalf("user list: %q, %v", out, err)
	}

	base := serveHub(t, dsn, "--tz", "UTC")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: time.Minute}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func(pw string) (int, string) {
		_, body := get("/login")
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
		if csrf == nil {
			t.Fatalf("no login form:\n%s", body)
		}
		resp, err := client.PostForm(base+"/login", url.Values{"csrf": {csrf[1]}, "name": {"ann"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := login(password); code != http.StatusOK || !strings.Contains(body, "<h1>Kiosks</h1>") {
		t.Fatalf("login: %d\n%s", code, body)
	}
	day := time.Now().UTC().Format("2006-01-02")
	code, csv := get("/totals.csv?day=" + day)
	report, err := hubCmd("", "report", "--csv", "--tz", "UTC", "--day", day, "--db", dsn)
	if code != http.StatusOK || err != nil || csv != report || !strings.HasPrefix(csv, "day,kiosk,rail,currency,status,count,amount\r\n") {
		t.Fatalf("dashboard CSV (%d):\n%q\nhub report --csv (%v):\n%q", code, csv, err, report)
	}

	// Removing ann ends her session.
	if out, err := hubCmd("", "user", "remove", "ann", "--db", dsn); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("user remove: %q, %v", out, err)
	}
	if _, body := get("/"); !strings.Contains(body, `action="/login"`) {
		t.Fatalf("a removed operator's session still opens the dashboard:\n%s", body)
	}
	if _, err := hubCmd("", "user", "remove", "ann", "--db", dsn); err == nil || !strings.Contains(err.Error(), "no such operator") {
		t.Fatalf("user remove twice: %v", err)
	}
	if out, _ := hubCmd("", "user", "list", "--db", dsn); !strings.Contains(out, "No operators") {
		t.Fatalf("user list after remove: %q", out)
	}
}
