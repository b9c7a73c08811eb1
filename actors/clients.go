package actors

import "github.com/killfeed/killfeed/eventlog"

// JoinSystems starts the systems clientID has no offset for at the head
// and returns its position over systems (see eventlog.Log.JoinSystems).
// Like Stats, it goes to the log directly, which serialises it: it is
// quick and reads no body.
func (s *Service) JoinSystems(clientID string, systems []int64) (uint64, error) {
	if s.log == nil {
		return 0, ErrUnavailable
	}
	return s.log.JoinSystems(clientID, systems)
}

// SetRetention sets how clientID takes part in retention (see
// eventlog.Log.SetRetention).
func (s *Service) SetRetention(clientID string, r eventlog.Retention) error {
	if s.log == nil {
		return ErrUnavailable
	}
	return s.log.SetRetention(clientID, r)
}
