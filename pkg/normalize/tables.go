package normalize

// valueKind is how a member's JSON value is held in Go and in PostgreSQL.
type valueKind uint8

// The kinds of typed columns. A JSON value that does not fit its column's kind exactly goes
// to the row's extra column instead (see Message).
const (
	kindInt   valueKind = iota + 1 // int64, bigint: WebIDL (unsigned) short, long, long long
	kindFloat                      // float64, double precision: double, DOMHighResTimeStamp
	kindText                       // string, text: DOMString and enums
	kindBool                       // bool, boolean
	kindJSON                       // []byte holding JSON, jsonb: record<DOMString, double>
	kindTime                       // time.Time, timestamptz: the message time
)

// sqlType returns the PostgreSQL type of a column of kind k.
func (k valueKind) sqlType() string {
	switch k {
	case kindInt:
		return "bigint"
	case kindFloat:
		return "double precision"
	case kindText:
		return "text"
	case kindBool:
		return "boolean"
	case kindJSON:
		return "jsonb"
	case kindTime:
		return "timestamptz"
	}
	return ""
}

// member is one typed column: a JSON member and the kind of its column. The column is
// named after the member (see columnName).
type member struct {
	json string
	kind valueKind
}

// statsTable describes one rtc_<type>_stats table: the RTCStats types stored in it and
// its typed columns, in the order of the specification's dictionaries (the inherited
// members first).
type statsTable struct {
	name       string
	types      []string // the RTCStatsType values; more than one adds a stats_type column
	dictionary string   // the W3C dictionary the members come from, for the SQL comment
	members    []member
}

// Shorthands that keep the member lists below readable.
func integer(name string) member { return member{name, kindInt} }
func double(name string) member  { return member{name, kindFloat} }
func text(name string) member    { return member{name, kindText} }
func boolean(name string) member { return member{name, kindBool} }
func record(name string) member  { return member{name, kindJSON} }

// join concatenates member lists, so an inheriting dictionary lists its parents' members.
func join(lists ...[]member) []member {
	var out []member
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// statsTables returns the typed tables. The member lists are those of the dictionaries in
// W3C "Identifiers for WebRTC's Statistics API" (editor's draft, the IDL that webref extracts
// from it), without the members of its "obsolete" section: obsolete and non-standard
// members (Chrome's googTimingFrameInfo, candidate-pair priority) are kept in extra.
// RTCStats' timestamp, type and id are the leading stats_timestamp, stats_type and
// stats_id columns. WebIDL types map to kinds as: (unsigned) short, long and long long ->
// kindInt; double and DOMHighResTimeStamp -> kindFloat; DOMString and enums -> kindText;
// boolean -> kindBool; record<DOMString, double> -> kindJSON.
func statsTables() []statsTable {
	// RTCRtpStreamStats
	rtpStream := []member{integer("ssrc"), text("kind"), text("transportId"), text("codecId")}
	// RTCReceivedRtpStreamStats : RTCRtpStreamStats
	receivedRTPStream := join(rtpStream, []member{
		integer("packetsReceived"), integer("packetsReceivedWithEct1"),
		integer("packetsReceivedWithCe"), integer("packetsReportedAsLost"),
		integer("packetsReportedAsLostButRecovered"), integer("packetsLost"), double("jitter"),
	})
	// RTCSentRtpStreamStats : RTCRtpStreamStats
	sentRTPStream := join(rtpStream, []member{integer("packetsSent"), integer("bytesSent")})

	return []statsTable{{
		name: "rtc_codec_stats", types: []string{"codec"}, dictionary: "RTCCodecStats",
		members: []member{
			integer("payloadType"), text("transportId"), text("mimeType"), integer("clockRate"),
			integer("channels"), text("sdpFmtpLine"),
		},
	}, {
		name: "rtc_inbound_rtp_stats", types: []string{"inbound-rtp"}, dictionary: "RTCInboundRtpStreamStats",
		members: join(receivedRTPStream, []member{
			text("trackIdentifier"), text("mid"), text("remoteId"), integer("framesDecoded"),
			integer("keyFramesDecoded"), integer("framesRendered"), integer("framesDropped"),
			integer("frameWidth"), integer("frameHeight"), double("framesPerSecond"),
			integer("qpSum"), double("totalDecodeTime"), double("totalInterFrameDelay"),
			double("totalSquaredInterFrameDelay"), integer("pauseCount"),
			double("totalPausesDuration"), integer("freezeCount"), double("totalFreezesDuration"),
			double("lastPacketReceivedTimestamp"), integer("headerBytesReceived"),
			integer("packetsDiscarded"), integer("fecBytesReceived"), integer("fecPacketsReceived"),
			integer("fecPacketsDiscarded"), integer("bytesReceived"), integer("nackCount"),
			integer("firCount"), integer("pliCount"), double("totalProcessingDelay"),
			double("estimatedPlayoutTimestamp"), double("jitterBufferDelay"),
			double("jitterBufferTargetDelay"), integer("jitterBufferEmittedCount"),
			double("jitterBufferMinimumDelay"), integer("totalSamplesReceived"),
			integer("concealedSamples"), integer("silentConcealedSamples"),
			integer("concealmentEvents"), integer("insertedSamplesForDeceleration"),
			integer("removedSamplesForAcceleration"), double("audioLevel"),
			double("totalAudioEnergy"), double("totalSamplesDuration"), integer("framesReceived"),
			text("decoderImplementation"), text("playoutId"), boolean("powerEfficientDecoder"),
			integer("framesAssembledFromMultiplePackets"), double("totalAssemblyTime"),
			integer("retransmittedPacketsReceived"), integer("retransmittedBytesReceived"),
			integer("rtxSsrc"), integer("fecSsrc"), double("totalCorruptionProbability"),
			double("totalSquaredCorruptionProbability"), integer("corruptionMeasurements"),
		}),
	}, {
		name: "rtc_outbound_rtp_stats", types: []string{"outbound-rtp"}, dictionary: "RTCOutboundRtpStreamStats",
		members: join(sentRTPStream, []member{
			text("mid"), text("mediaSourceId"), text("remoteId"), text("rid"),
			integer("encodingIndex"), integer("headerBytesSent"),
			integer("retransmittedPacketsSent"), integer("retransmittedBytesSent"),
			integer("rtxSsrc"), double("targetBitrate"), integer("totalEncodedBytesTarget"),
			integer("frameWidth"), integer("frameHeight"), double("framesPerSecond"),
			integer("framesSent"), integer("hugeFramesSent"), integer("framesEncoded"),
			integer("keyFramesEncoded"), integer("qpSum"), record("psnrSum"),
			integer("psnrMeasurements"),
			double("totalEncodeTime"), double("totalPacketSendDelay"),
			text("qualityLimitationReason"), record("qualityLimitationDurations"),
			integer("qualityLimitationResolutionChanges"), integer("nackCount"),
			integer("firCount"), integer("pliCount"), text("encoderImplementation"),
			boolean("powerEfficientEncoder"), boolean("active"), text("scalabilityMode"),
			integer("packetsSentWithEct1"),
		}),
	}, {
		name: "rtc_remote_inbound_rtp_stats", types: []string{"remote-inbound-rtp"}, dictionary: "RTCRemoteInboundRtpStreamStats",
		members: join(receivedRTPStream, []member{
			text("localId"), double("roundTripTime"), double("totalRoundTripTime"),
			double("fractionLost"), integer("roundTripTimeMeasurements"),
			integer("packetsWithBleachedEct1Marking"),
		}),
	}, {
		name: "rtc_remote_outbound_rtp_stats", types: []string{"remote-outbound-rtp"}, dictionary: "RTCRemoteOutboundRtpStreamStats",
		members: join(sentRTPStream, []member{
			text("localId"), double("remoteTimestamp"), integer("reportsSent"),
			double("roundTripTime"), double("totalRoundTripTime"),
			integer("roundTripTimeMeasurements"),
		}),
	}, {
		// One table for both kinds of media source: the members of RTCMediaSourceStats,
		// then RTCAudioSourceStats', then RTCVideoSourceStats'.
		name: "rtc_media_source_stats", types: []string{"media-source"}, dictionary: "RTCAudioSourceStats and RTCVideoSourceStats",
		members: []member{
			text("trackIdentifier"), text("kind"), double("audioLevel"), double("totalAudioEnergy"),
			double("totalSamplesDuration"), double("echoReturnLoss"),
			double("echoReturnLossEnhancement"), integer("width"), integer("height"),
			integer("frames"), double("framesPerSecond"),
		},
	}, {
		name: "rtc_media_playout_stats", types: []string{"media-playout"}, dictionary: "RTCAudioPlayoutStats",
		members: []member{
			text("kind"), double("synthesizedSamplesDuration"), integer("synthesizedSamplesEvents"),
			double("totalSamplesDuration"), double("totalPlayoutDelay"),
			integer("totalSamplesCount"),
		},
	}, {
		name: "rtc_peer_connection_stats", types: []string{"peer-connection"}, dictionary: "RTCPeerConnectionStats",
		members: []member{integer("dataChannelsOpened"), integer("dataChannelsClosed")},
	}, {
		name: "rtc_data_channel_stats", types: []string{"data-channel"}, dictionary: "RTCDataChannelStats",
		members: []member{
			text("label"), text("protocol"), integer("dataChannelIdentifier"), text("state"),
			integer("messagesSent"), integer("bytesSent"), integer("messagesReceived"),
			integer("bytesReceived"),
		},
	}, {
		name: "rtc_transport_stats", types: []string{"transport"}, dictionary: "RTCTransportStats",
		members: []member{
			integer("packetsSent"), integer("packetsReceived"), integer("bytesSent"),
			integer("bytesReceived"), text("iceRole"), text("iceLocalUsernameFragment"),
			text("dtlsState"), text("iceState"), text("selectedCandidatePairId"),
			text("localCertificateId"), text("remoteCertificateId"), text("tlsVersion"),
			text("dtlsCipher"), text("dtlsRole"), text("srtpCipher"),
			integer("selectedCandidatePairChanges"), integer("ccfbMessagesSent"),
			integer("ccfbMessagesReceived"),
		},
	}, {
		name: "rtc_candidate_pair_stats", types: []string{"candidate-pair"}, dictionary: "RTCIceCandidatePairStats",
		members: []member{
			text("transportId"), text("localCandidateId"), text("remoteCandidateId"), text("state"),
			boolean("nominated"), integer("packetsSent"), integer("packetsReceived"),
			integer("bytesSent"), integer("bytesReceived"), double("lastPacketSentTimestamp"),
			double("lastPacketReceivedTimestamp"), double("totalRoundTripTime"),
			double("currentRoundTripTime"), double("availableOutgoingBitrate"),
			double("availableIncomingBitrate"), integer("requestsReceived"),
			integer("requestsSent"), integer("responsesReceived"), integer("responsesSent"),
			integer("consentRequestsSent"), integer("packetsDiscardedOnSend"),
			integer("bytesDiscardedOnSend"),
		},
	}, {
		name: "rtc_ice_candidate_stats", types: []string{"local-candidate", "remote-candidate"}, dictionary: "RTCIceCandidateStats",
		members: []member{
			text("transportId"), text("address"), integer("port"), text("protocol"),
			text("candidateType"), integer("priority"), text("url"), text("relayProtocol"),
			text("foundation"), text("relatedAddress"), integer("relatedPort"),
			text("usernameFragment"), text("tcpType"),
		},
	}, {
		name: "rtc_certificate_stats", types: []string{"certificate"}, dictionary: "RTCCertificateStats",
		members: []member{
			text("fingerprint"), text("fingerprintAlgorithm"), text("base64Certificate"),
			text("issuerCertificateId"),
		},
	}}
}

// erlangVMMembers are the memory figures of a node.erlang-vm message's "erlang-vm-memory"
// element, in bytes (Erlang's erlang:memory/0), named as Sora sends them.
func erlangVMMembers() []member {
	return []member{
		integer("total"), integer("processes"), integer("processes_used"), integer("system"),
		integer("atom"), integer("atom_used"), integer("binary"), integer("code"), integer("ets"),
	}
}

// erlangVMType is the type of the element that becomes a sora_node_erlang_vm_memory row.
const erlangVMType = "erlang-vm-memory"
