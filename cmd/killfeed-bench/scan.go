package main

import (
	"encoding/binary"
	"errors"
)

// scanHead is how many first bytes of a message the client looks at: its
// event_id is among them.
const scanHead = 64

// frameSink receives what frameScan finds.
type frameSink interface {
	// message gets the first scanHead bytes (or fewer) of a data message.
	message(head []byte)
	// ping gets a ping's payload, to answer.
	ping(payload []byte)
}

// frameScan parses one connection's server frames (RFC 6455) as its reads
// arrive, in place: a data message is reported by its first bytes and the
// rest skipped without a copy. Only a frame whose header, message head or
// control payload a read boundary cut is carried over: at most a 14-byte
// header and a 125-byte control payload.
type frameScan struct {
	carry []byte // bytes not parsed yet, put in front of the next read
	skip  int64  // payload bytes of the current message still to skip
}

var errBadFrame = errors.New("malformed server frame")

// feed parses b, the next bytes read. scratch is a buffer feed may use to
// join the carry to b. It reports whether a close frame came.
func (f *frameScan) feed(b []byte, scratch *[]byte, sink frameSink) (closed bool, err error) {
	if f.skip > 0 {
		k := min(f.skip, int64(len(b)))
		b, f.skip = b[k:], f.skip-k
	}
	if len(f.carry) > 0 {
		*scratch = append(append((*scratch)[:0], f.carry...), b...)
		b, f.carry = *scratch, f.carry[:0]
	}
	for len(b) > 0 {
		size, hl, ok := frameLen(b)
		if !ok {
			break
		}
		if b[1]&0x80 != 0 {
			return false, errBadFrame // a server never masks
		}
		avail := int64(len(b) - hl)
		if op := b[0] & 0x0f; op >= 0x8 { // control: needs its whole payload
			if size > 125 {
				return false, errBadFrame
			}
			if avail < size {
				break
			}
			switch op {
			case 0x8:
				return true, nil
			case 0x9:
				sink.ping(b[hl : hl+int(size)])
			}
			b = b[hl+int(size):]
			continue
		} else {
			need := min(size, scanHead)
			if avail < need {
				break
			}
			if op == 0x1 || op == 0x2 {
				sink.message(b[hl : hl+int(need)])
			}
			if avail < size {
				f.skip = size - avail
				return false, nil
			}
			b = b[hl+int(size):]
		}
	}
	f.carry = append(f.carry[:0], b...)
	return false, nil
}

// frameLen reads a frame header: the payload length and the header's
// length; ok is false when b does not hold the whole header yet.
func frameLen(b []byte) (size int64, hl int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	switch n := b[1] & 0x7f; n {
	case 126:
		if len(b) < 4 {
			return 0, 0, false
		}
		return int64(binary.BigEndian.Uint16(b[2:])), 4, true
	case 127:
		if len(b) < 10 {
			return 0, 0, false
		}
		return int64(binary.BigEndian.Uint64(b[2:]) & (1<<63 - 1)), 10, true
	default:
		return int64(n), 2, true
	}
}

// pongFrame is the masked pong (a zero mask) answering a ping's payload.
func pongFrame(p []byte) []byte {
	return append([]byte{0x8A, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
}

// closeReply is the masked close frame answering a server's close.
var closeReply = []byte{0x88, 0x80, 0, 0, 0, 0}
