package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// wireFrames reads every frame until the end or an error.
func wireFrames(t testing.TB, r io.Reader, max int) ([]string, error) {
	t.Helper()
	fr := NewFrameReader(r, max)
	var out []string
	for {
		f, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(f))
	}
}

func TestFrameReader(t *testing.T) {
	a := `{"payload":{"type":"ack","s":"a}b{c\"d\\"},"signature":"x"}`
	b := `{"payload":{"type":"transaction_result","m":"line\nbreak \\\" }"},"signature":"y"}`
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"newline-separated frames", a + "\n" + b + "\n", []string{a, b}},
		{"frames back to back", a + b + a, []string{a, b, a}},
		{"CRLF and blank lines between frames", "\r\n" + a + "\r\n\r\n  \t" + b + "\r\n", []string{a, b}},
		{"a last frame without newline", a + "\n" + b, []string{a, b}},
		{"braces, quotes and escaped newlines inside strings", `{"s":"}{\n\"}"}` + "\n", []string{`{"s":"}{\n\"}"}`}},
		{"junk between objects", a + " garbage " + b + "\nmore junk\n", []string{a, "garbage", b, "more junk"}},
		{"junk before an object on the same line", "junk" + a, []string{"junk", a}},
		{"an unterminated object followed by a good line", `{"payload":{"type":"ack"` + "\n" + a + "\n", []string{`{"payload":{"type":"ack"`, a}},
		{"an unterminated string followed by a good line", `{"s":"abc` + "\r\n" + a + "\n", []string{`{"s":"abc`, a}},
		{"an escape right before a newline", `{"s":"\` + "\n" + a, []string{`{"s":"\`, a}},
		{"a stray closing brace", "}\n" + a, []string{"}", a}},
		{"an array is junk up to the object inside", `[{"a":1}]`, []string{"[", `{"a":1}`, "]"}},
		{"a partial frame at the end of the stream", a + `{"pay`, []string{a, `{"pay`}},
		{"only whitespace", " \r\n\t\n", nil},
		{"nothing", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				how string
				rd  io.Reader
			}{
				{"in one read", strings.NewReader(tc.in)},
				{"one byte per read", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"with data and EOF together", iotest.DataErrReader(strings.NewReader(tc.in))},
				{"with empty reads", &wireStutter{data: []byte(tc.in)}},
			} {
				got, err := wireFrames(t, r.rd, 0)
				if err != nil {
					t.Fatalf("%s: %v", r.how, err)
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
					t.Fatalf("%s:\n got %q\nwant %q", r.how, got, tc.want)
				}
			}
		})
	}
}

// wireStutter returns one byte, then nothing, alternately.
type wireStutter struct {
	data []byte
	odd  bool
}

func (s *wireStutter) Read(p []byte) (int, error) {
	if s.odd = !s.odd; s.odd || len(p) == 0 {
		return 0, nil
	}
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	p[0] = s.data[0]
	s.data = s.data[1:]
	return 1, nil
}

func TestFrameReaderLimits(t *testing.T) {
	t.Run("a frame of exactly the cap passes", func(t *testing.T) {
		f := `{"s":"` + strings.Repeat("a", 100-8) + `"}`
		got, err := wireFrames(t, strings.NewReader(f+f), 100)
		if err != nil || len(got) != 2 {
			t.Fatalf("got %d frames, %v", len(got), err)
		}
	})
	for _, tc := range []struct{ name, in string }{
		{"an oversized frame", `{"s":"` + strings.Repeat("a", 200) + `"}` + "\n"},
		{"an oversized frame that never ends", `{"s":"` + strings.Repeat("a", 5000)},
		{"an oversized frame that ends in the same read", strings.Repeat(" ", 50) + `{"s":"` + strings.Repeat("a", 100) + `"}`},
		{"oversized junk", strings.Repeat("x", 5000)},
		{"an oversized unterminated line", `{"s":` + strings.Repeat("1", 150) + "\n{}"},
	} {
		t.Run(tc.name+" is too large and ends the reader", func(t *testing.T) {
			for _, rd := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				fr := NewFrameReader(rd, 100)
				var err error
				for range 10 {
					if _, err = fr.Next(); err != nil {
						break
					}
				}
				if !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("Next: %v, want ErrFrameTooLarge", err)
				}
				if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("Next after the error: %v, want ErrFrameTooLarge again", err)
				}
			}
		})
	}
	t.Run("the buffer stays near the cap on an endless stream", func(t *testing.T) {
		fr := NewFrameReader(io.MultiReader(strings.NewReader(`{"s":"`), wireZeros{}), 1000)
		if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("Next: %v", err)
		}
		if cap(fr.buf) > 1001 {
			t.Fatalf("buffer grew to %d bytes", cap(fr.buf))
		}
	})
	t.Run("a read error is returned after the frames before it", func(t *testing.T) {
		boom := errors.New("connection reset")
		rd := io.MultiReader(strings.NewReader(`{"a":1}{"b":`), iotest.ErrReader(boom))
		fr := NewFrameReader(rd, 0)
		var frames []string
		var err error
		for err == nil {
			var f []byte
			if f, err = fr.Next(); err == nil {
				frames = append(frames, string(f))
			}
		}
		if !errors.Is(err, boom) || len(frames) != 2 {
			t.Fatalf("frames %q, error %v", frames, err)
		}
	})
}

// wireZeros is an endless stream of 'a'.
type wireZeros struct{}

func (wireZeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func FuzzFrameReader(f *testing.F) {
	for _, g := range wireGoldens {
		golden := wireReadGolden(f, g.file)
		f.Add(append(append(golden, '\n'), golden...), uint8(7))
		f.Add(append(append(golden, golden...), "junk\r\n"...), uint8(1))
	}
	f.Add([]byte(`{"s":"\"}{\\"}`+"\n"+`{"a`), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const max = 300
		whole, errWhole := wireFrames(t, bytes.NewReader(data), max)
		split, errSplit := wireFrames(t, &wireChunks{data: data, n: int(chunk%16) + 1}, max)
		for _, fs := range [][]string{whole, split} {
			for _, fr := range fs {
				if len(fr) > max || len(fr) == 0 || isSpace(fr[0]) {
					t.Fatalf("bad frame %q", fr)
				}
			}
		}
		if (errWhole == nil) != (errSplit == nil) || strings.Join(whole, "\x00") != strings.Join(split, "\x00") {
			t.Fatalf("frames depend on read sizes:\n%q %v\n%q %v", whole, errWhole, split, errSplit)
		}
	})
}

// wireChunks returns n bytes per read.
type wireChunks struct {
	data []byte
	n    int
}

func (c *wireChunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}
