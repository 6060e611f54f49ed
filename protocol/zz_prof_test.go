package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

func BenchmarkZZFrames(b *testing.B) {
	stream := wireBatch(b, wireNow, 0, 4096)
	src := &wireSource{}
	fr := NewFrameReader(src, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%4096 == 0 {
			src.data = stream
		}
		if _, err := fr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZHMAC(b *testing.B) {
	mac := hmac.New(sha256.New, wireSecret)
	data := make([]byte, 240)
	var sum [32]byte
	for b.Loop() {
		mac.Reset()
		mac.Write(data)
		mac.Sum(sum[:0])
	}
}

func BenchmarkZZNonce(b *testing.B) {
	s := NewNonceStore(0, 0)
	t0 := wireNow
	for i := 0; i < b.N; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		k := nonceKey{uint64(i) * 0x9e3779b97f4a7c15, uint64(i)}
		if err := s.use(k, now, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZParse(b *testing.B) {
	frame := wireBatch(b, wireNow, 0, 1)
	frame = frame[:len(frame)-1]
	v := NewVerifier(wireSecret, nil, VerifierOptions{})
	for b.Loop() {
		if _, err := v.parse(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZBuild(b *testing.B) {
	frame := wireBatch(b, wireNow, 0, 1)
	frame = frame[:len(frame)-1]
	v := NewVerifier(wireSecret, nil, VerifierOptions{})
	parts, _ := v.parse(frame)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildMessage(frame, parts.p0, parts.p1, &v.fields, 1); err != nil {
			b.Fatal(err)
		}
	}
}
