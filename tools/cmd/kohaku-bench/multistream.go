package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// multistreamStreams is how many received streams the large report has: a multistream
// room of 51 participants, each sending audio and video, as seen by one of them. Each
// stream adds an inbound-rtp, a remote-outbound-rtp and a codec element, about 2 KB.
const multistreamStreams = 100

// multistream returns report, a connection.user-agent or connection.rtc body, with
// streams received streams added to its stats: for each, a copy of report's inbound-rtp
// element of that kind (audio for even streams, video for odd ones), of its
// remote-outbound-rtp and of its codec, with ids, SSRCs, track and mid of their own and
// linked to each other as the originals are. The rest of report, its envelope timestamp
// included, is kept byte for byte.
func multistream(report []byte, streams int) ([]byte, error) {
	start, end, elements, err := statsArray(report)
	if err != nil {
		return nil, err
	}
	type stream struct{ inbound, remote, codec map[string]any }
	byKind := map[string]*stream{}
	byID := map[string]map[string]any{}
	for _, raw := range elements {
		e, err := decodeElement(raw)
		if err != nil {
			return nil, err
		}
		id, _ := e["id"].(string)
		byID[id] = e
		if kind, _ := e["kind"].(string); e["type"] == "inbound-rtp" && byKind[kind] == nil {
			byKind[kind] = &stream{inbound: e}
		}
	}
	for kind, s := range byKind {
		remoteID, _ := s.inbound["remoteId"].(string)
		codecID, _ := s.inbound["codecId"].(string)
		s.remote, s.codec = byID[remoteID], byID[codecID]
		if s.remote == nil || s.codec == nil {
			return nil, fmt.Errorf("multistream: the %s inbound-rtp element lacks its remote-outbound-rtp or codec", kind)
		}
	}
	kinds := []*stream{byKind["audio"], byKind["video"]}
	if kinds[0] == nil || kinds[1] == nil {
		return nil, errors.New("multistream: the report lacks an audio or a video inbound-rtp element")
	}

	var out bytes.Buffer
	out.Grow(len(report) + 2100*streams)
	out.Write(report[:start])
	out.WriteByte('[')
	for i, raw := range elements {
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(raw)
	}
	for i := range streams {
		s := kinds[i%2]
		letter := "A"
		if i%2 == 1 {
			letter = "V"
		}
		ssrc := 1_000_000 + i
		inbound, remote := "IT01"+letter+strconv.Itoa(ssrc), "RO"+letter+strconv.Itoa(ssrc)
		codec := fmt.Sprintf("%s-%d", s.codec["id"], i)
		for _, e := range []map[string]any{
			with(s.inbound, map[string]any{"id": inbound, "ssrc": ssrc, "codecId": codec, "remoteId": remote,
				"mid": strconv.Itoa(2 + i), "trackIdentifier": fmt.Sprintf("kohaku-bench-track-%04d", i)}),
			with(s.remote, map[string]any{"id": remote, "ssrc": ssrc, "codecId": codec, "localId": inbound}),
			with(s.codec, map[string]any{"id": codec}),
		} {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("multistream: %w", err)
			}
			out.WriteByte(',')
			out.Write(b)
		}
	}
	out.WriteByte(']')
	out.Write(report[end:])
	return out.Bytes(), nil
}

// statsArray returns where the text of report's top-level "stats" array starts ('[') and
// ends (after ']'), and its elements.
func statsArray(report []byte) (start, end int, elements []json.RawMessage, err error) {
	dec := json.NewDecoder(bytes.NewReader(report))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, nil, fmt.Errorf("multistream: the report is no JSON object (%v)", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, nil, fmt.Errorf("multistream: %w", err)
		}
		if tok != "stats" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, 0, nil, fmt.Errorf("multistream: %w", err)
			}
			continue
		}
		after := int(dec.InputOffset())
		if err := dec.Decode(&elements); err != nil {
			return 0, 0, nil, fmt.Errorf("multistream: stats: %w", err)
		}
		return after + bytes.IndexByte(report[after:], '['), int(dec.InputOffset()), elements, nil
	}
	return 0, 0, nil, errors.New("multistream: the report has no stats")
}

// decodeElement decodes a stats element, keeping its numbers' text.
func decodeElement(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var e map[string]any
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("multistream: stats element: %w", err)
	}
	return e, nil
}

// with returns a copy of e with the members of set set; a member e lacks stays absent.
func with(e, set map[string]any) map[string]any {
	out := make(map[string]any, len(e))
	for k, v := range e {
		out[k] = v
	}
	for k, v := range set {
		if _, ok := e[k]; ok {
			out[k] = v
		}
	}
	return out
}
