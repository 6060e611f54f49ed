package main

import (
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The demo drives M-Pesa end to end through the real binary in line
// mode: item 9, the sandbox's test number, KES 150; the fake Daraja
// prompts, calls back, and the console prints an approved RESULT line
// with the M-Pesa receipt. A phone ending 1032 is cancelled by the
// customer. Phone numbers are shown masked.
func TestMPesaDemoPlain(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--plain")
	cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+dir, "PAYDESK_LOG="+filepath.Join(dir, "paydesk.log"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lines
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out.waitFor(t, regexp.MustCompile(`Select option`))
	io.WriteString(stdin, "9\n0708 374 149\n150\n")
	id := out.waitFor(t, regexp.MustCompile(`Transaction ID: (PD[0-9A-Z]{8})`))[1]
	waitLong(t, &out, regexp.MustCompile(`RESULT `+id+` approved 150\.00 pos_txn=[0-9A-Z]{10}`))

	io.WriteString(stdin, "9\n+254 712 341 032\n20\n")
	waitLong(t, &out, regexp.MustCompile(`RESULT PD[0-9A-Z]{8} cancelled 20\.00 reason="the customer cancelled the prompt"`))

	io.WriteString(stdin, "9\n0812345678\n")
	out.waitFor(t, regexp.MustCompile(`Enter amount \(KES`))
	io.WriteString(stdin, "10\n")
	out.waitFor(t, regexp.MustCompile(`ERROR phone number refused: not a Kenyan mobile number`))
	io.WriteString(stdin, "7\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("paydesk: %v\n%s", err, out.String())
	}
	for _, full := range []string{"0708374149", "254708374149", "712341032", "0708 374 149"} {
		if strings.Contains(strings.ReplaceAll(out.String(), "Customer's phone", ""), full) {
			t.Errorf("the full phone number %s reached the console:\n%s", full, out.String())
		}
	}
}
