package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

type recorded struct {
	messages, pings []string
}

func (r *recorded) message(head []byte) { r.messages = append(r.messages, string(head)) }
func (r *recorded) ping(p []byte)       { r.pings = append(r.pings, string(p)) }

func serverFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// Whatever the read boundaries, the scanner reports every message's head
// and every ping once, in order, and then the close.
func TestFrameScanAcrossReadBoundaries(t *testing.T) {
	var stream []byte
	var want recorded
	for i, size := range []int{0, 20, 63, 64, 125, 126, 300, 65535, 65536, 200_000} {
		p := bytes.Repeat([]byte{'x'}, size)
		copy(p, fmt.Sprintf(`{"type":"killmail","event_id":%d`, i+1))
		stream = append(stream, serverFrame(0x1, p)...)
		want.messages = append(want.messages, string(p[:min(size, scanHead)]))
		if i%3 == 0 {
			ping := fmt.Sprintf("ping %d", i)
			stream = append(stream, serverFrame(0x9, []byte(ping))...)
			want.pings = append(want.pings, ping)
		}
		stream = append(stream, serverFrame(0xA, []byte("pong"))...) // ignored
	}
	stream = append(stream, serverFrame(0x8, []byte{0x03, 0xe8})...)

	for _, chunk := range []int{1, 2, 3, 5, 13, 64, 139, 1000, 4096, 70_000, len(stream)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			var f frameScan
			var got recorded
			var scratch []byte
			closed := false
			for off := 0; off < len(stream); off += chunk {
				if closed {
					t.Fatalf("bytes parsed after the close frame, at %d", off)
				}
				var err error
				closed, err = f.feed(stream[off:min(off+chunk, len(stream))], &scratch, &got)
				if err != nil {
					t.Fatal(err)
				}
			}
			if !closed {
				t.Fatal("the close frame went unnoticed")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
			for i, m := range got.messages[2:] { // the first two are too short to hold one
				if id := eventID([]byte(m)); id != uint64(i+3) {
					t.Fatalf("message %d has event_id %d", i+2, id)
				}
			}
		})
	}
}

func TestFrameScanRefusesMaskedAndOversizedControlFrames(t *testing.T) {
	for name, b := range map[string][]byte{
		"masked":    {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"long ping": append([]byte{0x89, 126, 0, 200}, make([]byte, 200)...),
	} {
		var f frameScan
		var scratch []byte
		if _, err := f.feed(b, &scratch, &recorded{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
