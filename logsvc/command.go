package logsvc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Raft commands. Each Raft log entry carries one command; an append command
// carries a whole batch of Akutan entries (group commit).
//
//	append:    0x01, uvarint n, n × (uvarint len, bytes)
//	discard:   0x02, uvarint before
//	archived:  0x03, uvarint through
//	register:  0x04, uvarint len, id, uvarint len, grpc address
//	guarded:   0x05, uvarint since, uvarint k, k × (uvarint len, key),
//	           then the append command's body (uvarint n, entries)
const (
	cmdAppend   byte = 1
	cmdDiscard  byte = 2
	cmdArchived byte = 3
	cmdRegister byte = 4
	cmdGuarded  byte = 5
)

var errBadCommand = errors.New("malformed raft command")

type command struct {
	kind    byte
	entries [][]byte // cmdAppend, cmdGuarded
	since   uint64   // cmdGuarded
	keys    [][]byte // cmdGuarded
	index   uint64   // cmdDiscard, cmdArchived
	id      string   // cmdRegister
	addr    string   // cmdRegister
}

// encodeAppend encodes an append, guarded when keys is not empty.
func encodeAppend(entries [][]byte, since uint64, keys [][]byte) []byte {
	size := 2 + 2*binary.MaxVarintLen64
	for _, e := range entries {
		size += binary.MaxVarintLen64 + len(e)
	}
	for _, k := range keys {
		size += binary.MaxVarintLen64 + len(k)
	}
	b := make([]byte, 0, size)
	if len(keys) == 0 {
		b = append(b, cmdAppend)
	} else {
		b = append(b, cmdGuarded)
		b = binary.AppendUvarint(b, since)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

func encodeIndex(kind byte, index uint64) []byte {
	return binary.AppendUvarint([]byte{kind}, index)
}

func encodeRegister(id, addr string) []byte {
	b := []byte{cmdRegister}
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, uint64(len(addr)))
	return append(b, addr...)
}

func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 {
		return command{}, errBadCommand
	}
	c := command{kind: b[0]}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		l, ok := next()
		if !ok || l > uint64(len(b)) {
			return nil, false
		}
		v := b[:l]
		b = b[l:]
		return v, true
	}
	switch c.kind {
	case cmdGuarded, cmdAppend:
		if c.kind == cmdGuarded {
			var ok bool
			if c.since, ok = next(); !ok {
				return c, fmt.Errorf("%w: guard index", errBadCommand)
			}
			k, ok := next()
			if !ok || k == 0 || k > uint64(len(b)) {
				return c, fmt.Errorf("%w: guard count", errBadCommand)
			}
			c.keys = make([][]byte, k)
			for i := range c.keys {
				if c.keys[i], ok = bytesOf(); !ok {
					return c, fmt.Errorf("%w: guard key %d", errBadCommand, i)
				}
			}
		}
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return c, fmt.Errorf("%w: append count", errBadCommand)
		}
		c.entries = make([][]byte, n)
		for i := range c.entries {
			if c.entries[i], ok = bytesOf(); !ok {
				return c, fmt.Errorf("%w: append entry %d", errBadCommand, i)
			}
		}
	case cmdDiscard, cmdArchived:
		var ok bool
		if c.index, ok = next(); !ok {
			return c, fmt.Errorf("%w: index", errBadCommand)
		}
	case cmdRegister:
		id, ok1 := bytesOf()
		addr, ok2 := bytesOf()
		if !ok1 || !ok2 {
			return c, fmt.Errorf("%w: register", errBadCommand)
		}
		c.id, c.addr = string(id), string(addr)
	default:
		return c, fmt.Errorf("%w: unknown kind %d", errBadCommand, c.kind)
	}
	if len(b) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes", errBadCommand, len(b))
	}
	return c, nil
}
