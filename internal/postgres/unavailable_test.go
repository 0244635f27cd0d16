package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
)

// TestUnavailable: while PostgreSQL is stopped, every store method fails
// at once with EUNAVAILABLE ("database unavailable; retry", answered 503)
// and no password in its text; once it is back the same DB works again,
// without being reopened.
func TestUnavailable(t *testing.T) {
	c := pgtest.Start(t)
	db := mustOpenURL(t, c.NewDatabase(t))
	ctx := context.Background()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping while up: %v", err)
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); tokenward.ErrorCode(err) != tokenward.EUNAVAILABLE {
		t.Fatalf("Ping while down: got %v; want EUNAVAILABLE", err)
	}
	n := 0
	for _, recv := range []any{db, db.Rotations()} {
		v := reflect.ValueOf(recv)
		for i := range v.NumMethod() {
			m := v.Type().Method(i)
			switch m.Name {
			case "Open", "Ping", "LockServer", "LockMigration", "Lead": // Open is refused outright; the others have their own tests (Lead waits for the database)
				continue
			}
			mt := m.Type // with the receiver first
			if mt.NumIn() < 2 || mt.In(1) != reflect.TypeFor[context.Context]() {
				continue
			}
			t.Run(m.Name, func(t *testing.T) {
				err := callStoreMethod(t, v.Method(i), validArgs[m.Name])
				if got := tokenward.ErrorCode(err); got != tokenward.EUNAVAILABLE {
					t.Fatalf("got %v (code %q); want EUNAVAILABLE", err, got)
				}
				if got, want := tokenward.ErrorMessage(err), "database unavailable; retry"; got != want {
					t.Errorf("message: got %q; want %q", got, want)
				}
				if !errors.Is(err, postgres.ErrUnavailable) {
					t.Errorf("got %v; want errors.Is ErrUnavailable", err)
				}
				if strings.Contains(err.Error(), c.Password) {
					t.Errorf("the error repeats the database password: %q", err)
				}
			})
			n++
		}
	}
	if n < 40 {
		t.Fatalf("called %d store methods; want every one (40 or more)", n)
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after the restart: got %v; want the pool to reconnect", err)
	}
	if ps, err := db.Projects(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Projects after the restart: got %v, %v; want none, nil", ps, err)
	}
}

// validArgs makes the arguments of the methods that check them before
// asking the database valid enough to get there (args[0] is the context).
var validArgs = map[string]func(args []reflect.Value){
	"PutSecret":      func(args []reflect.Value) { args[3].Interface().(*tokenward.SecretVersion).Version = 1 },
	"UnlabelVersion": func(args []reflect.Value) { args[4] = reflect.ValueOf(tokenward.LabelPending) },
}

// callStoreMethod calls m with a background context and zero-valued (but
// non-nil) arguments, made valid by fix if it is not nil, and returns its
// error; a method that returns an iterator is iterated.
func callStoreMethod(t *testing.T, m reflect.Value, fix func([]reflect.Value)) error {
	t.Helper()
	mt := m.Type()
	args := []reflect.Value{reflect.ValueOf(context.Background())}
	for i := 1; i < mt.NumIn(); i++ {
		args = append(args, nonNilZero(mt.In(i)))
	}
	if fix != nil {
		fix(args)
	}
	out := m.Call(args)
	last := out[len(out)-1]
	if last.Kind() == reflect.Func { // iter.Seq2[T, error]
		var err error
		yield := reflect.MakeFunc(last.Type().In(0), func(in []reflect.Value) []reflect.Value {
			if e, _ := in[1].Interface().(error); e != nil {
				err = e
			}
			return []reflect.Value{reflect.ValueOf(false)}
		})
		last.Call([]reflect.Value{yield})
		return err
	}
	if !last.Type().Implements(reflect.TypeFor[error]()) {
		t.Fatalf("last result is %s; want error or an iterator", last.Type())
	}
	err, _ := last.Interface().(error)
	return err
}

// nonNilZero is a zero value of t, with pointers pointing at a zero value
// and slices holding one element, so a method gets as far as the database.
func nonNilZero(t reflect.Type) reflect.Value {
	switch t.Kind() {
	case reflect.Pointer:
		return reflect.New(t.Elem())
	case reflect.Slice:
		s := reflect.MakeSlice(t, 1, 1)
		s.Index(0).Set(nonNilZero(t.Elem()))
		return s
	case reflect.Map:
		return reflect.MakeMap(t)
	}
	return reflect.Zero(t)
}
