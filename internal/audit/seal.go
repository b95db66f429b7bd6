package audit

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-ops/cairn/internal/canonical"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// SchemaVersion is the audit schema version this package reads and writes.
const SchemaVersion = 1

// Seal computes and records a's hashes, replacing any already there.
func Seal(a *inventoryv1.Audit) error {
	h, err := computeHashes(a)
	if err != nil {
		return err
	}
	a.Hashes = h
	return nil
}

// Verify recomputes a's hashes and reports the first one that differs
// from the recorded value, wrapped in ErrTampered.
func Verify(a *inventoryv1.Audit) error {
	rec := a.GetHashes()
	if rec.GetDocument() == "" || rec.GetContent() == "" {
		return fmt.Errorf("%w: hashes missing", ErrTampered)
	}
	got, err := computeHashes(a)
	if err != nil {
		return err
	}
	for _, s := range Sections {
		if s.Volatile {
			continue
		}
		want, ok := rec.GetSections()[s.Name]
		have, present := got.GetSections()[s.Name]
		switch {
		case !ok && !present:
		case ok != present:
			return fmt.Errorf("%w: section %s present in content but not in hashes, or the other way round", ErrTampered, s.Name)
		case want != have:
			return fmt.Errorf("%w: section %s hashes to %s, recorded %s", ErrTampered, s.Name, short(have), short(want))
		}
	}
	if len(rec.GetSections()) != len(got.GetSections()) {
		return fmt.Errorf("%w: hashes name sections the audit does not have", ErrTampered)
	}
	if rec.GetContent() != got.GetContent() {
		return fmt.Errorf("%w: content hashes to %s, recorded %s", ErrTampered, short(got.GetContent()), short(rec.GetContent()))
	}
	if rec.GetDocument() != got.GetDocument() {
		return fmt.Errorf("%w: document hashes to %s, recorded %s (header, volatile facts or collector status edited)", ErrTampered, short(got.GetDocument()), short(rec.GetDocument()))
	}
	return nil
}

func computeHashes(a *inventoryv1.Audit) (*inventoryv1.Hashes, error) {
	h := &inventoryv1.Hashes{Sections: map[string]string{}}
	names := make([]string, 0, len(Sections))
	for _, s := range Sections {
		m := s.Get(a)
		if s.Volatile || m == nil {
			continue
		}
		sum, err := canonical.Sum(m)
		if err != nil {
			return nil, fmt.Errorf("hash section %s: %w", s.Name, err)
		}
		h.Sections[s.Name] = sum
		names = append(names, s.Name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s\n", n, h.Sections[n])
	}
	h.Content = canonical.SumBytes([]byte(b.String()))

	sum, err := canonical.Sum(withHashes(a, &inventoryv1.Hashes{Sections: h.Sections, Content: h.Content}))
	if err != nil {
		return nil, fmt.Errorf("hash document: %w", err)
	}
	h.Document = sum
	return h, nil
}

// withHashes returns a shallow copy of a, sharing its sections, with its
// hashes replaced: what the document hash covers, without copying the
// whole audit or changing a.
func withHashes(a *inventoryv1.Audit, h *inventoryv1.Hashes) *inventoryv1.Audit {
	doc := &inventoryv1.Audit{}
	dst := doc.ProtoReflect()
	a.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	doc.Hashes = h
	return doc
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
