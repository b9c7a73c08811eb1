// Package selection owns what a client asks for: a Selection is the solar
// systems to read (the partitions of the event log, which are also its
// offset keys) and a Predicate over the Facts of a killmail (who was
// involved, on which side, in which ships, for how much, with which
// zKillboard labels). Facts are extracted once per killmail when it is
// stored; a Predicate evaluates them for every subscriber without parsing
// JSON.
//
// Every wire syntax is parsed here into the same Selection: the HTTP query
// of /api/killfeed (ParseQuery), the terms of a websocket subscribe frame
// or Phoenix join payload (Terms.Compile), the channels of zKillboard's
// websocket (Channel) and RedisQ's filter= (ParseRedisQFilter). A
// Predicate has a canonical string form (Predicate.String, Parse) that
// carries it between a core and its edges.
//
// A new kind of term is one new field of Terms, one compiled term type and
// one fact, not a change to the log, the actors or the transports.
package selection
