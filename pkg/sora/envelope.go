package sora

import "encoding/json"

// UserAgent is a connection.user-agent message: one client connection's getStats() report
// with the connection's metadata (DESIGN.md section 2). It is the type to build messages
// with (the simulator, fixture capture). Decoding into it drops the fields it does not
// name, so the collector never stores through it: normalize keeps every field.
type UserAgent struct {
	Type         string            `json:"type"` // TypeUserAgent
	ID           string            `json:"id,omitempty"`
	Timestamp    string            `json:"timestamp"` // RFC 3339 with fraction, UTC
	Label        string            `json:"label"`
	Version      string            `json:"version"`
	NodeName     string            `json:"node_name"`
	Multistream  bool              `json:"multistream"`
	Simulcast    bool              `json:"simulcast"`
	Spotlight    bool              `json:"spotlight"`
	Role         string            `json:"role"` // sendrecv, sendonly or recvonly
	ChannelID    string            `json:"channel_id"`
	ClientID     string            `json:"client_id"`
	BundleID     string            `json:"bundle_id,omitempty"` // newer Sora versions only
	SessionID    string            `json:"session_id"`
	ConnectionID string            `json:"connection_id"`
	Stats        []json.RawMessage `json:"stats"` // RTCStats dictionaries as the browser gave them
}

// ErlangVM is a node.erlang-vm message: the memory of a Sora node's Erlang VM.
type ErlangVM struct {
	Type      string           `json:"type"` // TypeErlangVM
	ID        string           `json:"id,omitempty"`
	Timestamp string           `json:"timestamp"`
	Label     string           `json:"label"`
	Version   string           `json:"version"`
	NodeName  string           `json:"node_name"`
	Stats     []ErlangVMMemory `json:"stats"`
}

// ErlangVMMemory is the erlang-vm-memory element of an ErlangVM message, in bytes.
type ErlangVMMemory struct {
	Type          string `json:"type"` // "erlang-vm-memory"
	Total         uint64 `json:"total"`
	Processes     uint64 `json:"processes"`
	ProcessesUsed uint64 `json:"processes_used"`
	System        uint64 `json:"system"`
	Atom          uint64 `json:"atom"`
	AtomUsed      uint64 `json:"atom_used"`
	Binary        uint64 `json:"binary"`
	Code          uint64 `json:"code"`
	ETS           uint64 `json:"ets"`
}
