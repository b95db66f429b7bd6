package diff

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sectionWalker collects the changes of one section: item changes from
// keyed lists, and field changes of everything else on the section.
type sectionWalker struct {
	fields []FieldChange
	items  []Change
}

// walk compares a and b, two messages of the same type at path prefix in
// the section (not inside an item).
func (w *sectionWalker) walk(prefix string, a, b protoreflect.Message) {
	fields := a.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && keyField(fd.Message()) != nil:
			w.items = append(w.items, diffItems(fd, a.Get(fd).List(), b.Get(fd).List())...)
		case isSingularMessage(fd):
			w.walk(prefix+string(fd.Name())+".", a.Get(fd).Message(), b.Get(fd).Message())
		default:
			w.fields = appendFieldDiff(w.fields, prefix, fd, a, b)
		}
	}
}

func isSingularMessage(fd protoreflect.FieldDescriptor) bool {
	return fd.Message() != nil && !fd.IsList() && !fd.IsMap()
}

// keyField returns md's `key` field when md is a keyed item message: a
// singular string field named key. md may be nil.
func keyField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	if md == nil {
		return nil
	}
	fd := md.Fields().ByName("key")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return nil
	}
	return fd
}

// entry is one item of a keyed list.
type entry struct {
	key string
	m   protoreflect.Message
}

// entries returns the items of l sorted by key. The schema keeps lists
// sorted, so this is usually one pass; an unsorted list is sorted (stably,
// so duplicate keys keep their order).
func entries(l protoreflect.List, key protoreflect.FieldDescriptor) []entry {
	es := make([]entry, l.Len())
	sorted := true
	for i := range es {
		m := l.Get(i).Message()
		es[i] = entry{key: m.Get(key).String(), m: m}
		if i > 0 && es[i].key < es[i-1].key {
			sorted = false
		}
	}
	if !sorted {
		slices.SortStableFunc(es, func(x, y entry) int { return strings.Compare(x.key, y.key) })
	}
	return es
}

// merge walks two key-sorted entry lists in step and calls fn with each
// pair of items with equal keys, or with one side nil.
func merge(a, b []entry, fn func(x, y *entry)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].key < b[j].key):
			fn(&a[i], nil)
			i++
		case i == len(a) || b[j].key < a[i].key:
			fn(nil, &b[j])
			j++
		default:
			fn(&a[i], &b[j])
			i++
			j++
		}
	}
}

// diffItems matches the items of two keyed lists and returns the items
// added, removed, changed and replaced, sorted by key.
func diffItems(fd protoreflect.FieldDescriptor, a, b protoreflect.List) []Change {
	md := fd.Message()
	key := keyField(md)
	kind := kindName(md)
	var (
		out              []Change
		removed, added   []protoreflect.Message
		removedK, addedK []int // indexes into out
	)
	merge(entries(a, key), entries(b, key), func(x, y *entry) {
		switch {
		case y == nil:
			removedK = append(removedK, len(out))
			removed = append(removed, x.m)
			out = append(out, Change{Op: OpRemoved, Verb: OpRemoved, Kind: kind, Key: x.key, Item: attrs(x.m)})
		case x == nil:
			addedK = append(addedK, len(out))
			added = append(added, y.m)
			out = append(out, Change{Op: OpAdded, Verb: OpAdded, Kind: kind, Key: y.key, Item: attrs(y.m)})
		default:
			if fields := diffFields(nil, "", x.m, y.m, key); len(fields) > 0 {
				out = append(out, Change{Op: OpChanged, Verb: changeVerb(kind, x.m, y.m), Kind: kind, Key: x.key, Fields: fields})
			}
		}
	})
	if pairBy := replaceField(kind, md); pairBy != nil && len(removed) > 0 && len(added) > 0 {
		out = pairReplacements(out, pairBy, key, removed, removedK, added, addedK)
	}
	return out
}

// pairReplacements turns a removed and an added item with the same
// non-empty pairBy value into one replaced change.
func pairReplacements(out []Change, pairBy, key protoreflect.FieldDescriptor, removed []protoreflect.Message, removedK []int, added []protoreflect.Message, addedK []int) []Change {
	byValue := make(map[string][]int, len(removed)) // value -> indexes into removed
	for i, m := range removed {
		if v := m.Get(pairBy).String(); v != "" {
			byValue[v] = append(byValue[v], i)
		}
	}
	drop := make(map[int]bool)
	for i, m := range added {
		v := m.Get(pairBy).String()
		cands := byValue[v]
		if v == "" || len(cands) == 0 {
			continue
		}
		r := cands[0]
		byValue[v] = cands[1:]
		old := &out[removedK[r]]
		ch := &out[addedK[i]]
		ch.Op, ch.Verb = OpReplaced, OpReplaced
		ch.OldKey = old.Key
		ch.Match = v
		ch.Fields = diffFields(nil, "", removed[r], m, key)
		drop[removedK[r]] = true
	}
	if len(drop) == 0 {
		return out
	}
	kept := out[:0]
	for i, ch := range out {
		if !drop[i] {
			kept = append(kept, ch)
		}
	}
	return kept
}

// diffFields appends to dst the fields of a and b (same type) that differ,
// with paths under prefix. skip (may be nil) is not compared: the key of
// an item, which matching already accounted for.
func diffFields(dst []FieldChange, prefix string, a, b protoreflect.Message, skip protoreflect.FieldDescriptor) []FieldChange {
	fields := a.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if skip != nil && fd.Number() == skip.Number() {
			continue
		}
		dst = appendFieldDiff(dst, prefix, fd, a, b)
	}
	return dst
}

// appendFieldDiff compares field fd of a and b.
func appendFieldDiff(dst []FieldChange, prefix string, fd protoreflect.FieldDescriptor, a, b protoreflect.Message) []FieldChange {
	switch {
	case !fd.IsList() && !fd.IsMap() && fd.Message() == nil:
		// The common case first, without building the path unless needed.
		va, vb := a.Get(fd), b.Get(fd)
		if !scalarEqual(fd, va, vb) {
			dst = append(dst, FieldChange{Field: prefix + string(fd.Name()), Old: formatScalar(fd, va), New: formatScalar(fd, vb)})
		}
		return dst
	}
	name := prefix + string(fd.Name())
	switch {
	case fd.IsList():
		la, lb := a.Get(fd).List(), b.Get(fd).List()
		if la.Len() == 0 && lb.Len() == 0 {
			return dst
		}
		if key := keyField(fd.Message()); key != nil {
			merge(entries(la, key), entries(lb, key), func(x, y *entry) {
				switch {
				case y == nil:
					dst = append(dst, FieldChange{Field: name + "[" + x.key + "]", Old: formatItem(x.m, key)})
				case x == nil:
					dst = append(dst, FieldChange{Field: name + "[" + y.key + "]", New: formatItem(y.m, key)})
				default:
					dst = diffFields(dst, name+"["+x.key+"].", x.m, y.m, key)
				}
			})
			return dst
		}
		if !listEqual(fd, la, lb) {
			dst = append(dst, FieldChange{Field: name, Old: formatList(fd, la), New: formatList(fd, lb)})
		}
	case fd.IsMap():
		dst = appendMapDiff(dst, name, fd, a.Get(fd).Map(), b.Get(fd).Map())
	default: // a singular message
		if !a.Has(fd) && !b.Has(fd) {
			return dst
		}
		dst = diffFields(dst, name+".", a.Get(fd).Message(), b.Get(fd).Message(), nil)
	}
	return dst
}

func appendMapDiff(dst []FieldChange, name string, fd protoreflect.FieldDescriptor, a, b protoreflect.Map) []FieldChange {
	kfd, vfd := fd.MapKey(), fd.MapValue()
	var keys []protoreflect.MapKey
	a.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
	b.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		if !a.Has(k) {
			keys = append(keys, k)
		}
		return true
	})
	sortMapKeys(kfd, keys)
	for _, k := range keys {
		path := name + "[" + formatScalar(kfd, k.Value()) + "]"
		va, vb := a.Get(k), b.Get(k)
		switch {
		case !a.Has(k):
			dst = append(dst, FieldChange{Field: path, New: formatScalar(vfd, vb)})
		case !b.Has(k):
			dst = append(dst, FieldChange{Field: path, Old: formatScalar(vfd, va)})
		case vfd.Message() != nil:
			dst = diffFields(dst, path+".", va.Message(), vb.Message(), nil)
		case !scalarEqual(vfd, va, vb):
			dst = append(dst, FieldChange{Field: path, Old: formatScalar(vfd, va), New: formatScalar(vfd, vb)})
		}
	}
	return dst
}

func sortMapKeys(kfd protoreflect.FieldDescriptor, keys []protoreflect.MapKey) {
	slices.SortFunc(keys, func(x, y protoreflect.MapKey) int {
		switch kfd.Kind() {
		case protoreflect.StringKind:
			return strings.Compare(x.String(), y.String())
		case protoreflect.BoolKind:
			return cmp.Compare(boolInt(x.Bool()), boolInt(y.Bool()))
		case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
			return cmp.Compare(x.Uint(), y.Uint())
		default:
			return cmp.Compare(x.Int(), y.Int())
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func listEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.List) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		if !scalarEqual(fd, a.Get(i), b.Get(i)) {
			return false
		}
	}
	return true
}

// scalarEqual compares two values of fd's kind (messages too, for lists of
// unkeyed messages).
func scalarEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return a.String() == b.String()
	case protoreflect.BytesKind:
		return bytes.Equal(a.Bytes(), b.Bytes())
	case protoreflect.BoolKind:
		return a.Bool() == b.Bool()
	case protoreflect.EnumKind:
		return a.Enum() == b.Enum()
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return a.Uint() == b.Uint()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return proto.Equal(a.Message().Interface(), b.Message().Interface())
	default:
		return a.Int() == b.Int()
	}
}

// formatScalar formats one value of fd's kind.
func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return hex.EncodeToString(v.Bytes())
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.FloatKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32)
	case protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return formatItem(v.Message(), nil)
	default:
		return strconv.FormatInt(v.Int(), 10)
	}
}

func formatList(fd protoreflect.FieldDescriptor, l protoreflect.List) string {
	parts := make([]string, l.Len())
	for i := range parts {
		parts[i] = formatScalar(fd, l.Get(i))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatItem renders a message on one line as "{field=value ...}",
// leaving out skip (may be nil) and empty fields.
func formatItem(m protoreflect.Message, skip protoreflect.FieldDescriptor) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, at := range appendAttrs(nil, "", m, skip) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(at.Field)
		b.WriteByte('=')
		b.WriteString(at.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// attrs returns the non-empty fields of item m except its key, in schema
// order. Nested messages are flattened with dotted names; a keyed list is
// listed by its keys.
func attrs(m protoreflect.Message) Attrs {
	return appendAttrs(nil, "", m, keyField(m.Descriptor()))
}

func appendAttrs(dst Attrs, prefix string, m protoreflect.Message, skip protoreflect.FieldDescriptor) Attrs {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd == skip || !m.Has(fd) {
			continue
		}
		name := prefix + string(fd.Name())
		v := m.Get(fd)
		switch {
		case fd.IsList():
			if key := keyField(fd.Message()); key != nil {
				keys := make([]string, v.List().Len())
				for j := range keys {
					keys[j] = v.List().Get(j).Message().Get(key).String()
				}
				dst = append(dst, Attr{Field: name, Value: "[" + strings.Join(keys, ", ") + "]"})
			} else {
				dst = append(dst, Attr{Field: name, Value: formatList(fd, v.List())})
			}
		case fd.IsMap():
			dst = append(dst, Attr{Field: name, Value: formatMap(fd, v.Map())})
		case isSingularMessage(fd):
			dst = appendAttrs(dst, name+".", v.Message(), nil)
		default:
			dst = append(dst, Attr{Field: name, Value: formatScalar(fd, v)})
		}
	}
	return dst
}

func formatMap(fd protoreflect.FieldDescriptor, m protoreflect.Map) string {
	var keys []protoreflect.MapKey
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
	sortMapKeys(fd.MapKey(), keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = formatScalar(fd.MapKey(), k.Value()) + "=" + formatScalar(fd.MapValue(), m.Get(k))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// kindName is a message's name in snake_case: Disk is "disk", PCIDevice is
// "pci_device", NIC is "nic".
func kindName(md protoreflect.MessageDescriptor) string {
	name := string(md.Name())
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isUpper(c) {
			if i > 0 && (!isUpper(name[i-1]) || (i+1 < len(name) && isLower(name[i+1]))) {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
