// Package hl7 is the bridge's HL7 v2 toolkit for device results: a neutral
// model of one device report, an encoder for ORU^R01 messages as IHE PCD-01
// ("Communicate PCD Data", IHE PCD TF-2) over HL7 v2.6, escaping, an
// acknowledgement (ACK) parser and builder, MLLP framing (HL7
// Implementation Guide, Appendix C, Release 1 block format), and an MLLP
// client: Sender (one persistent connection, one message in flight, ACK
// matched on MSA-2) and Pool (connections sharded by patient).
//
// It is a leaf package: standard library only, no cgo, no other project
// package. The encoder holds no state and never reads the clock: every time
// and every identifier comes from the caller, so encoding is deterministic
// and golden files stay stable. Sender and Pool hold connections and use the
// clock only for deadlines and reconnect backoff.
//
// # Encoding rules
//
// Messages use the default delimiters |^~\& (MSH-1, MSH-2) and end every
// segment, including the last, with a carriage return (0x0D). Every text
// value is escaped (HL7 v2 chapter 2): | ^ & ~ \ become \F\ \S\ \T\ \R\ \E\,
// and control characters (C0 and DEL, including CR and LF) become \Xhh\, so
// no caller value can add a field, component or segment, and no value can
// contain the MLLP block characters 0x0B and 0x1C. Trailing empty fields
// and components are omitted. Text must be valid UTF-8 and MSH-18 always
// declares "UNICODE UTF-8".
//
// Timestamps are written as HL7 DTM, YYYYMMDDHHMMSS[.S[S[S[S]]]]+/-ZZZZ:
// seconds are always present, the fraction has as many digits as the time's
// sub-second part needs (at most four; finer parts are truncated) and the
// UTC offset of the time's location is always written.
//
// # Message layout
//
// [ORU.Append] writes, in order:
//
//	MSH  MSH-9 ORU^R01^ORU_R01, MSH-12 2.6, MSH-21 the PCD-01 profile
//	PID  PID-3 CX (ID^^^AssigningAuthority^IdentifierType), PID-5 XPN
//	PV1  only when ORU.PatientClass is set (PV1-2)
//	OBR  OBR-1 1, OBR-2/3 order numbers, OBR-4 service, OBR-7/8 times
//	OBX  one per ORU.Observations entry, OBX-1 numbered from 1
//
// A message carries exactly one OBR group; PCD-01 allows several, the bridge
// sends one device report per message.
//
// # OBX-4 containment (PCD-01)
//
// OBX-4 carries the IEEE 11073 containment path MDS.VMD.CHAN.METRIC as dotted
// numbers. A monitor feed gives every level its own OBX row: the MDS row
// 1.0.0.0 (device code, for example 69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC),
// a VMD row such as 1.13.0.0, a channel row 1.13.1.0, then the metrics
// 1.13.1.1, 1.13.1.2 and so on. Personal health devices (Continua/PHD style)
// send a device row with the plain sub-id 1 (a device specialization code,
// for example 528391^MDC_DEV_SPEC_PROFILE_BP^MDC) and metrics 1.0.0.n; a
// compound such as non-invasive blood pressure may have its own row 1.0.1
// with its parts at 1.0.1.1, 1.0.1.2, 1.0.1.3. Header rows have no value
// and the result status X. The package does not invent the tree: the caller
// gives each OBX its Hierarchy, which must be dotted decimal numbers.
//
// # Decisions on points the standards digest leaves open
//
//   - MSH-21 defaults to "IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
//     the form the NIST/IHE PCD-01 validator checks; vendors also send
//     "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO", which a caller
//     can set in ORU.Profile.
//   - MSH-15/MSH-16 default to NE/AL (no accept acknowledgement, always an
//     application acknowledgement), as in the NIST validator and Continua
//     examples; both are configurable per partner (AL/NE is common in
//     monitor feeds). The two are always written, so enhanced mode applies.
//   - PV1 is written only when ORU.PatientClass is set: PCD-01 makes PV1
//     optional and remote monitoring usually has no encounter.
//   - An unknown patient name is written as ^^^^^^U (name type U,
//     unspecified), as device gateways do, rather than leaving the required
//     PID-5 empty.
//   - OBX-18 for a device is EUI^^EUI^EUI-64 (see [EUI64]): the EUI-64 in
//     EI-1 and EI-3 and the type EUI-64 from HL7 table 0301 in EI-4.
//   - A value that could not be obtained is an OBX with no value type and no
//     value and result status X (table 0085 "cannot be obtained"). Value type
//     NA is the numeric array type, not "not available", so it is not used.
//   - OBX-11 defaults to F when the OBX has a value and to X when it has
//     none (header rows and unobtainable values).
//   - OBX-20 (observation site) is written although v2.6 reserves it: PCD-01
//     pre-adopts it from v2.7.
//
// # Acknowledgements
//
// [ParseACK] reads an ACK whatever its segment terminators (CR, LF or CRLF)
// and delimiters, and [ACK.Accepted], [ACK.Retryable] and [ACK.Permanent]
// classify it following the sender policy of standards digest section 5.8.
// [NewACK] builds the answer a receiver gives, for test servers.
//
// # MLLP
//
// [AppendFrame] wraps a message in a block <0x0B> message <0x1C><0x0D>, and
// [Reader] reads blocks back with a size limit. [Sender] sends one message
// at a time over a persistent connection and waits for the ACK whose MSA-2
// is the message's MSH-10, discarding others (late ACKs); on a timeout or
// any I/O error it closes the connection, so a late ACK can never be taken
// for a later message, and it never resends: retrying is the caller's
// decision. [Pool] spreads messages over several Senders by a stable hash of
// the patient, keeping each patient's order.
package hl7
