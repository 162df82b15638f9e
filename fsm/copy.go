package fsm

import (
	"encoding"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// A copyFunc copies src into dst, two addressable values of one type, so
// that the copy shares no memory that src's owner may write: a deep copy
// of every field, exported or not. It reuses what dst already holds (a
// slice's array when it is large enough, a map, a pointed-to value), so
// that copying value after value into one dst allocates nothing once dst
// has grown to their size.
//
// A Stager copies a machine's data this way while the machine is
// suspended, and encodes the copy once the machine runs again: a copy of a
// few hundred bytes takes a tenth of the time msgpack takes to encode them
// by reflection.
type copyFunc func(dst, src reflect.Value)

// copiers caches copierFor's answer by type: a copyFunc, or nil for a
// type that cannot be copied.
var copiers sync.Map // reflect.Type -> copyFunc (nil: none)

// copierFor returns the copyFunc of t, or false if a value of t cannot be
// copied so: t holds an interface, a channel, a function or an
// unsafe.Pointer, or it is recursive (a list, a tree: a value of it may
// be cyclic), or it holds a type with an encoding of its own that holds a
// pointer (see ownEncoding). Those are encoded while the machine is
// suspended, as before.
func copierFor(t reflect.Type) (copyFunc, bool) {
	if f, ok := copiers.Load(t); ok {
		f := f.(copyFunc)
		return f, f != nil
	}
	f := buildCopier(t, map[reflect.Type]bool{})
	copiers.Store(t, f)
	return f, f != nil
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	locationType = reflect.TypeFor[*time.Location]()
)

// The interfaces through which msgpack lets a type encode itself, or
// decide whether a field tagged omitempty is written (IsZero).
var encodingTypes = []reflect.Type{
	reflect.TypeFor[msgpack.CustomEncoder](),
	reflect.TypeFor[msgpack.Marshaler](),
	reflect.TypeFor[encoding.BinaryMarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](),
	reflect.TypeFor[interface{ IsZero() bool }](),
}

// ownEncoding reports whether msgpack encodes a value of t with a method
// of t's (on the value or on its pointer) and t holds a pointer that the
// copier would follow: such a t is not copied. A deep copy keeps every
// value but not the identity of a pointer, which msgpack's own encoding
// never looks at and a method may compare: netip.Addr's MarshalBinary
// compares an interned pointer with its IPv4 one, and a copy (before
// unique.Handle was shared) encoded 10.0.0.1 as ::ffff:10.0.0.1. Slices
// and maps cannot be compared but with nil, which a copy keeps, so a
// type with its own encoding that holds only those (a named []string,
// big.Int's words) is copied.
func ownEncoding(t reflect.Type) bool {
	for _, e := range encodingTypes {
		if t.Implements(e) || reflect.PointerTo(t).Implements(e) {
			return holdsPointer(t, map[reflect.Type]bool{})
		}
	}
	return false
}

// holdsPointer reports whether a value of t may hold a pointer that is
// not interned; seen holds the types already looked into.
func holdsPointer(t reflect.Type, seen map[reflect.Type]bool) bool {
	if interned(t) || seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array, reflect.Slice:
		return holdsPointer(t.Elem(), seen)
	case reflect.Map:
		return holdsPointer(t.Key(), seen) || holdsPointer(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsPointer(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// interned reports whether t is a pointer that is never written through,
// and whose identity may matter: time's *Location (time compares it with
// &utcLoc, and so may a custom encoding with time.UTC) and unique's
// Handle (a struct of one such pointer). It is shared, not copied.
func interned(t reflect.Type) bool {
	return t == locationType ||
		t.Kind() == reflect.Struct && t.PkgPath() == "unique" && strings.HasPrefix(t.Name(), "Handle[")
}

// buildCopier builds the copyFunc of t; open holds the types being built
// around it, so that a recursive type is found and refused.
func buildCopier(t reflect.Type, open map[reflect.Type]bool) copyFunc {
	if shallow(t) {
		return func(dst, src reflect.Value) { dst.Set(src) }
	}
	if open[t] || ownEncoding(t) {
		return nil
	}
	open[t] = true
	defer delete(open, t)
	switch t.Kind() {
	case reflect.Pointer:
		elem := buildCopier(t.Elem(), open)
		if elem == nil {
			return nil
		}
		return func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			if dst.IsNil() {
				dst.Set(reflect.New(t.Elem()))
			}
			elem(dst.Elem(), src.Elem())
		}
	case reflect.Slice:
		return sliceCopier(t, open)
	case reflect.Array:
		elem := buildCopier(t.Elem(), open)
		if elem == nil {
			return nil
		}
		return func(dst, src reflect.Value) {
			for i := range src.Len() {
				elem(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Map:
		return mapCopier(t, open)
	case reflect.Struct:
		return structCopier(t, open)
	}
	return nil // interface, chan, func, unsafe.Pointer
}

// shallow reports whether assigning a value of t copies all of it: t
// holds no pointer but strings (which are never written) and interned
// pointers (see interned).
func shallow(t reflect.Type) bool {
	if interned(t) {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return t.Len() == 0 || shallow(t.Elem())
	case reflect.Struct:
		if t == timeType {
			return true
		}
		for i := range t.NumField() {
			if !shallow(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

func sliceCopier(t reflect.Type, open map[reflect.Type]bool) copyFunc {
	elem := buildCopier(t.Elem(), open)
	if elem == nil {
		return nil
	}
	flat := shallow(t.Elem())
	return func(dst, src reflect.Value) {
		if src.IsNil() {
			dst.SetZero() // nil and empty encode differently
			return
		}
		n := src.Len()
		if dst.IsNil() || dst.Cap() < n {
			dst.Set(reflect.MakeSlice(t, n, n))
		} else {
			dst.SetLen(n)
		}
		if flat {
			reflect.Copy(dst, src)
			return
		}
		for i := range n {
			elem(dst.Index(i), src.Index(i))
		}
	}
}

// mapCopier copies maps whose keys are shallow: a key that points at
// memory would have to be copied too, and would then be another key.
func mapCopier(t reflect.Type, open map[reflect.Type]bool) copyFunc {
	if !shallow(t.Key()) {
		return nil
	}
	elem := buildCopier(t.Elem(), open)
	if elem == nil {
		return nil
	}
	flat := shallow(t.Elem())
	return func(dst, src reflect.Value) {
		if src.IsNil() {
			dst.SetZero()
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(t, src.Len()))
		} else {
			dst.Clear()
		}
		k := reflect.New(t.Key()).Elem()
		v := reflect.New(t.Elem()).Elem()
		// A map's value is not addressable, and the copier of a struct
		// with unexported fields reaches them through their address: it
		// reads an addressable copy of the value, sv (a shallow copy,
		// which it only reads).
		var sv reflect.Value
		if !flat {
			sv = reflect.New(t.Elem()).Elem()
		}
		for it := src.MapRange(); it.Next(); {
			k.SetIterKey(it)
			if flat {
				v.SetIterValue(it)
			} else {
				v = reflect.New(t.Elem()).Elem() // the map keeps v's memory
				sv.SetIterValue(it)
				elem(v, sv)
			}
			dst.SetMapIndex(k, v)
		}
	}
}

// structCopier copies a struct field by field: a shallow field by
// assignment, any other with its own copier. An unexported field is
// reached through its address, since reflection does not assign to one
// otherwise: it is copied too, because a custom encoding may read it.
func structCopier(t reflect.Type, open map[reflect.Type]bool) copyFunc {
	type field struct {
		i        int
		f        copyFunc // nil: shallow
		typ      reflect.Type
		exported bool
	}
	fields := make([]field, t.NumField())
	for i := range fields {
		sf := t.Field(i)
		fields[i] = field{i: i, typ: sf.Type, exported: sf.IsExported()}
		if !shallow(sf.Type) {
			if fields[i].f = buildCopier(sf.Type, open); fields[i].f == nil {
				return nil
			}
		}
	}
	return func(dst, src reflect.Value) {
		for _, fd := range fields {
			d, s := dst.Field(fd.i), src.Field(fd.i)
			if !fd.exported {
				d = reflect.NewAt(fd.typ, unsafe.Pointer(d.UnsafeAddr())).Elem()
				s = reflect.NewAt(fd.typ, unsafe.Pointer(s.UnsafeAddr())).Elem()
			}
			if fd.f == nil {
				d.Set(s)
			} else {
				fd.f(d, s)
			}
		}
	}
}
