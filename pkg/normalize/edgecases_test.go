package normalize

// edgeCase is a stats array that browsers or future versions could send, and what its rows
// must hold.
type edgeCase struct {
	name      string
	stats     string
	tables    map[string]int // rows per table
	columns   []colWant      // column values of the first row of a table
	extraKeys []string       // the members in extra of the first row of the only table
}

type colWant struct {
	table, column string
	want          any
}

// edgeCases returns the stats arrays that TestMessageKeepsEdgeCasesLossless and
// TestCopyIntoSchema run through.
func edgeCases() []edgeCase {
	return []edgeCase{{
		name:      "candidate-pair priority beyond 2^63 as a float stays in extra",
		stats:     `[{"id":"CP","type":"candidate-pair","timestamp":1,"priority":1.8446744073709552e19,"state":"succeeded"}]`,
		tables:    map[string]int{"rtc_candidate_pair_stats": 1},
		columns:   []colWant{{"rtc_candidate_pair_stats", "state", "succeeded"}},
		extraKeys: []string{"priority"},
	}, {
		name:    "negative packetsLost is a bigint",
		stats:   `[{"id":"R","type":"remote-inbound-rtp","timestamp":1,"ssrc":1,"kind":"audio","packetsLost":-12}]`,
		tables:  map[string]int{"rtc_remote_inbound_rtp_stats": 1},
		columns: []colWant{{"rtc_remote_inbound_rtp_stats", "packets_lost", int64(-12)}},
	}, {
		name:    "qualityLimitationDurations record is jsonb",
		stats:   `[{"id":"O","type":"outbound-rtp","timestamp":1,"qualityLimitationDurations":{"none":1.5,"cpu":0,"bandwidth":2e-7,"other":0}}]`,
		tables:  map[string]int{"rtc_outbound_rtp_stats": 1},
		columns: []colWant{{"rtc_outbound_rtp_stats", "quality_limitation_durations", `{"none":1.5,"cpu":0,"bandwidth":2e-7,"other":0}`}},
	}, {
		name:      "a string where a number is expected goes to extra",
		stats:     `[{"id":"I","type":"inbound-rtp","timestamp":"now","ssrc":"1","kind":"audio","bytesReceived":"12"}]`,
		tables:    map[string]int{"rtc_inbound_rtp_stats": 1},
		columns:   []colWant{{"rtc_inbound_rtp_stats", "ssrc", nil}, {"rtc_inbound_rtp_stats", "stats_timestamp", nil}, {"rtc_inbound_rtp_stats", "kind", "audio"}},
		extraKeys: []string{"bytesReceived", "ssrc", "timestamp"},
	}, {
		name:      "a number where a string is expected goes to extra",
		stats:     `[{"id":"C","type":"codec","timestamp":1,"mimeType":5,"payloadType":true}]`,
		tables:    map[string]int{"rtc_codec_stats": 1},
		extraKeys: []string{"mimeType", "payloadType"},
	}, {
		name:      "unknown members go to extra",
		stats:     `[{"id":"T","type":"transport","timestamp":1,"dtlsState":"connected","newMember":[1,2],"googX":"y"}]`,
		tables:    map[string]int{"rtc_transport_stats": 1},
		columns:   []colWant{{"rtc_transport_stats", "dtls_state", "connected"}},
		extraKeys: []string{"googX", "newMember"},
	}, {
		name:    "missing transportId leaves the column NULL",
		stats:   `[{"id":"L","type":"local-candidate","timestamp":1,"address":"192.0.2.1","port":9,"candidateType":"host"}]`,
		tables:  map[string]int{"rtc_ice_candidate_stats": 1},
		columns: []colWant{{"rtc_ice_candidate_stats", "transport_id", nil}, {"rtc_ice_candidate_stats", "port", int64(9)}, {"rtc_ice_candidate_stats", "stats_type", "local-candidate"}},
	}, {
		name:    "elements without type or id go whole to rtc_other_stats",
		stats:   `[{"timestamp":1,"a":1},{"type":"codec","mimeType":"audio/opus"},{"id":"X","kind":"video"},{"id":5,"type":"codec"},{"id":"U","type":7}]`,
		tables:  map[string]int{"rtc_other_stats": 5},
		columns: []colWant{{"rtc_other_stats", "stats_id", "stats[0]"}, {"rtc_other_stats", "stats_timestamp", float64(1)}},
	}, {
		name:    "an unknown type goes to rtc_other_stats under its id",
		stats:   `[{"id":"track1","type":"track","timestamp":1,"frameWidth":640}]`,
		tables:  map[string]int{"rtc_other_stats": 1},
		columns: []colWant{{"rtc_other_stats", "stats_id", "track1"}, {"rtc_other_stats", "stats_type", "track"}},
	}, {
		name:      "a null member goes to extra",
		stats:     `[{"id":"L","type":"remote-candidate","timestamp":1,"address":null,"transportId":null}]`,
		tables:    map[string]int{"rtc_ice_candidate_stats": 1},
		columns:   []colWant{{"rtc_ice_candidate_stats", "address", nil}},
		extraKeys: []string{"address", "transportId"},
	}, {
		name:      "integers beyond int64 and fractions in integer columns go to extra",
		stats:     `[{"id":"T","type":"transport","timestamp":1,"bytesSent":18446744073709551615,"bytesReceived":9223372036854775807,"packetsSent":1.5,"packetsReceived":1e3,"big":123456789012345678901234567890}]`,
		tables:    map[string]int{"rtc_transport_stats": 1},
		columns:   []colWant{{"rtc_transport_stats", "bytes_received", int64(9223372036854775807)}},
		extraKeys: []string{"big", "bytesSent", "packetsReceived", "packetsSent"},
	}, {
		name:      "floats that float64 does not hold exactly go to extra",
		stats:     `[{"id":"P","type":"candidate-pair","timestamp":1.00000000000000000001,"totalRoundTripTime":0.1,"currentRoundTripTime":1e400,"availableOutgoingBitrate":1e-400,"availableIncomingBitrate":123456789.123456789}]`,
		tables:    map[string]int{"rtc_candidate_pair_stats": 1},
		columns:   []colWant{{"rtc_candidate_pair_stats", "total_round_trip_time", 0.1}},
		extraKeys: []string{"availableIncomingBitrate", "availableOutgoingBitrate", "currentRoundTripTime", "timestamp"},
	}, {
		name:    "floats written with exponents or many digits stay in columns when exact",
		stats:   `[{"id":"P","type":"candidate-pair","timestamp":1.7643654002501233e12,"totalRoundTripTime":5e-324,"currentRoundTripTime":1.7976931348623157e308,"availableOutgoingBitrate":-0,"availableIncomingBitrate":0.30000000000000004}]`,
		tables:  map[string]int{"rtc_candidate_pair_stats": 1},
		columns: []colWant{{"rtc_candidate_pair_stats", "available_incoming_bitrate", 0.30000000000000004}, {"rtc_candidate_pair_stats", "total_round_trip_time", 5e-324}},
	}, {
		name:      "nested objects and arrays go to extra as they are",
		stats:     `[{"id":"O","type":"outbound-rtp","timestamp":1,"nested":{"a":[1,{"b":null}],"c":"\u00e9\n"},"qualityLimitationDurations":[1,2]}]`,
		tables:    map[string]int{"rtc_outbound_rtp_stats": 1},
		columns:   []colWant{{"rtc_outbound_rtp_stats", "quality_limitation_durations", nil}},
		extraKeys: []string{"nested", "qualityLimitationDurations"},
	}, {
		name:    "a repeated id goes to rtc_other_stats so that the natural key holds",
		stats:   `[{"id":"C","type":"codec","timestamp":1,"payloadType":1},{"id":"C","type":"codec","timestamp":1,"payloadType":2},{"id":"stats[1]","type":"x"},{"id":"C","type":"codec"}]`,
		tables:  map[string]int{"rtc_codec_stats": 1, "rtc_other_stats": 3},
		columns: []colWant{{"rtc_codec_stats", "payload_type", int64(1)}, {"rtc_other_stats", "stats_id", "stats[1]"}},
	}, {
		name:      "repeated members: the last one counts",
		stats:     `[{"id":"A","type":"inbound-rtp","id":"B","timestamp":"x","timestamp":2,"ssrc":1,"ssrc":"two","kind":"a","kind":"video","type":"codec","zz":1,"zz":2}]`,
		tables:    map[string]int{"rtc_codec_stats": 1},
		columns:   []colWant{{"rtc_codec_stats", "stats_id", "B"}, {"rtc_codec_stats", "stats_timestamp", float64(2)}},
		extraKeys: []string{"kind", "ssrc", "zz"},
	}, {
		name:      "escaped member names and strings are decoded",
		stats:     `[{"\u0069d":"E\u0301","type":"data-channel","timestamp":1,"l\u0061bel":"\ud83d\ude00","protocol":"\ud800","a\"b":"\\u0000"}]`,
		tables:    map[string]int{"rtc_data_channel_stats": 1},
		columns:   []colWant{{"rtc_data_channel_stats", "stats_id", "E\u0301"}, {"rtc_data_channel_stats", "label", "\U0001F600"}, {"rtc_data_channel_stats", "protocol", "\uFFFD"}},
		extraKeys: []string{`a"b`},
	}, {
		name:   "an empty stats array gives only the connection",
		stats:  `[]`,
		tables: map[string]int{},
	}}
}
