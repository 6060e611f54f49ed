package link

import "testing"

func TestStatusSummary(t *testing.T) {
	for _, c := range []struct {
		s    Status
		want string
	}{
		{Status{Connected: true, AckedSeq: 10, JournalSeq: 10}, "up to date"},
		{Status{Connected: true, AckedSeq: 9, JournalSeq: 10}, "1 event behind"},
		{Status{Connected: true, AckedSeq: 0, JournalSeq: 42}, "42 events behind"},
		{Status{Connected: false, AckedSeq: 10, JournalSeq: 10}, "not connected (retrying)"},
	} {
		if got := c.s.Summary(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.s, got, c.want)
		}
	}
}
