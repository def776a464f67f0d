package zstdbody

import (
	"bytes"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestLevel(t *testing.T) {
	for format, want := range map[string]zstd.EncoderLevel{
		"arrow": zstd.SpeedDefault, "csv": zstd.SpeedFastest, "ndjson": zstd.SpeedFastest,
		"json": zstd.SpeedFastest, "xml": zstd.SpeedFastest, "": zstd.SpeedFastest,
	} {
		if got := Level(format); got != want {
			t.Errorf("Level(%q) = %v, want %v", format, got, want)
		}
	}
}

// TestEncodeRoundTrip encodes at both levels from several goroutines and
// decodes every frame back.
func TestEncodeRoundTrip(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		format := []string{"arrow", "csv"}[i%2]
		body := bytes.Repeat([]byte{byte(i), 'x', 'y', byte(i * 7)}, 10000+i)
		wg.Go(func() {
			frame := Encode(format, body)
			if len(frame) >= len(body) {
				t.Errorf("%s body %d: frame of %d bytes from %d", format, i, len(frame), len(body))
			}
			got, err := dec.DecodeAll(frame, nil)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s body %d: decoded %d bytes (err %v), want the %d sent", format, i, len(got), err, len(body))
			}
		})
	}
	wg.Wait()
}
