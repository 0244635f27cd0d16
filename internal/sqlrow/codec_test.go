package sqlrow

import (
	"testing"
	"time"
)

func TestTimeCol(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 5, time.UTC)
	tests := []struct {
		name      string
		src       any
		want      time.Time
		want0     time.Time // through TimeCol0
		wantError bool
	}{
		{name: "NULL", src: nil},
		{name: "nanos", src: at.UnixNano(), want: at, want0: at},
		{name: "0", src: int64(0), want: time.Unix(0, 0).UTC()},
		{name: "text", src: "2026-11-22", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, got0 := time.Now(), time.Now()
			err, err0 := TimeCol(&got).Scan(tc.src), TimeCol0(&got0).Scan(tc.src)
			if tc.wantError {
				if err == nil || err0 == nil {
					t.Fatalf("got errors %v, %v; want both", err, err0)
				}
				return
			}
			if err != nil || err0 != nil {
				t.Fatal(err, err0)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC || !got0.Equal(tc.want0) {
				t.Errorf("got %v, %v; want %v, %v in UTC", got, got0, tc.want, tc.want0)
			}
		})
	}
	if TimeArg(time.Time{}) != nil || TimeArg(at) != at.UnixNano() || Nanos(time.Time{}) != 0 || Nanos(at) != at.UnixNano() {
		t.Errorf("TimeArg/Nanos: got %v, %v, %v, %v", TimeArg(time.Time{}), TimeArg(at), Nanos(time.Time{}), Nanos(at))
	}
}

func TestJSONHelpers(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{{nil, "{}"}, {map[string]string{}, "{}"}, {map[string]string{"a": "b"}, `{"a":"b"}`}} {
		if got := JSONObject(tc.m); got != tc.want {
			t.Errorf("JSONObject(%v): got %s; want %s", tc.m, got, tc.want)
		}
	}
	var m map[string]string
	for _, src := range []any{`{"a":"b"}`, []byte(`{"a":"b"}`)} {
		m = nil
		if err := JSONCol(&m).Scan(src); err != nil || m["a"] != "b" {
			t.Errorf("JSONCol(%T): got %v, %v; want a=b", src, m, err)
		}
	}
	if err := JSONCol(&m).Scan(int64(1)); err == nil {
		t.Error("JSONCol(int64): got no error; want one")
	}
	if OrNilMap(map[string]string{}) != nil || OrNilSlice([]string{}) != nil || OrNilSlice([]string{"x"}) == nil {
		t.Error("OrNilMap/OrNilSlice: empty must be nil, non-empty kept")
	}
}

func TestBoolCol(t *testing.T) {
	for _, tc := range []struct {
		src     any
		want    bool
		wantErr bool
	}{{int64(1), true, false}, {int64(0), false, false}, {int32(1), true, false}, {"1", false, true}, {nil, false, true}} {
		var got bool
		err := BoolCol(&got).Scan(tc.src)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("BoolCol(%#v): got %v, %v; want %v, error %v", tc.src, got, err, tc.want, tc.wantErr)
		}
	}
	if BoolArg(true) != 1 || BoolArg(false) != 0 {
		t.Errorf("BoolArg: got %d, %d; want 1, 0", BoolArg(true), BoolArg(false))
	}
}
