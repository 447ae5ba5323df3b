package medtech

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope builds the document MedTech evaluates device templates against
// from a message body and its properties:
//
//	{"Body": <body>, "Properties": {...}, "SystemProperties": {...}}
//
// Templates written for MedTech address the message through it ("$.Body.x",
// "$.SystemProperties.iothub-connection-device-id"), and JsonPathContent
// templates whose typeMatchExpression starts with "$.." find the body inside
// it. An empty body becomes null, as in MedTech; a non-empty body must be
// JSON. Nil property maps become empty objects. Map keys are written sorted.
func Envelope(body []byte, properties, systemProperties map[string]any) ([]byte, error) {
	raw := json.RawMessage("null")
	if len(body) > 0 {
		n, err := parseJSON(body)
		if err != nil {
			var se *syntaxError
			if errors.As(err, &se) {
				line, col := lineCol(body, se.off)
				return nil, &PayloadError{Line: line, Column: col, Msg: "body is not valid JSON: " + se.msg}
			}
			return nil, &PayloadError{Msg: "body is not valid JSON: " + err.Error()}
		}
		_ = n
		start := 0
		if len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
			start = 3
		}
		raw = json.RawMessage(body[start:])
	}
	if properties == nil {
		properties = map[string]any{}
	}
	if systemProperties == nil {
		systemProperties = map[string]any{}
	}
	out, err := json.Marshal(struct {
		Body             json.RawMessage
		Properties       map[string]any
		SystemProperties map[string]any
	}{raw, properties, systemProperties})
	if err != nil {
		return nil, fmt.Errorf("medtech: building envelope: %w", err)
	}
	return out, nil
}
