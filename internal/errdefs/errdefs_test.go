package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestClasses(t *testing.T) {
	cause := fs.ErrNotExist
	tests := []struct {
		name  string
		err   error
		class error
		msg   string
	}{
		{"invalid", InvalidArgument("bad size %q", "1x"), ErrInvalidArgument, `bad size "1x"`},
		{"not found", NotFound("no such container: %s", "abc"), ErrNotFound, "no such container: abc"},
		{"conflict", Conflict("name %q is in use", "web"), ErrConflict, `name "web" is in use`},
		{"wrapped cause", New(ErrUnavailable, "runtime: %w", cause), ErrUnavailable, "runtime: file does not exist"},
		{"wrapped again", fmt.Errorf("create: %w", NotFound("image x")), ErrNotFound, "create: image x"},
		{"plain", errors.New("boom"), nil, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Class(tt.err); got != tt.class {
				t.Fatalf("Class = %v, want %v", got, tt.class)
			}
			if tt.err.Error() != tt.msg {
				t.Fatalf("message %q, want %q", tt.err.Error(), tt.msg)
			}
		})
	}
	if err := New(ErrUnavailable, "runtime: %w", cause); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%%w operand lost: %v", err)
	}
	if errors.Is(InvalidArgument("x"), ErrNotFound) {
		t.Fatal("an invalid-argument error must not be a not-found error")
	}
}
