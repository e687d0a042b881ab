package logsvc

import "github.com/hashicorp/raft"

// Raft exposes the replica's Raft instance to tests.
func (s *Server) Raft() *raft.Raft { return s.raft }
