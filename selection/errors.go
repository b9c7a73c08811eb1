package selection

import "errors"

// ErrInvalid is matched (errors.Is) by every *ParamError.
var ErrInvalid = errors.New("invalid selection")

// ParamError is a request parameter or frame field that cannot be parsed;
// transports answer it with 400 and "<Param>: <Problem>".
type ParamError struct {
	Param   string
	Problem string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ParamError) Is(target error) bool { return target == ErrInvalid }

func bad(param, problem string) error { return &ParamError{Param: param, Problem: problem} }
