package sora

import "kohaku/pkg/jsonscan"

// BodyType returns the decoded value of body's top-level "type" member, the last one if it
// repeats, or "" when body is not a JSON object, has no such member or it is not a string.
// The stats webhook's receiver calls it when a request has no sora-stats-webhook-type
// header, so that the body decides; Validate then checks the rest.
func BodyType(body []byte) string {
	s := scanner{data: body}
	if !s.consume('{') {
		return ""
	}
	var typ string
	s.members("", func(key string, _ []byte, _ bool) bool {
		k, raw, escaped := s.skip(key, 1)
		if key == "type" {
			typ = ""
			if k == kindString {
				typ = string(raw)
				if escaped {
					typ = string(jsonscan.Unescape(nil, raw))
				}
			}
		}
		return true
	})
	if s.err != nil {
		return ""
	}
	return typ
}
