package viewsvc

import "bytes"

// headMap maps fact bodies to heads for the head cache. It is an
// open-addressing table keyed by the body's hash (the fact filter's, so it
// is computed once per fact), with the bodies in one arena. Against a Go
// map[string]headState it allocates nothing per entry and holds no pointers
// for the garbage collector to scan, which matters at a million entries.
type headMap struct {
	slots []headSlot // a power of two; hash 0 marks an empty slot
	arena []byte
	n     int
}

type headSlot struct {
	hash uint64
	off  uint32
	len  uint32
	id   uint64
	live bool
}

func newHeadMap(capacity int) *headMap {
	size := 1024
	for size < capacity*2 {
		size *= 2
	}
	return &headMap{slots: make([]headSlot, size)}
}

// slotHash keeps 0 free to mark empty slots.
func slotHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// find returns the slot of body, or the empty slot where it would go.
func (m *headMap) find(h uint64, body []byte) *headSlot {
	mask := uint64(len(m.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.hash == 0 || (s.hash == h && bytes.Equal(m.arena[s.off:s.off+s.len], body)) {
			return s
		}
	}
}

func (m *headMap) get(h uint64, body []byte) (headState, bool) {
	if m == nil || m.n == 0 {
		return headState{}, false
	}
	s := m.find(slotHash(h), body)
	if s.hash == 0 {
		return headState{}, false
	}
	return headState{live: s.live, id: s.id}, true
}

func (m *headMap) put(h uint64, body []byte, st headState) {
	h = slotHash(h)
	s := m.find(h, body)
	if s.hash == 0 {
		if 4*(m.n+1) > 3*len(m.slots) {
			m.grow()
			s = m.find(h, body)
		}
		s.hash, s.off, s.len = h, uint32(len(m.arena)), uint32(len(body))
		m.arena = append(m.arena, body...)
		m.n++
	}
	s.live, s.id = st.live, st.id
}

func (m *headMap) grow() {
	old := m.slots
	m.slots = make([]headSlot, 2*len(old))
	mask := uint64(len(m.slots) - 1)
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := s.hash & mask
		for m.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
}

func (m *headMap) len() int { return m.n }

// reset empties the map and keeps its memory.
func (m *headMap) reset() {
	clear(m.slots)
	m.arena = m.arena[:0]
	m.n = 0
}
