package chaos

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func check(t *testing.T, ops []Op) porcupine.CheckResult {
	t.Helper()
	return porcupine.CheckOperationsTimeout(Model, Operations(ops), 10*time.Second)
}

func TestModelAcceptsLinearizable(t *testing.T) {
	ops := []Op{
		{Client: 0, Input: Input{Key: 1, Kind: Insert, Value: 7}, Call: ms(0), Return: ms(10)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Output: Output{Values: []int64{7}}, Call: ms(11), Return: ms(12)},
		// Concurrent with the delete: either answer is fine.
		{Client: 0, Input: Input{Key: 1, Kind: Delete, Value: 7}, Call: ms(20), Return: ms(30)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Output: Output{Values: []int64{7}}, Call: ms(21), Return: ms(25)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Call: ms(31), Return: ms(32)},
		// Inserting a live fact again changes nothing; another key is apart.
		{Client: 2, Input: Input{Key: 2, Kind: Insert, Value: 8}, Call: ms(0), Return: ms(1)},
		{Client: 2, Input: Input{Key: 2, Kind: Insert, Value: 8}, Call: ms(2), Return: ms(3)},
		{Client: 2, Input: Input{Key: 2, Kind: Delete, Value: 8}, Call: ms(4), Return: ms(5)},
		{Client: 2, Input: Input{Key: 2, Kind: Read}, Call: ms(6), Return: ms(7)},
	}
	if got := check(t, ops); got != porcupine.Ok {
		t.Fatalf("got %s", got)
	}
}

func TestModelUnknownWrites(t *testing.T) {
	// An unknown insert may show up at any time after its call, or never.
	applied := []Op{
		{Client: 0, Input: Input{Key: 1, Kind: Insert, Value: 7}, Output: Output{Unknown: true}, Call: ms(0)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Call: ms(10), Return: ms(11)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Output: Output{Values: []int64{7}}, Call: ms(100), Return: ms(101)},
	}
	if got := check(t, applied); got != porcupine.Ok {
		t.Fatalf("applied late: got %s", got)
	}
	never := []Op{applied[0], applied[1]}
	if got := check(t, never); got != porcupine.Ok {
		t.Fatalf("never applied: got %s", got)
	}
	// But once seen it cannot vanish.
	vanished := append(applied, Op{Client: 1, Input: Input{Key: 1, Kind: Read}, Call: ms(200), Return: ms(201)})
	if got := check(t, vanished); got != porcupine.Illegal {
		t.Fatalf("vanished: got %s", got)
	}
}

func TestModelRejectsStaleRead(t *testing.T) {
	ops := []Op{
		{Client: 0, Input: Input{Key: 1, Kind: Insert, Value: 7}, Call: ms(0), Return: ms(10)},
		// A read that starts after the insert returned must see it.
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Call: ms(11), Return: ms(12)},
	}
	if got := check(t, ops); got != porcupine.Illegal {
		t.Fatalf("stale read: got %s", got)
	}
	lost := []Op{
		{Client: 0, Input: Input{Key: 1, Kind: Insert, Value: 7}, Call: ms(0), Return: ms(10)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Output: Output{Values: []int64{7}}, Call: ms(11), Return: ms(12)},
		{Client: 1, Input: Input{Key: 1, Kind: Read}, Call: ms(13), Return: ms(14)},
	}
	if got := check(t, lost); got != porcupine.Illegal {
		t.Fatalf("a fact that went back: got %s", got)
	}
}
