// Package edge runs killfeed past one machine: edge nodes that serve the
// same HTTP, RedisQ and websocket API as the core, fed by one core that
// owns the log, over Proto.Actor remote with explicit addresses.
//
// On the core, an endpoint actor (Core) answers the store requests of
// edges and starts one forwarder per edge, which holds one subscription to
// the core's PubSub for the topics the edge's clients follow and pushes
// their events, with the core's event_id. On an edge, Node's relay actor
// stands in for the KillmailStore of a local actors.Service (see
// actors.StartEdge): it forwards reads, offsets and inserts to the core,
// answers `since` replays from a bounded tail of recent events when it can,
// and publishes what the core pushes to the local PubSub once each, in
// event_id order. It pings the core; when the core is unreachable it
// answers at once with actors.ErrUnavailable, and past a grace it ends
// every local subscription with actors.ErrRestarted (websockets close with
// 1012) so that clients move to another node and resume by event_id.
//
// A read keeps its guarantees across the wire: its owner (the digest of
// the client's read key) and how long its asker still waits go with it, so
// the core binds client_ids and refuses late reads as for its own clients;
// an answer that advanced offsets carries a token the edge sends back
// (edgepb.Unread) when it could not deliver it, and the core puts the
// offsets back. Failures cross as codes of transport's error table
// (transport.WireFailure, transport.FailureError). The relay counts its
// round trips, lag, tail-cache reads and reconnects (metrics.Relay), and
// QuietRemote keeps Proto.Actor's retries out of the log while the core is
// away: the relay logs the outage once and its end once.
package edge
