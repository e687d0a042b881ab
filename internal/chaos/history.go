package chaos

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is the kind of an operation on one key's set of facts.
type Kind int

const (
	// Insert adds the fact (key, value); inserting a live fact is a no-op.
	Insert Kind = iota
	// Delete removes the fact (key, value) if it is live.
	Delete
	// Read returns the set of live values of the key at the latest index.
	Read
)

func (k Kind) String() string { return [...]string{"insert", "delete", "read"}[k] }

// Input is what an operation asked.
type Input struct {
	Key   int
	Kind  Kind
	Value int64 // Insert and Delete
}

// Output is what it got back.
type Output struct {
	// Unknown marks a write whose outcome the client cannot know (it may
	// or may not have been applied); its return time is infinite.
	Unknown bool
	// Values is a Read's result, sorted.
	Values []int64
}

// Op is one recorded operation.
type Op struct {
	Client int
	Input  Input
	Output Output
	Call   time.Duration // since the history began
	Return time.Duration // ignored when Output.Unknown
	Err    string        // the error of an unknown write, for the visualization
}

// History records operations from concurrent clients.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts a history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time since the history began (monotonic).
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Add records an operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Ops returns a copy of the recorded operations.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Operations converts the history for porcupine: an unknown write returns
// at infinity, so it may take effect at any time after its call, or never.
func Operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := int64(op.Return)
		if op.Output.Unknown {
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output,
			Call: int64(op.Call), Return: ret, Metadata: op.Err})
	}
	return out
}

// Model is a set of live values per key: the facts <kN> <v> value of
// Akutan, where inserting a live fact changes nothing, a delete names the
// triple, and a linearizable lookup returns every live fact of the key.
// The history is partitioned by key; a partition's state is a sorted
// []int64.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		var keys []int
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return []int64(nil) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.([]int64), input.(Input), output.(Output)
		i, live := slices.BinarySearch(s, in.Value)
		switch in.Kind {
		case Insert:
			if live {
				return true, s
			}
			return true, slices.Insert(slices.Clone(s), i, in.Value)
		case Delete:
			if !live {
				return true, s
			}
			return true, slices.Delete(slices.Clone(s), i, i+1)
		default:
			return slices.Equal(s, out.Values), s
		}
	},
	Equal: func(a, b any) bool { return slices.Equal(a.([]int64), b.([]int64)) },
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		for _, v := range state.([]int64) {
			fmt.Fprint(h, v, ",")
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch {
		case in.Kind == Read:
			return fmt.Sprintf("read(k%d) -> %s", in.Key, describe(out.Values))
		case out.Unknown:
			return fmt.Sprintf("%s(k%d, %d) -> unknown", in.Kind, in.Key, in.Value)
		default:
			return fmt.Sprintf("%s(k%d, %d) -> ok", in.Kind, in.Key, in.Value)
		}
	},
	DescribeState: func(state any) string { return describe(state.([]int64)) },
	DescribeOperationMetadata: func(info any) string {
		s, _ := info.(string)
		return s
	},
}

func describe(vs []int64) string {
	var b strings.Builder
	b.WriteString("{")
	for i, v := range vs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprint(&b, v)
	}
	b.WriteString("}")
	return b.String()
}
