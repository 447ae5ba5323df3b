package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// maxValidateInput bounds what validate reads, so a wrong file (a log, a
// core dump) fails fast instead of exhausting memory.
const maxValidateInput = 64 << 20

func runValidate(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("validate", "validate [FILE|-]\n\nValidates a FHIR R4 resource or Bundle (JSON) with google/fhir's validating parser and,\nfor Observations that claim a vital-signs profile or category, the profile rules. Prints one line per issue with its path;\nexits 1 if there is any error.")
	if err := parseFlagsArgs(fs, args, stdout, 1); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	data, err := readInput(name, stdin)
	if err != nil {
		return err
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		return err
	}
	issues, err := validateResource(codec, data)
	if err != nil {
		return fmt.Errorf("validate %s: %w", name, err)
	}
	errs := 0
	for _, is := range issues {
		fmt.Fprintln(stdout, is.String())
		if is.Severity == "error" {
			errs++
		}
	}
	if errs > 0 {
		return fmt.Errorf("validate %s: %d error(s)", name, errs)
	}
	fmt.Fprintf(stdout, "%s: valid\n", name)
	return nil
}

// validateResource returns every issue found in a resource or Bundle. An
// error means the input is not FHIR JSON at all.
func validateResource(codec *fhir.Codec, data []byte) ([]fhir.Issue, error) {
	msg, err := codec.Decode(data)
	var ve *fhir.ValidationError
	if errors.As(err, &ve) {
		return ve.Issues, nil
	}
	if err != nil {
		return nil, err
	}
	cr, ok := msg.(*crpb.ContainedResource)
	if !ok {
		return nil, fmt.Errorf("not a FHIR resource")
	}
	var issues []fhir.Issue
	if obs := cr.GetObservation(); obs != nil && fhir.ClaimsVitalSigns(obs) {
		issues = append(issues, fhir.CheckVitalSigns(obs)...)
	}
	for i, e := range cr.GetBundle().GetEntry() {
		if obs := e.GetResource().GetObservation(); obs != nil && fhir.ClaimsVitalSigns(obs) {
			for _, is := range fhir.CheckVitalSigns(obs) {
				is.Path = fmt.Sprintf("Bundle.entry[%d].resource.%s", i, is.Path)
				issues = append(issues, is)
			}
		}
	}
	return issues, nil
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxValidateInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxValidateInput {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, maxValidateInput)
	}
	return data, nil
}
