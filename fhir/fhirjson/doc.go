// Package fhirjson writes the FHIR R4 resources the bridge emits,
// Observation and Device, as compact FHIR JSON, by appending bytes
// directly: no reflection, no intermediate maps, no encoding/json. It
// replaces google/fhir's fhirvalidate.Validate plus jsonformat marshalling
// on the bridge's hot path (70 to 130 times faster, no allocation with a
// reused buffer), and stays semantically identical to it: for every
// resource in the supported subset, google/fhir's validating unmarshaller
// reads fhirjson's output and jsonformat's to the same proto, and both are
// the same JSON value. The differential tests in this package and in
// mappers (fhirjson_diff_test.go) hold it to that, with google/fhir as the
// referee (package fhirjsontest).
//
// # JSON rules
//
// Output follows the FHIR R4 JSON representation,
// https://hl7.org/fhir/R4/json.html: "resourceType" first, then the
// elements in the order of the resource definition; choice elements named
// with their type (valueQuantity, effectiveDateTime); repeating elements as
// arrays; absent elements left out. Primitives:
//
//   - decimal: the proto's literal as it is, so precision survives (72.50
//     stays 72.50; 1e3 stays 1e3), after checking the R4 decimal pattern;
//   - integer, positiveInt, unsignedInt, boolean: JSON numbers and booleans;
//   - string, code, id, uri, url, canonical, markdown: JSON strings escaped
//     as encoding/json escapes them (what jsonformat writes through): '"',
//     '\\' and control characters, U+2028 and U+2029; invalid UTF-8 as
//     U+FFFD;
//   - dateTime, instant, date: value_us in the proto's timezone at its
//     precision, as jsonformat writes them: timezone "Z" gives a literal Z,
//     anything else is resolved like jsonformat (time.LoadLocation, then a
//     leniently parsed "±h:m") and written as a numeric offset, so "UTC",
//     "" and "Local" give "+00:00" and "Europe/Paris" the zone's offset at
//     that instant, truncated to the minute (Go's -07:00 layout; an LMT
//     offset such as +00:19:32 prints as +00:19). Fractions are truncated
//     to milliseconds or microseconds. "±hh:mm" is parsed directly and
//     named zones are cached, instead of jsonformat's tzdata lookup on
//     every call;
//   - time: value_us as the time of day;
//   - codes bound to a value set (status, use, comparator, ...): the FHIR
//     code; an unset (zero) code is left out, as jsonformat does;
//   - typed references (Reference.patientId and its 148 siblings) as
//     "reference": "Type/id" or "Type/id/_history/version", a fragment as
//     "#id", without rewriting the message (jsonformat rewrites it in
//     place), so one message may be encoded from several goroutines.
//
// # Supported subset
//
// Observation: every element except text (Narrative), contained and
// effectiveTiming. That is id, meta, implicitRules, language, extension,
// modifierExtension, identifier, basedOn, partOf, status, category, code,
// subject, focus, encounter, effective[x] (dateTime, Period, instant),
// issued, performer, value[x] (Quantity, CodeableConcept, string, boolean,
// integer, Range, Ratio, SampledData, time, dateTime, Period),
// dataAbsentReason, interpretation, note, bodySite, method, specimen,
// device, referenceRange (low, high, type, appliesTo, age, text), hasMember,
// derivedFrom and component (code, value[x] as above, dataAbsentReason,
// interpretation, referenceRange).
//
// Device: every element except text, contained, udiCarrier and contact.
//
// Datatypes: Meta, Identifier, CodeableConcept, Coding, Quantity,
// SimpleQuantity, Period, Range, Ratio, SampledData (origin, period,
// factor, lowerLimit, upperLimit, dimensions, data), Reference, Annotation
// and Extension, with id and extension on every complex element and
// modifierExtension on backbone elements. Extension value[x]: boolean,
// canonical, code, date, dateTime, decimal, id, instant, integer,
// markdown, positiveInt, string, time, unsignedInt, uri, url,
// CodeableConcept, Coding, Identifier, Period, Quantity, Range, Ratio,
// Reference and SampledData.
//
// Outside the subset fhirjson returns an error and writes nothing; it
// never drops a set field. That covers the elements above and the other
// extension value types, and any id or extension on a primitive value
// (FHIR's "_element" form), which the bridge never sets.
//
// # Checks
//
// fhirjson checks what google/fhir's validator checks, and returns an
// *Error naming the element (e.g. "Observation.status: required",
// "Observation.component[1].valueQuantity.value: not a FHIR decimal"):
// required elements (Observation.status and code, component code,
// SampledData origin, period and dimensions, Extension url, Annotation
// text, Device deviceName name and type, specialization systemType,
// version value, property type), the R4 patterns of decimal, code
// ([^\s]+(\s[^\s]+)*), id ([A-Za-z0-9\-\.]{1,64}), uri, url and canonical
// (net/url.Parse, with a fast path for plain absolute URIs), strings
// (no control characters but tab, LF and CR; at most 1 MiB), integer
// ranges, codes outside their enum, unset choice elements, dateTime and
// instant precision and time zone, and reference target types (e.g.
// Observation.subject: Patient, Group, Device or Location).
//
// It refuses a little more than google/fhir, where google/fhir writes JSON
// that its own unmarshaller reads back but that breaks FHIR R4: an empty
// string or uri; an unset Observation.status (google/fhir drops it
// silently); an empty Reference; a typed reference whose id is not a FHIR
// id ("Patient/"); a nil item in a list; a positiveInt of 0; a dateTime
// whose year is outside 0001-9999 or offset beyond ±14:00; a time of day
// outside 00:00-24:00; a decimal with surrounding spaces (which
// google/fhir's JSON encoder strips).
package fhirjson

//go:generate go run gen_references.go
