package medtech

import (
	"errors"
	"fmt"
	"strconv"
)

// This file exports the package's Json.NET-dialect JSONPath evaluator and
// its JSON document model, so that other template formats (the bridge's
// native YAML templates in mappers/template) evaluate expressions exactly as
// MedTech templates do. The dialect is described in the package
// documentation.

// ErrTooManyTokens reports that one evaluation produced more tokens than the
// evaluator allows (100000), so that a pathological path over a large
// payload fails instead of exhausting memory.
var ErrTooManyTokens = errTooManyResults

// ErrIncomparable reports that a filter compared values that cannot be
// converted to a common type (for example "@.a < @.b" with a text and a
// number), or matched a regular expression taken from the document that does
// not compile. Json.NET throws in these cases; the error says no more,
// because the values may be patient data.
var ErrIncomparable = errors.New("filter compares values that cannot be converted to a common type")

// Query is a compiled Json.NET-dialect JSONPath expression. It is immutable
// and safe for concurrent use.
type Query struct {
	jp *jsonPath
}

// CompileQuery compiles expr. It refuses what the evaluator would only
// refuse later, when a document reaches it: a negative array index
// ("[-1]"; slices such as "[-1:]" are fine).
func CompileQuery(expr string) (*Query, error) {
	jp, err := compileJSONPath(expr)
	if err != nil {
		return nil, err
	}
	if negativeIndex(jp.segs) {
		return nil, fmt.Errorf("invalid JSONPath %q: negative array index (use a slice such as [-1:])", expr)
	}
	return &Query{jp: jp}, nil
}

func negativeIndex(segs []pathSeg) bool {
	for i := range segs {
		s := &segs[i]
		switch s.kind {
		case segIndex, segIndexes:
			for _, n := range s.idx {
				if n < 0 {
					return true
				}
			}
		case segQuery, segQueryScan:
			if negativeIndexQuery(s.query) {
				return true
			}
		}
	}
	return false
}

func negativeIndexQuery(q queryExpr) bool {
	switch q := q.(type) {
	case *compositeExpr:
		for _, e := range q.exprs {
			if negativeIndexQuery(e) {
				return true
			}
		}
	case *boolExpr:
		return negativeIndex(q.left.segs) || negativeIndex(q.right.segs)
	}
	return false
}

// String returns the expression as compiled.
func (q *Query) String() string { return q.jp.src }

// Token is one value in a parsed JSON document (Json.NET's JToken). The zero
// Token is no value.
type Token struct {
	n *node
}

// ParseDocument parses one JSON document with the parser DeviceTemplate.Map
// uses: a leading UTF-8 byte order mark is skipped, nesting is limited to
// 256 levels, a repeated object key keeps its first position and its last
// value, and numbers keep their literal text. Errors are *PayloadError with
// the line and column of the problem; the message names at most the one
// character found there, never a value.
func ParseDocument(data []byte) (Token, error) {
	n, err := parseJSON(data)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.off)
			return Token{}, &PayloadError{Line: line, Column: col, Msg: "not valid JSON: " + se.msg}
		}
		return Token{}, &PayloadError{Msg: "not valid JSON: " + err.Error()}
	}
	return Token{n: n}, nil
}

// Exists reports whether tok is a value (possibly null), not the zero Token.
func (tok Token) Exists() bool { return tok.n != nil }

// Type returns the JSON type of tok: "null", "boolean", "number", "string",
// "array" or "object"; "" for the zero Token.
func (tok Token) Type() string {
	if tok.n == nil {
		return ""
	}
	return tok.n.kind.String()
}

// Text returns tok as DeviceTemplate.Map renders a selected value: a string as
// is, a number as its literal in the document ("72", "98.60", "7.2e1"), a
// boolean as "true" or "false". ok is false for null, arrays, objects and the
// zero Token. Map treats "" as missing; so should callers that mirror it.
func (tok Token) Text() (s string, ok bool) {
	if tok.n == nil {
		return "", false
	}
	switch tok.n.kind {
	case kindString, kindNumber:
		return tok.n.s, true
	case kindBool:
		return strconv.FormatBool(tok.n.b), true
	}
	return "", false
}

// Select evaluates q against current and returns every selected value in
// document order (Json.NET's SelectTokens). A leading "$" is current; "$"
// inside a filter is root. root and current should come from the same
// ParseDocument; a zero current selects nothing, a zero root is current.
// Errors are ErrTooManyTokens or ErrIncomparable and never quote document
// values.
func (q *Query) Select(root, current Token) ([]Token, error) {
	nodes, err := q.selectNodes(root, current)
	if err != nil || len(nodes) == 0 {
		return nil, err
	}
	out := make([]Token, len(nodes))
	for i, n := range nodes {
		out[i] = Token{n: n}
	}
	return out, nil
}

// SelectOne is Select for an expression that must select at most one value
// (Json.NET's SelectToken): ok is false when it selects none, and selecting
// several is ErrMultipleTokens.
func (q *Query) SelectOne(root, current Token) (v Token, ok bool, err error) {
	nodes, err := q.selectNodes(root, current)
	switch {
	case err != nil:
		return Token{}, false, err
	case len(nodes) == 0:
		return Token{}, false, nil
	case len(nodes) > 1:
		return Token{}, false, ErrMultipleTokens
	}
	return Token{n: nodes[0]}, true, nil
}

func (q *Query) selectNodes(root, current Token) ([]*node, error) {
	if current.n == nil {
		return nil, nil
	}
	r := root.n
	if r == nil {
		r = current.n
	}
	nodes, err := q.jp.selectTokens(r, current.n)
	if err != nil {
		if errors.Is(err, errTooManyResults) {
			return nil, err
		}
		// Negative indexes are refused by CompileQuery, so every other
		// evaluation error is a failed comparison whose message may quote
		// document values.
		return nil, ErrIncomparable
	}
	return nodes, nil
}
