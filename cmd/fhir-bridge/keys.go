package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fhir-bridge/fhir-bridge/auth"
)

const keysUsage = `Usage:
  fhir-bridge keys generate [--alg ES384|RS384]   print a new private key (PEM, PKCS#8)
  fhir-bridge keys jwks FILE...                   print the public JWKS of private key files

The JWKS is what you publish (or register) at the EHR for SMART Backend Services;
see docs/smart-backend-services.md. Keep the private key file readable by the bridge only.
`

func runKeys(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return &usageError{"keys: give a subcommand: generate or jwks"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	case "generate":
		fs := newFlagSet("keys generate", "keys generate [--alg ES384|RS384]")
		alg := fs.String("alg", auth.ES384, "signing algorithm: ES384 (P-384) or RS384 (RSA 3072)")
		if err := parseFlags(fs, args[1:], stdout); err != nil {
			if errors.Is(err, errHelp) {
				return nil
			}
			return err
		}
		if *alg != auth.ES384 && *alg != auth.RS384 {
			return &usageError{fmt.Sprintf("keys generate: --alg %q: want ES384 or RS384", *alg)}
		}
		_, pemBytes, err := auth.GenerateKey(*alg)
		if err != nil {
			return err
		}
		_, err = stdout.Write(pemBytes)
		return err
	case "jwks":
		fs := newFlagSet("keys jwks", "keys jwks FILE...")
		if err := parseFlagsArgs(fs, args[1:], stdout, 100); err != nil {
			if errors.Is(err, errHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			return &usageError{"keys jwks: give at least one private key file"}
		}
		var pubs []crypto.PublicKey
		for _, f := range fs.Args() {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			k, err := auth.LoadPrivateKey(b)
			if err != nil {
				return fmt.Errorf("keys jwks %s: %w", f, err)
			}
			pubs = append(pubs, k.Public())
		}
		out, err := auth.JWKS(pubs...)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", out)
		return err
	default:
		return &usageError{fmt.Sprintf("keys: unknown subcommand %q; want generate or jwks", args[0])}
	}
}
