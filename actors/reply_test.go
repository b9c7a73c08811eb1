package actors_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/killfeed/killfeed/actors"
)

func TestReplyAsMapsEveryKindOfAnswer(t *testing.T) {
	ok := &actors.AdvanceClientResult{}
	crashed := fmt.Errorf("%w: boom", actors.ErrCrashed)
	for _, c := range []struct {
		name string
		res  any
		err  error
		want error
	}{
		{"the reply", ok, nil, nil},
		{"a timeout", nil, actor.ErrTimeout, actors.ErrUnavailable},
		{"a dead letter", nil, actor.ErrDeadLetter, actors.ErrUnavailable},
		{"a dead-letter response", &actor.DeadLetterResponse{}, nil, actors.ErrUnavailable},
		{"an error reply", crashed, nil, actors.ErrCrashed},
		{"another future error", nil, actors.ErrStopped, actors.ErrStopped},
	} {
		r, err := actors.ReplyAs[*actors.AdvanceClientResult](c.res, c.err)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if c.want == nil && r != ok {
			t.Errorf("%s: reply %v", c.name, r)
		}
	}
	if _, err := actors.ReplyAs[*actors.AdvanceClientResult](&actors.FetchResult{}, nil); err == nil || errors.Is(err, actors.ErrUnavailable) {
		t.Errorf("a reply of another type: %v", err)
	}
}
