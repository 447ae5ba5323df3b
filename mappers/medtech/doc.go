// Package medtech loads and evaluates Azure MedTech (IoMT FHIR Connector)
// mapping templates, so that integrators can bring their existing
// devicecontent.json and fhirmapping.json files unchanged.
//
// It is standalone: it imports no other package of the bridge. Its output is
// its own Measurement type; turning a Measurement and its CodeValueTemplate
// into a FHIR Observation is the caller's job.
//
// # API
//
//	dt, err := medtech.LoadDeviceTemplate(devicecontentJSON) // *LoadError on failure
//	fm, err := medtech.ParseFHIRMapping(fhirmappingJSON)     // *LoadError on failure
//	env, err := medtech.Envelope(body, props, sysProps)      // MedTech's {"Body","Properties","SystemProperties"}
//	ms, err := dt.Map(env)                                    // []Measurement; *PayloadError or *EvalError
//	tpl, ok := fm.Lookup(ms[0].Type)                          // case-insensitive, as MedTech
//
// A DeviceTemplate and a FHIRMapping are immutable and safe for concurrent
// use. Map is deterministic: templates in file order (nested collections
// depth first), and for each template one measurement per matched token in
// document order. Any failure aborts the whole payload (nil measurements),
// as MedTech stops processing the message.
//
// # Device templates
//
// Supported template types (matched ignoring case, with or without a
// "Template" suffix; property names are matched ignoring case, unknown
// properties are ignored, "required" may be a boolean or "true"/"false"):
//
//   - CollectionContent: the root; nested collections are accepted too (an
//     extension: MedTech's collection factory only registers leaf types).
//   - JsonPathContent: typeMatchExpression selects tokens in the payload;
//     every other expression is evaluated against the matched token, so "$"
//     is the matched token ("$.heartRate"), not the payload.
//   - IotJsonPathContent: as JsonPathContent, with the device id fixed to
//     "$.SystemProperties.iothub-connection-device-id" and the timestamp to
//     "$.Properties.iothub-creation-time-utc", falling back to
//     "$.SystemProperties.iothub-enqueuedtime" (MedTech's fixed expressions;
//     any given in the file are ignored). The typeMatchExpression should
//     match the whole message, e.g. "$..[?(@Body.heartRate)]".
//   - IotCentralJsonPathContent: as JsonPathContent, with the device id fixed
//     to "$.deviceId" and the timestamp to "$.enqueuedTime" of the matched
//     token (IoT Central data export).
//   - CalculatedContent: expressions are strings in the template's
//     defaultExpressionLanguage (JsonPath unless set to JmesPath) or
//     {"value": ..., "language": "JsonPath"|"JmesPath"} objects. The
//     typeMatchExpression runs against the payload; every other expression
//     runs against a copy of the payload object with the matched token added
//     as "matchedToken" ("$.matchedToken.heartRate", "$.Body.deviceId",
//     JmesPath "matchedToken.heartRate"). The payload must then be an object
//     without a "matchedToken" property. A JmesPath typeMatchExpression whose
//     top is a projection ("Body[?heartRate]") yields each element as a
//     match; otherwise its non-null result is one match.
//
// Object-form expressions are accepted in every template type; JmesPath only
// in CalculatedContent. Every expression is compiled when the template is
// loaded, so a syntax error is a load error naming its position, e.g.
// `template[2].template.values[0].valueExpression (line 14, column 32)`.
//
// Required expressions: typeName, typeMatchExpression, deviceIdExpression and
// timestampExpression (the latter two not for the IoT types).
// patientIdExpression, encounterIdExpression and correlationIdExpression are
// optional; a defined correlationIdExpression must yield a value.
//
// Extraction, per matched token, in MedTech's order (device id, timestamp,
// correlation id, patient id, encounter id, values):
//
//   - An expression other than typeMatchExpression must select at most one
//     token; several is an error (ErrMultipleTokens), as Json.NET's
//     SelectToken and MedTech's JmesPath evaluator.
//   - A value is present when it is not null and, for strings, not empty
//     (MedTech's documented rule). A missing required value is an *EvalError
//     naming template type, typeName, value name and expression, wrapping
//     ErrRequiredValueMissing; a missing optional value is omitted.
//   - An object or array where a value is expected is an error for a
//     required value and omitted for an optional one (MedTech's conversion
//     failure handling).
//   - Values are text: strings as is, numbers with the payload's literal
//     ("78", "98.73447010562934", "42.50") for JsonPath, booleans as
//     "true"/"false". JmesPath results are numbers in shortest round-trip
//     decimal form ("1.9811999999999999" for 78 × 0.0254, as .NET prints it).
//   - Timestamps must be ISO 8601 strings: "2019-02-01T22:46:01.8750000Z",
//     offsets "Z", "+01:00", "+0100", "+01", a space instead of "T", or a
//     plain date; no offset means UTC. The offset is kept in Timestamp.
//
// # JSONPath dialect
//
// MedTech resolves JsonPath with Json.NET (Newtonsoft.Json 13 SelectToken /
// SelectTokens), whose dialect differs from RFC 9535; no Go library
// implements it, so this package has its own evaluator (jsonpath.go). It
// supports: "$" (optional at the start), ".name", "['name']",
// "['a','b']", ".*", "..name", "..*", "..['name']", "[n]", "[n,m]", "[*]",
// "[start:end:step]", and filters "[?(...)]" / "..[?(...)]" with "@" and "$"
// paths, constants ('string', numbers, true, false, null, /regex/flags),
// existence tests ("@heartRate" is "@.heartRate"; true even for null),
// ==, !=, <>, ===, !==, <, <=, >, >=, =~ and the operators && and ||.
// Json.NET quirks reproduced: "&&"/"||" have no precedence (each change of
// operator nests the rest: "a && b || c" is "a && (b || c)"); "==" never
// equates a string with a number; "<"/">" convert the right operand to the
// left one's type (a string compares ordinally as text, "abc" against a
// number is an error); integers and floats compare by value with Json.NET's
// tolerance; "..[n]" is "[n]"; "..[?()]" tests the token itself and every
// descendant in document order; at the top level "@" is an ordinary name
// character ("@.x" is a property named "@"); property names are
// case-sensitive; a negative index is an error.
//
// # JMESPath
//
// JmesPath expressions use github.com/jmespath-community/go-jmespath (a
// superset of JMESPath 1.0 as JmesPath.Net implements it) with MedTech's
// custom functions: add, subtract, multiply, divide, pow, insertString,
// fromUnixTimestamp, fromUnixTimestampMs (CustomFunctions.md) and
// appendString (registered by MedTech, undocumented). As in MedTech, the
// arithmetic functions use 64-bit integer arithmetic when both operands are
// integers (divide truncates: divide(`40`, `50`) is 0, whatever the
// documentation's table says) and double arithmetic otherwise.
//
// # FHIR mapping
//
// ParseFHIRMapping reads CollectionFhir / CodeValueFhir templates (same
// spelling rules): typeName (unique ignoring case), periodInterval (-1, 0,
// 60, 1440 or CorrelationId, Single, Hourly, Daily), category, codes
// (required), value and components[] with valueType SampledData
// (defaultPeriod, unit), Quantity (unit, system, code: all required),
// String, or CodeableConcept (text, codes). Unknown template or value types
// are *LoadError naming the type and its JSON path.
//
// # Differences from MedTech
//
// Deliberate or unavoidable differences:
//
//   - Values keep the payload's text. Json.NET turns date-like strings into
//     dates when it reads a message, so MedTech renders such a value in .NET's
//     culture format ("02/01/2019 22:46:01") and booleans as "True"/"False";
//     here they stay as sent ("2019-02-01T22:46:01Z", "true").
//   - JmesPath numbers are float64 in Go: an integral value counts as an
//     integer for the custom functions (JmesPath.Net would treat 40.0 as a
//     float and divide(`40.0`, `50`) as 0.8; here it is 0), and integers
//     beyond 2^53 lose precision. Integer overflow in add, subtract and
//     multiply is an error (C# wraps silently); a non-finite result (float
//     division by zero, pow(-8, 0.5)) is an error instead of "∞"/"NaN".
//   - insertString counts Unicode code points, .NET counts UTF-16 units.
//   - fromUnixTimestamp(Ms) return RFC 3339 strings ("2021-07-07T17:00:00Z")
//     rather than .NET dates; as timestamps they give the same instant.
//   - Json.NET evaluates filters over an object's members (JProperty tokens);
//     such filters never match here ("$.obj[?(@.x)]", "..[?(@)]" reaching
//     property tokens). In MedTech their results cannot be converted to
//     values either.
//   - An object wildcard in JmesPath ("Body.*") is rejected at load time,
//     because Go maps have no order; keys(), values() and items() return
//     keys sorted instead of in document order.
//   - Regular expressions (=~) use Go's RE2 syntax (no lookaround or
//     backreferences) with the i, m and s options; comparisons of dates,
//     GUIDs and similar Json.NET token types are plain string comparisons.
//   - Expressions are compiled at load time (MedTech compiles JsonPath
//     lazily, so a bad JsonPath only fails when a payload reaches it).
//   - Documents may nest 256 levels (Json.NET 13 stops at 64); one
//     expression evaluation may produce at most 100000 tokens.
//   - Payloads may be JSON arrays for the JsonPath template types (MedTech
//     always evaluates its {"Body", ...} envelope object); use Envelope to
//     reproduce MedTech's input exactly.
package medtech
