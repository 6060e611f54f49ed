package concert

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Worked Concert V2 frames, as hex in testdata.
// Each request is built with Request.Encode and Frame and must equal its
// golden bytes; each golden is read back with ReadFrame and decoded with
// ParseRequest or ParseAnswer to the fields the frame was built from.

func TestGoldenRequests(t *testing.T) {
	ep := func(amount int64) Request {
		return Request{POS: 1, Amount: amount, FullAnswer: true, Type: Debit, Currency: "978"}
	}
	for _, c := range []struct {
		file string
		req  Request
		lrc  byte
		size int
	}{
		{"ep_debit_request_1250.hex", ep(1250), 0x01, 37},
		{"e_request_1999.hex", Request{POS: 1, Amount: 1999, Type: Debit, Currency: "978", ProtocolE: true}, 0x0D, 29},
		{"ep_debit_request_100.hex", ep(100), ACK, 37},
		{"ep_debit_request_101.hex", ep(101), 0x07, 37},
		{"ep_debit_request_102.hex", ep(102), EOT, 37},
		{"ep_debit_request_103.hex", ep(103), ENQ, 37},
		{"ep_debit_request_104.hex", ep(104), STX, 37},
		{"ep_debit_request_105.hex", ep(105), ETX, 37},
	} {
		t.Run(c.file, func(t *testing.T) {
			want := golden(t, c.file)
			if len(want) != c.size || want[len(want)-1] != c.lrc {
				t.Fatalf("golden file is %d bytes with LRC 0x%02X, the table above says %d and 0x%02X", len(want), want[len(want)-1], c.size, c.lrc)
			}
			data, err := c.req.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if got := LRC(data); got != c.lrc {
				t.Errorf("LRC = 0x%02X, want 0x%02X", got, c.lrc)
			}
			if got := Frame(data); !bytes.Equal(got, want) {
				t.Errorf("frame\n got % x\nwant % x", got, want)
			}
			// Read back with a control byte after the frame: the LRC is the
			// one byte after ETX, whatever its value, and nothing more.
			r := bufio.NewReader(bytes.NewReader(append(bytes.Clone(want), EOT)))
			got, skipped, err := ReadFrame(r)
			if err != nil || len(skipped) != 0 || !bytes.Equal(got, want[1:len(want)-2]) {
				t.Fatalf("ReadFrame = %q, %q, %v", got, skipped, err)
			}
			if next, _ := r.ReadByte(); next != EOT {
				t.Errorf("ReadFrame consumed past the LRC: next byte 0x%02X", next)
			}
			q, err := ParseRequest(got)
			if err != nil {
				t.Fatal(err)
			}
			if q != c.req {
				t.Errorf("ParseRequest = %+v, want %+v", q, c.req)
			}
		})
	}
}

func TestGoldenAnswers(t *testing.T) {
	for _, c := range []struct {
		file string
		want Answer
		full bool
		lrc  byte
		size int
	}{
		{"full_answer_approved.hex", Answer{POS: 1, Status: '0', Amount: 1250, Mode: '1', Report: "497010XXXXXX1234",
			Currency: "978", Private: "0000000000"}, true, 0x1C, 83},
		{"short_answer_refused.hex", Answer{POS: 1, Status: '7', Amount: 1250, Mode: '1', Currency: "978",
			Private: strings.Repeat(" ", 10)}, false, 0x34, 28},
	} {
		t.Run(c.file, func(t *testing.T) {
			want := golden(t, c.file)
			if len(want) != c.size || want[len(want)-1] != c.lrc {
				t.Fatalf("golden file is %d bytes with LRC 0x%02X, the table above says %d and 0x%02X", len(want), want[len(want)-1], c.size, c.lrc)
			}
			data, skipped, err := read(want)
			if err != nil || len(skipped) != 0 {
				t.Fatal(err, skipped)
			}
			if LRC(data) != c.lrc {
				t.Errorf("LRC = 0x%02X", LRC(data))
			}
			a, err := ParseAnswer(data)
			if err != nil {
				t.Fatal(err)
			}
			if a != c.want {
				t.Errorf("ParseAnswer = %+v, want %+v", a, c.want)
			}
			enc, err := c.want.Encode(c.full)
			if err != nil {
				t.Fatal(err)
			}
			if f := Frame(enc); !bytes.Equal(f, want) {
				t.Errorf("Encode+Frame\n got % x\nwant % x", f, want)
			}
		})
	}
}

// TestLRCEdgeAnswers reads answers whose LRC is a control byte: the
// reader must take it as the LRC and stop there.
func TestLRCEdgeAnswers(t *testing.T) {
	found := map[byte]bool{}
	for i := int64(0); i < 5000 && len(found) < 6; i++ {
		amount, priv := 1+i%100, "00000000A"+string(rune('0'+i/100%43))
		a := Answer{POS: 1, Status: '0', Amount: amount, Mode: '1', Report: "497010XXXXXX1234", Currency: "978", Private: priv}
		data, err := a.Encode(true)
		if err != nil {
			t.Fatal(err)
		}
		l := LRC(data)
		if found[l] || (l != STX && l != ETX && l != EOT && l != ENQ && l != ACK && l != NAK) {
			continue
		}
		found[l] = true
		t.Run(fmt.Sprintf("amount %d private %s LRC 0x%02X", amount, priv, l), func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(append(Frame(data), EOT)))
			got, _, err := ReadFrame(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadFrame = %q, %v", got, err)
			}
			if next, _ := r.ReadByte(); next != EOT {
				t.Errorf("next byte 0x%02X, want EOT", next)
			}
		})
	}
	if len(found) < 6 {
		t.Errorf("only %d control-byte LRCs found among full answers: %v", len(found), found)
	}
}
