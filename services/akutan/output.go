package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// printJSON prints v as the command's one JSON document.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printJSONLine prints v as one line, for commands that keep printing.
func (a *app) printJSONLine(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// protoJSON converts a message to plain values for encoding/json: the
// proto field names (snake_case), every field present (zero values
// included), 64-bit integers as numbers (protojson prints them as strings),
// enums by name and bytes as base64.
func protoJSON(m proto.Message) map[string]any {
	return messageJSON(m.ProtoReflect())
}

func messageJSON(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic() && !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			list := make([]any, l.Len())
			for j := range list {
				list[j] = valueJSON(fd, l.Get(j))
			}
			out[string(fd.Name())] = list
		case fd.IsMap():
			mm := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mm[k.String()] = valueJSON(fd.MapValue(), mv)
				return true
			})
			out[string(fd.Name())] = mm
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if !m.Has(fd) {
				out[string(fd.Name())] = nil
				continue
			}
			out[string(fd.Name())] = messageJSON(v.Message())
		default:
			out[string(fd.Name())] = valueJSON(fd, v)
		}
	}
	return out
}

func valueJSON(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageJSON(v.Message())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	}
	return v.Interface() // bool, string, int32/64, uint32/64, float, double
}

// stderrIsTerminal reports whether progress may be drawn: stderr is a
// terminal (never a log file or CI), so "\r" redraws are safe.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressOut is where progress bars go: stderr when it is a terminal and
// --quiet is off, else nowhere.
func (a *app) progressOut() io.Writer {
	if a.quiet || !a.stderrIsTerminal() {
		return nil
	}
	return a.stderr
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func okOr(err string) string {
	if err == "" {
		return "ok"
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func rangeEnd(end uint64) string {
	if end == 0 {
		return "2^64"
	}
	return fmt.Sprintf("%#x", end)
}
