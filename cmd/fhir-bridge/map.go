package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

func runMap(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("map", "map [--template FILE]... [--format fhir|hl7] [--patient ID] [PAYLOAD|-]\n\n"+
		"Maps one payload and prints the result: a FHIR Bundle (type collection) with the Observations and\n"+
		"Devices, or the HL7 v2 ORU^R01 message. Without --template the payload is in the native format\n"+
		"(docs/native-format.md); a MedTech pair is given as two --template flags (device mapping and FHIR\n"+
		"mapping). PAYLOAD is a file; - or nothing reads standard input.")
	var templates stringList
	fs.Var(&templates, "template", "template file (repeatable)")
	format := fs.String("format", "fhir", "output: fhir or hl7")
	patient := fs.String("patient", "", "patient id for MedTech measurements whose template has no patientIdExpression")
	idSystem := fs.String("identifier-system", bridge.DefaultIdentifierSystem, "Observation identifier system")
	if err := parseFlagsArgs(fs, args, stdout, 1); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if *format != "fhir" && *format != "hl7" {
		return &usageError{fmt.Sprintf("map: --format %q: want fhir or hl7", *format)}
	}
	mapper, err := bridge.LoadMapper(templates, bridge.MapperOptions{DefaultPatientID: *patient})
	if err != nil {
		return err
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	payload, err := readInput(name, stdin)
	if err != nil {
		return err
	}
	ms, err := mapper.Map(payload)
	if err != nil {
		return fmt.Errorf("map %s: %w", name, err)
	}
	if len(ms) == 0 {
		return fmt.Errorf("map %s: no reading matched the template", name)
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		return err
	}
	if *format == "hl7" {
		return writeHL7(stdout, ms)
	}
	out, err := mapBundle(codec, ms, *idSystem)
	if err != nil {
		return fmt.Errorf("map %s: %w", name, err)
	}
	_, err = stdout.Write(out)
	return err
}

// mapBundle renders readings as an indented collection Bundle.
func mapBundle(codec *fhir.Codec, ms []mappers.Measurement, idSystem string) ([]byte, error) {
	bundle, err := mappers.Bundle(ms, idSystem)
	if err != nil {
		return nil, err
	}
	compact, err := codec.Encode(bundle)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// writeHL7 prints the ORU^R01 messages for the readings. Segments end with a
// newline here so a terminal shows them; on the wire (MLLP) they end with CR.
func writeHL7(w io.Writer, ms []mappers.Measurement) error {
	msgs, err := mappers.ORU(ms, mappers.ORUOptions{})
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	var buf []byte
	for i, m := range msgs {
		if i > 0 {
			buf = append(buf, '\n')
		}
		start := len(buf)
		if buf, err = m.Append(buf); err != nil {
			return fmt.Errorf("map: message %d: %w", i, err)
		}
		for j := start; j < len(buf); j++ {
			if buf[j] == '\r' {
				buf[j] = '\n'
			}
		}
	}
	_, err = w.Write(buf)
	return err
}
