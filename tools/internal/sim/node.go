package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// nodeTemplate is a captured node.erlang-vm report.
type nodeTemplate struct {
	label, version, nodeName json.RawMessage
	memory                   erlangMemory
}

// erlangMemory holds the figures of an erlang-vm-memory element, in bytes.
type erlangMemory struct {
	Total         float64 `json:"total"`
	Processes     float64 `json:"processes"`
	ProcessesUsed float64 `json:"processes_used"`
	System        float64 `json:"system"`
	Atom          float64 `json:"atom"`
	AtomUsed      float64 `json:"atom_used"`
	Binary        float64 `json:"binary"`
	Code          float64 `json:"code"`
	ETS           float64 `json:"ets"`
}

func parseNode(raw []byte) (nodeTemplate, error) {
	var env struct {
		Label    json.RawMessage `json:"label"`
		Version  json.RawMessage `json:"version"`
		NodeName json.RawMessage `json:"node_name"`
		Stats    []erlangMemory  `json:"stats"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nodeTemplate{}, fmt.Errorf("sim: template: decode node.erlang-vm report: %w", err)
	}
	if len(env.Stats) == 0 || env.Stats[0].Processes <= 0 || env.Stats[0].System <= 0 {
		return nodeTemplate{}, fmt.Errorf("sim: template: node.erlang-vm report has no memory figures")
	}
	return nodeTemplate{label: env.Label, version: env.Version, nodeName: env.NodeName, memory: env.Stats[0]}, nil
}

// Node simulates the Erlang VM of the Sora node that the connections are on. It is not safe
// for concurrent use.
type Node struct {
	t   *Template
	rng *rand.Rand
	mem erlangMemory
}

// NewNode returns the node of template t; seed makes its reports reproducible.
func NewNode(t *Template, seed uint64) *Node {
	return &Node{t: t, rng: rand.New(rand.NewPCG(seed, 0x6e6f6465)), mem: t.node.memory}
}

// Report returns the body of a node.erlang-vm report sent at now. Process and binary memory
// wander around the captured figures; total stays the sum of processes and system, and the
// used parts stay within their totals.
func (n *Node) Report(now time.Time) []byte {
	base, m := n.t.node.memory, &n.mem
	m.Processes = wander(n.rng, m.Processes, base.Processes, 0.05)
	m.ProcessesUsed = m.Processes * (0.995 + 0.005*n.rng.Float64())
	m.Binary = wander(n.rng, m.Binary, base.Binary, 0.2)
	m.ETS = wander(n.rng, m.ETS, base.ETS, 0.02)
	m.System = base.System - base.Binary - base.ETS + m.Binary + m.ETS
	m.Total = m.Processes + m.System
	if n.rng.Float64() < 0.1 && m.AtomUsed < m.Atom { // new atoms are rare and never freed
		m.AtomUsed++
	}

	b := make([]byte, 0, 512)
	b = append(b, `{"type":"node.erlang-vm","id":`...)
	b = appendString(b, newID(now, n.rng))
	b = append(b, `,"timestamp":`...)
	b = appendString(b, now.UTC().Format(timestampLayout))
	b = append(b, `,"label":`...)
	b = append(b, n.t.node.label...)
	b = append(b, `,"version":`...)
	b = append(b, n.t.node.version...)
	b = append(b, `,"node_name":`...)
	b = append(b, n.t.node.nodeName...)
	b = append(b, `,"stats":[{"type":"erlang-vm-memory"`...)
	for _, f := range [...]struct {
		name string
		v    float64
	}{
		{"total", m.Total}, {"processes", m.Processes}, {"processes_used", m.ProcessesUsed},
		{"system", m.System}, {"atom", m.Atom}, {"atom_used", m.AtomUsed},
		{"binary", m.Binary}, {"code", m.Code}, {"ets", m.ETS},
	} {
		b = append(b, `,"`...)
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, uint64(max(f.v, 0)), 10)
	}
	return append(b, "}]}"...)
}

// wander moves v a random step of at most rel times base, pulled back towards base so that
// it never drifts far.
func wander(rng *rand.Rand, v, base, rel float64) float64 {
	v += (base-v)*0.2 + base*rel*(2*rng.Float64()-1)
	return max(v, base*(1-3*rel), 0)
}
