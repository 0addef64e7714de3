// Package importer writes the reports of Sora's rtc_stats.jsonl logs into the database.
//
// With rtc_stats_log = true Sora writes every RTCStats object of a stats webhook report
// to log/rtc_stats.jsonl, one JSON object per line: the webhook's top-level members but
// stats, plus rtc_id, rtc_type, rtc_timestamp, rtc_data (the object as the client sent it)
// and log_written. The lines of one report share its id and come one after another.
//
// [Reader] rebuilds each report's webhook body from its lines, copying every member as
// the raw JSON it was written as, so that the body gives exactly the rows that the
// webhook delivering it gives. [Import] validates and normalizes those bodies and has the
// store write them in batches, as the stream's messages are written: natural keys make
// an import idempotent, also with the reports that the webhook delivered.
package importer
