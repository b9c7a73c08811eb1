package transport

import "context"

// WebsocketConfig tunes the websocket endpoints.
type WebsocketConfig struct{}

// websocketRoutes registers the websocket endpoints.
func (s *Server) websocketRoutes() {}

// CloseWebsockets closes every open websocket with 1001 (going away) and
// waits for their handlers to finish.
func (s *Server) CloseWebsockets(ctx context.Context) error { return nil }
