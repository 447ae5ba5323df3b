package medtech

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// This file implements the JSONPath dialect of Json.NET (Newtonsoft.Json 13,
// JToken.SelectToken/SelectTokens), which MedTech uses for every JsonPath
// expression. It is written from the documented and observed behaviour of that
// library, not from RFC 9535, because the two disagree on exactly the
// constructs MedTech templates use:
//
//   - "$..[?(@heartRate)]": a filter operand written without a dot after "@"
//     is a property name ("@heartRate" is "@.heartRate"); a filter operand
//     with no operator is an existence test that is true even for a null value.
//   - "$" is the token the expression is evaluated against, not the document
//     root: MedTech evaluates JsonPathContent value expressions against the
//     matched token, so "$.heartRate" is relative to it.
//   - a leading "$" is optional ("Body.heartRate" is a valid path), and at the
//     top level "@" is not special: "@.x" names a property called "@".
//   - recursive descent into a filter ("..[?()]") tests the token itself and
//     every descendant, in document order; "..[n]" is the same as "[n]".
//   - "&&" and "||" have no precedence: each change of operator nests the rest
//     of the filter, so "a && b || c" is "a && (b || c)". Parentheses are not
//     supported inside filters.
//   - comparisons follow JValue: "==" never coerces a string to a number,
//     "<" / ">" convert the right operand to the left operand's type (so a
//     string compared with a number compares ordinally as text).
//
// Constructs Json.NET would evaluate on JProperty tokens (a filter applied to
// an object's members, "$.obj[?(@ != 1)]", or "..[?(@)]" reaching property
// tokens) never match here; in MedTech they yield property tokens that cannot
// be turned into measurement values anyway.

// maxPathResults bounds the number of tokens one expression evaluation may
// produce, so that a pathological path over a large payload fails instead of
// exhausting memory.
const maxPathResults = 100000

var (
	errTooManyResults = fmt.Errorf("expression produced more than %d tokens", maxPathResults)
	// ErrMultipleTokens reports that an expression which must select a single
	// token (every expression but typeMatchExpression) selected several.
	ErrMultipleTokens = errors.New("expression returned multiple tokens")
)

// jsonPath is a compiled Json.NET-dialect JSONPath expression.
type jsonPath struct {
	src  string
	segs []pathSeg
}

type segKind uint8

const (
	segRoot       segKind = iota // "$" inside a filter
	segField                     // .name, ['name'], .* (wildcard)
	segScan                      // ..name, ..['name'], ..*
	segFields                    // ['a','b']
	segScanFields                // ..['a','b']
	segIndex                     // [n]
	segIndexes                   // [n,m]
	segAllItems                  // [*]
	segSlice                     // [start:end:step]
	segQuery                     // [?(...)]
	segQueryScan                 // ..[?(...)]
)

type pathSeg struct {
	kind     segKind
	name     string
	wildcard bool
	names    []string
	idx      []int
	start    *int
	end      *int
	step     *int
	query    queryExpr
}

// compileJSONPath parses a Json.NET-dialect JSONPath expression.
func compileJSONPath(src string) (*jsonPath, error) {
	p := &pathParser{s: src}
	segs, err := p.parseMain()
	if err != nil {
		return nil, err
	}
	return &jsonPath{src: src, segs: segs}, nil
}

type pathParser struct {
	s string
	i int
}

func (p *pathParser) errf(format string, args ...any) error {
	return fmt.Errorf("invalid JSONPath %q at offset %d: %s", p.s, p.i, fmt.Sprintf(format, args...))
}

func (p *pathParser) eatSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *pathParser) parseMain() ([]pathSeg, error) {
	p.eatSpace()
	if p.i == len(p.s) {
		return nil, nil
	}
	start := p.i
	if p.s[p.i] == '$' {
		if len(p.s) == 1 {
			return nil, nil
		}
		// Only "$." and "$[" mean the root; otherwise "$" starts a name.
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '.' || p.s[p.i+1] == '[') {
			p.i++
			start = p.i
		}
	}
	var segs []pathSeg
	atEnd, err := p.parsePath(&segs, start, false)
	if err != nil {
		return nil, err
	}
	if !atEnd {
		last := p.i
		p.eatSpace()
		if p.i < len(p.s) {
			p.i = last
			return nil, p.errf("unexpected character %q", p.s[last])
		}
	}
	return segs, nil
}

func memberSeg(name string, scan bool) pathSeg {
	k := segField
	if scan {
		k = segScan
	}
	if name == "*" {
		return pathSeg{kind: k, wildcard: true}
	}
	return pathSeg{kind: k, name: name}
}

// parsePath reads dot-separated members and indexers until the end of the
// expression, a closing bracket or parenthesis, a space, or (in a filter) an
// operator character. It reports whether it stopped at the end.
func (p *pathParser) parsePath(segs *[]pathSeg, partStart int, query bool) (bool, error) {
	scan, followingIndexer, followingDot := false, false, false
loop:
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '[', '(':
			if p.i > partStart {
				*segs = append(*segs, memberSeg(p.s[partStart:p.i], scan))
				scan = false
			}
			seg, err := p.parseIndexer(c, scan)
			if err != nil {
				return false, err
			}
			*segs = append(*segs, seg)
			scan = false
			p.i++
			partStart = p.i
			followingIndexer, followingDot = true, false
		case ']', ')', ' ':
			break loop
		case '.':
			if p.i > partStart {
				*segs = append(*segs, memberSeg(p.s[partStart:p.i], scan))
				scan = false
			}
			if p.i+1 < len(p.s) && p.s[p.i+1] == '.' {
				scan = true
				p.i++
			}
			p.i++
			partStart = p.i
			followingIndexer, followingDot = false, true
		default:
			if query && strings.IndexByte("=<!>|&", c) >= 0 {
				break loop
			}
			if followingIndexer {
				return false, p.errf("unexpected character %q following indexer", c)
			}
			p.i++
		}
	}
	atEnd := p.i == len(p.s)
	if p.i > partStart {
		name := strings.TrimRight(p.s[partStart:p.i], " ")
		*segs = append(*segs, memberSeg(name, scan))
	} else if followingDot && (atEnd || query) {
		return false, p.errf("unexpected end while parsing path")
	}
	return atEnd, nil
}

func (p *pathParser) parseIndexer(open byte, scan bool) (pathSeg, error) {
	p.i++
	closeCh := byte(']')
	if open == '(' {
		closeCh = ')'
	}
	if p.i >= len(p.s) {
		return pathSeg{}, p.errf("path ended with open indexer")
	}
	p.eatSpace()
	if p.i >= len(p.s) {
		return pathSeg{}, p.errf("path ended with open indexer")
	}
	switch p.s[p.i] {
	case '\'':
		return p.parseQuotedFields(closeCh, scan)
	case '?':
		return p.parseQuery(closeCh, scan)
	default:
		return p.parseArrayIndexer(closeCh)
	}
}

func (p *pathParser) parseIndex(text string) (int, error) {
	n, err := strconv.ParseInt(text, 10, 32)
	if err != nil {
		return 0, p.errf("invalid array index %q", text)
	}
	return int(n), nil
}

func (p *pathParser) parseArrayIndexer(closeCh byte) (pathSeg, error) {
	start := p.i
	end := -1
	var indexes []int
	colons := 0
	var sliceParts [3]*int
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ' ' {
			end = p.i
			p.eatSpace()
			continue
		}
		length := p.i - start
		if end >= 0 {
			length = end - start
		}
		switch {
		case c == closeCh:
			text := p.s[start : start+length]
			switch {
			case indexes != nil:
				if length == 0 {
					return pathSeg{}, p.errf("array index expected")
				}
				n, err := p.parseIndex(text)
				if err != nil {
					return pathSeg{}, err
				}
				return pathSeg{kind: segIndexes, idx: append(indexes, n)}, nil
			case colons > 0:
				if length > 0 {
					n, err := p.parseIndex(text)
					if err != nil {
						return pathSeg{}, err
					}
					if colons == 1 {
						sliceParts[1] = &n
					} else {
						sliceParts[2] = &n
					}
				}
				if sliceParts[2] != nil && *sliceParts[2] == 0 {
					return pathSeg{}, p.errf("slice step cannot be zero")
				}
				return pathSeg{kind: segSlice, start: sliceParts[0], end: sliceParts[1], step: sliceParts[2]}, nil
			default:
				if length == 0 {
					return pathSeg{}, p.errf("array index expected")
				}
				n, err := p.parseIndex(text)
				if err != nil {
					return pathSeg{}, err
				}
				return pathSeg{kind: segIndex, idx: []int{n}}, nil
			}
		case c == ',':
			if length == 0 {
				return pathSeg{}, p.errf("array index expected")
			}
			n, err := p.parseIndex(p.s[start : start+length])
			if err != nil {
				return pathSeg{}, err
			}
			if indexes == nil {
				indexes = []int{}
			}
			indexes = append(indexes, n)
			p.i++
			p.eatSpace()
			start, end = p.i, -1
		case c == '*':
			p.i++
			if p.i >= len(p.s) {
				return pathSeg{}, p.errf("path ended with open indexer")
			}
			p.eatSpace()
			if p.i >= len(p.s) || p.s[p.i] != closeCh {
				return pathSeg{}, p.errf("unexpected character while parsing indexer")
			}
			return pathSeg{kind: segAllItems}, nil
		case c == ':':
			if length > 0 {
				n, err := p.parseIndex(p.s[start : start+length])
				if err != nil {
					return pathSeg{}, err
				}
				if colons < 3 {
					sliceParts[colons] = &n
				} else {
					sliceParts[2] = &n
				}
			}
			colons++
			p.i++
			p.eatSpace()
			start, end = p.i, -1
		case !isDigit(c) && c != '-':
			return pathSeg{}, p.errf("unexpected character %q in indexer", c)
		default:
			if end >= 0 {
				return pathSeg{}, p.errf("unexpected character %q in indexer", c)
			}
			p.i++
		}
	}
	return pathSeg{}, p.errf("path ended with open indexer")
}

func (p *pathParser) readQuoted() (string, error) {
	var b strings.Builder
	p.i++ // opening quote
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '\\' && p.i+1 < len(p.s) {
			p.i++
			switch e := p.s[p.i]; e {
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case '\\', '"', '\'', '/':
				b.WriteByte(e)
			default:
				return "", p.errf("unknown escape character \\%c", e)
			}
			p.i++
			continue
		}
		if c == '\'' {
			p.i++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.i++
	}
	return "", p.errf("path ended with an open string")
}

func (p *pathParser) parseQuotedFields(closeCh byte, scan bool) (pathSeg, error) {
	var fields []string
	for p.i < len(p.s) {
		if p.s[p.i] != '\'' {
			return pathSeg{}, p.errf("expected a quoted property name")
		}
		f, err := p.readQuoted()
		if err != nil {
			return pathSeg{}, err
		}
		p.eatSpace()
		if p.i >= len(p.s) {
			return pathSeg{}, p.errf("path ended with open indexer")
		}
		switch p.s[p.i] {
		case closeCh:
			if fields == nil {
				k := segField
				if scan {
					k = segScan
				}
				return pathSeg{kind: k, name: f}, nil
			}
			k := segFields
			if scan {
				k = segScanFields
			}
			return pathSeg{kind: k, names: append(fields, f)}, nil
		case ',':
			p.i++
			p.eatSpace()
			fields = append(fields, f)
		default:
			return pathSeg{}, p.errf("unexpected character %q in indexer", p.s[p.i])
		}
	}
	return pathSeg{}, p.errf("path ended with open indexer")
}

func (p *pathParser) parseQuery(closeCh byte, scan bool) (pathSeg, error) {
	p.i++ // ?
	if p.i >= len(p.s) {
		return pathSeg{}, p.errf("path ended with open indexer")
	}
	if p.s[p.i] != '(' {
		return pathSeg{}, p.errf("expected '(' after '?'")
	}
	p.i++
	q, err := p.parseExpression()
	if err != nil {
		return pathSeg{}, err
	}
	p.i++ // ')'
	if p.i >= len(p.s) {
		return pathSeg{}, p.errf("path ended with open indexer")
	}
	p.eatSpace()
	if p.i >= len(p.s) || p.s[p.i] != closeCh {
		return pathSeg{}, p.errf("expected %q to close the filter", closeCh)
	}
	if scan {
		return pathSeg{kind: segQueryScan, query: q}, nil
	}
	return pathSeg{kind: segQuery, query: q}, nil
}

// ---- filter expressions ----

type queryOp uint8

const (
	opExists queryOp = iota
	opEq
	opNe
	opStrictEq
	opStrictNe
	opLt
	opLe
	opGt
	opGe
	opRegex
)

type queryExpr interface {
	match(ev *evaluator, root, t *node) (bool, error)
}

type compositeExpr struct {
	and   bool
	exprs []queryExpr
}

func (c *compositeExpr) match(ev *evaluator, root, t *node) (bool, error) {
	for _, e := range c.exprs {
		ok, err := e.match(ev, root, t)
		if err != nil {
			return false, err
		}
		if c.and && !ok {
			return false, nil
		}
		if !c.and && ok {
			return true, nil
		}
	}
	return c.and, nil
}

// operand is one side of a comparison: a path relative to "@" or "$", or a
// constant.
type operand struct {
	isPath bool
	segs   []pathSeg
	val    scalar
	re     *regexp.Regexp // set when the constant is a /regex/ literal
}

type boolExpr struct {
	op          queryOp
	left, right operand
}

func (p *pathParser) parseExpression() (queryExpr, error) {
	var root queryExpr
	var parent *compositeExpr
	for p.i < len(p.s) {
		left, err := p.parseSide()
		if err != nil {
			return nil, err
		}
		be := &boolExpr{left: left}
		c := p.s[p.i]
		if c == ')' || c == '|' || c == '&' {
			be.op = opExists
		} else {
			op, err := p.parseOperator()
			if err != nil {
				return nil, err
			}
			right, err := p.parseSide()
			if err != nil {
				return nil, err
			}
			be.op, be.right = op, right
			if op == opRegex && !right.isPath && right.re == nil {
				return nil, p.errf("=~ needs a /regex/ on its right side")
			}
		}
		switch p.s[p.i] {
		case ')':
			if parent != nil {
				parent.exprs = append(parent.exprs, be)
				return root, nil
			}
			return be, nil
		case '&', '|':
			and := p.s[p.i] == '&'
			want := "||"
			if and {
				want = "&&"
			}
			if !strings.HasPrefix(p.s[p.i:], want) {
				return nil, p.errf("unexpected character %q in filter", p.s[p.i])
			}
			p.i += 2
			if parent == nil || parent.and != and {
				ce := &compositeExpr{and: and}
				if parent != nil {
					parent.exprs = append(parent.exprs, ce)
				}
				parent = ce
				if root == nil {
					root = ce
				}
			}
			parent.exprs = append(parent.exprs, be)
		default:
			return nil, p.errf("unexpected character %q in filter", p.s[p.i])
		}
	}
	return nil, p.errf("path ended with open query")
}

func (p *pathParser) parseSide() (operand, error) {
	p.eatSpace()
	if p.i >= len(p.s) {
		return operand{}, p.errf("path ended with open query")
	}
	switch c := p.s[p.i]; c {
	case '$', '@':
		var segs []pathSeg
		if c == '$' {
			segs = append(segs, pathSeg{kind: segRoot})
		}
		p.i++
		atEnd, err := p.parsePath(&segs, p.i, true)
		if err != nil {
			return operand{}, err
		}
		if atEnd {
			return operand{}, p.errf("path ended with open query")
		}
		p.eatSpace()
		if p.i >= len(p.s) {
			return operand{}, p.errf("path ended with open query")
		}
		return operand{isPath: true, segs: segs}, nil
	}
	v, re, err := p.parseValue()
	if err != nil {
		return operand{}, err
	}
	p.eatSpace()
	if p.i >= len(p.s) {
		return operand{}, p.errf("path ended with open query")
	}
	return operand{val: v, re: re}, nil
}

func (p *pathParser) match(word string) bool {
	if strings.HasPrefix(p.s[p.i:], word) {
		p.i += len(word)
		return true
	}
	return false
}

func (p *pathParser) parseValue() (scalar, *regexp.Regexp, error) {
	c := p.s[p.i]
	switch {
	case c == '\'':
		s, err := p.readQuoted()
		return scalar{k: scString, s: s}, nil, err
	case isDigit(c) || c == '-':
		start := p.i
		p.i++
		for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
			p.i++
		}
		if p.i >= len(p.s) {
			return scalar{}, nil, p.errf("path ended with open query")
		}
		text := p.s[start:p.i]
		if strings.ContainsAny(text, ".eE") {
			f, ok := parseDotNetDouble(text)
			if !ok {
				return scalar{}, nil, p.errf("invalid number %q", text)
			}
			return scalar{k: scFloat, f: f}, nil, nil
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return scalar{}, nil, p.errf("invalid number %q", text)
		}
		return scalar{k: scInt, i: n}, nil, nil
	case p.match("true"):
		return scalar{k: scBool, b: true}, nil, nil
	case p.match("false"):
		return scalar{k: scBool}, nil, nil
	case p.match("null"):
		return scalar{k: scNull}, nil, nil
	case c == '/':
		lit, err := p.readRegex()
		if err != nil {
			return scalar{}, nil, err
		}
		re, err := compileRegexLiteral(lit)
		if err != nil {
			return scalar{}, nil, p.errf("%v", err)
		}
		return scalar{k: scString, s: lit}, re, nil
	}
	return scalar{}, nil, p.errf("unexpected character %q in filter", c)
}

// parseDotNetDouble accepts what double.Parse(NumberStyles.Float |
// AllowThousands, InvariantCulture) accepts for the filter literals Json.NET
// reads: digits with an optional sign, thousands separators, fraction and
// exponent.
func parseDotNetDouble(text string) (float64, bool) {
	t := strings.ReplaceAll(text, ",", "")
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isDigit(c) && c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func (p *pathParser) readRegex() (string, error) {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			p.i += 2
		case c == '/':
			p.i++
			for p.i < len(p.s) && isLetter(p.s[p.i]) {
				p.i++
			}
			return p.s[start:p.i], nil
		default:
			p.i++
		}
	}
	return "", p.errf("path ended with an open regex")
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// compileRegexLiteral compiles "/pattern/flags". Flags i, m and s map to the
// .NET options of the same letter; the pattern is compiled by Go's RE2, which
// lacks backreferences and lookaround.
func compileRegexLiteral(lit string) (*regexp.Regexp, error) {
	last := strings.LastIndexByte(lit, '/')
	if len(lit) < 2 || lit[0] != '/' || last < 1 {
		return nil, fmt.Errorf("invalid regex literal %q", lit)
	}
	pattern, flags := lit[1:last], lit[last+1:]
	prefix := ""
	for _, f := range flags {
		switch f {
		case 'i', 'm', 's':
			if !strings.ContainsRune(prefix, f) {
				prefix += string(f)
			}
		default:
			return nil, fmt.Errorf("unsupported regex option %q in %q", f, lit)
		}
	}
	if prefix != "" {
		pattern = "(?" + prefix + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", lit, err)
	}
	return re, nil
}

func (p *pathParser) parseOperator() (queryOp, error) {
	if p.i+1 >= len(p.s) {
		return 0, p.errf("path ended with open query")
	}
	switch {
	case p.match("==="):
		return opStrictEq, nil
	case p.match("=="):
		return opEq, nil
	case p.match("=~"):
		return opRegex, nil
	case p.match("!=="):
		return opStrictNe, nil
	case p.match("!="), p.match("<>"):
		return opNe, nil
	case p.match("<="):
		return opLe, nil
	case p.match("<"):
		return opLt, nil
	case p.match(">="):
		return opGe, nil
	case p.match(">"):
		return opGt, nil
	}
	return 0, p.errf("could not read query operator")
}

// ---- scalars and comparison (Json.NET JValue semantics) ----

type scalarKind uint8

const (
	scNull scalarKind = iota
	scBool
	scInt    // integer literal that fits int64
	scBigInt // integer literal beyond int64
	scFloat
	scString
)

type scalar struct {
	k  scalarKind
	b  bool
	i  int64
	bi *big.Int
	f  float64
	s  string
}

// scalarOf converts a payload value to a comparison operand; containers are
// not scalars.
func scalarOf(n *node) (scalar, bool) {
	switch n.kind {
	case kindNull:
		return scalar{k: scNull}, true
	case kindBool:
		return scalar{k: scBool, b: n.b}, true
	case kindString:
		return scalar{k: scString, s: n.s}, true
	case kindNumber:
		if !strings.ContainsAny(n.s, ".eE") {
			if i, err := strconv.ParseInt(n.s, 10, 64); err == nil {
				return scalar{k: scInt, i: i}, true
			}
			bi, _ := new(big.Int).SetString(n.s, 10)
			return scalar{k: scBigInt, bi: bi}, true
		}
		f, _ := strconv.ParseFloat(n.s, 64)
		return scalar{k: scFloat, f: f}, true
	}
	return scalar{}, false
}

func (s scalar) isInteger() bool { return s.k == scInt || s.k == scBigInt }

func (s scalar) String() string {
	switch s.k {
	case scNull:
		return "null"
	case scBool:
		if s.b {
			return "True"
		}
		return "False"
	case scInt:
		return strconv.FormatInt(s.i, 10)
	case scBigInt:
		return s.bi.String()
	case scFloat:
		return formatDotNetDouble(s.f)
	default:
		return s.s
	}
}

// formatDotNetDouble renders a double the way .NET's invariant ToString()
// does (shortest round-trip digits, exponent form below 1e-5 and from 1e15).
func formatDotNetDouble(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp > -5 && exp < 15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.ToUpper(e)
}

func (s scalar) toFloat() (float64, error) {
	switch s.k {
	case scInt:
		return float64(s.i), nil
	case scBigInt:
		f, _ := new(big.Float).SetInt(s.bi).Float64()
		return f, nil
	case scFloat:
		return s.f, nil
	case scBool:
		if s.b {
			return 1, nil
		}
		return 0, nil
	case scString:
		f, err := strconv.ParseFloat(strings.TrimSpace(s.s), 64)
		if err != nil {
			return 0, fmt.Errorf("cannot compare %q as a number", s.s)
		}
		return f, nil
	}
	return 0, fmt.Errorf("cannot compare %s as a number", s)
}

func (s scalar) toBig() (*big.Int, error) {
	switch s.k {
	case scInt:
		return big.NewInt(s.i), nil
	case scBigInt:
		return s.bi, nil
	case scBool:
		if s.b {
			return big.NewInt(1), nil
		}
		return big.NewInt(0), nil
	case scString:
		bi, ok := new(big.Int).SetString(strings.TrimSpace(s.s), 10)
		if !ok {
			return nil, fmt.Errorf("cannot compare %q as an integer", s.s)
		}
		return bi, nil
	}
	return nil, fmt.Errorf("cannot compare %s as an integer", s)
}

func (s scalar) toBool() (bool, error) {
	switch s.k {
	case scBool:
		return s.b, nil
	case scInt:
		return s.i != 0, nil
	case scBigInt:
		return s.bi.Sign() != 0, nil
	case scFloat:
		return s.f != 0, nil
	case scString:
		switch strings.ToLower(strings.TrimSpace(s.s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("cannot compare %q as a boolean", s.String())
}

// approxEqual is Json.NET's tolerance for comparing doubles.
func approxEqual(a, b float64) bool {
	if a == b {
		return true
	}
	tol := (math.Abs(a) + math.Abs(b) + 10.0) * 2.220446049250313e-16
	d := a - b
	return -tol < d && tol > d
}

func compareFloats(a, b float64) int {
	if approxEqual(a, b) {
		return 0
	}
	if a < b {
		return -1
	}
	return 1
}

// compareScalars orders left and right the way JValue.CompareTo does: the
// right operand is converted to the left operand's type.
func compareScalars(l, r scalar) (int, error) {
	if l.k == scNull && r.k == scNull {
		return 0, nil
	}
	if r.k == scNull {
		return 1, nil
	}
	if l.k == scNull {
		return -1, nil
	}
	switch l.k {
	case scInt, scBigInt:
		if r.k == scFloat {
			lf, _ := l.toFloat()
			return compareFloats(lf, r.f), nil
		}
		if l.k == scInt && r.k == scInt {
			switch {
			case l.i < r.i:
				return -1, nil
			case l.i > r.i:
				return 1, nil
			}
			return 0, nil
		}
		rb, err := r.toBig()
		if err != nil {
			return 0, err
		}
		lb, _ := l.toBig()
		return lb.Cmp(rb), nil
	case scFloat:
		rf, err := r.toFloat()
		if err != nil {
			return 0, err
		}
		return compareFloats(l.f, rf), nil
	case scString:
		return strings.Compare(l.s, r.String()), nil
	case scBool:
		rb, err := r.toBool()
		if err != nil {
			return 0, err
		}
		switch {
		case l.b == rb:
			return 0, nil
		case !l.b:
			return -1, nil
		}
		return 1, nil
	}
	return 0, nil
}

func sameType(l, r scalar) bool {
	if l.isInteger() && r.isInteger() {
		return true
	}
	return l.k == r.k
}

// equalsCoerce is Json.NET's "==": same type and equal, or integer and float
// with the same numeric value. A string never equals a number or a boolean.
func equalsCoerce(l, r scalar) bool {
	if sameType(l, r) || (l.isInteger() && r.k == scFloat) || (l.k == scFloat && r.isInteger()) {
		c, err := compareScalars(l, r)
		return err == nil && c == 0
	}
	return false
}

// strictEquals is "===": like "==" (numbers of either kind compare by value).
func strictEquals(l, r scalar) bool { return equalsCoerce(l, r) }

// ---- evaluation ----

// evaluator carries the result budget of one expression evaluation.
type evaluator struct {
	produced int
}

func (ev *evaluator) add(out []*node, n *node) ([]*node, error) {
	ev.produced++
	if ev.produced > maxPathResults {
		return out, errTooManyResults
	}
	return append(out, n), nil
}

// selectTokens evaluates the path against t; "$" in filters refers to root.
func (jp *jsonPath) selectTokens(root, t *node) ([]*node, error) {
	ev := &evaluator{}
	return ev.evalSegs(jp.segs, root, t)
}

// selectToken returns the single token selected, nil when none is, and
// ErrMultipleTokens when several are (Json.NET's SelectToken).
func (jp *jsonPath) selectToken(root, t *node) (*node, error) {
	res, err := jp.selectTokens(root, t)
	if err != nil {
		return nil, err
	}
	switch len(res) {
	case 0:
		return nil, nil
	case 1:
		return res[0], nil
	}
	return nil, ErrMultipleTokens
}

func (ev *evaluator) evalSegs(segs []pathSeg, root, t *node) ([]*node, error) {
	cur := []*node{t}
	for i := range segs {
		next, err := ev.apply(&segs[i], root, cur)
		if err != nil {
			return nil, err
		}
		cur = next
		if len(cur) == 0 {
			return nil, nil
		}
	}
	return cur, nil
}

func (ev *evaluator) apply(seg *pathSeg, root *node, cur []*node) ([]*node, error) {
	var out []*node
	var err error
	switch seg.kind {
	case segRoot:
		return []*node{root}, nil
	case segField:
		for _, t := range cur {
			if t.kind != kindObject {
				continue
			}
			if seg.wildcard {
				for _, m := range t.obj {
					if out, err = ev.add(out, m.val); err != nil {
						return nil, err
					}
				}
			} else if v := t.get(seg.name); v != nil {
				if out, err = ev.add(out, v); err != nil {
					return nil, err
				}
			}
		}
	case segFields:
		for _, t := range cur {
			if t.kind != kindObject {
				continue
			}
			for _, name := range seg.names {
				if v := t.get(name); v != nil {
					if out, err = ev.add(out, v); err != nil {
						return nil, err
					}
				}
			}
		}
	case segScan, segScanFields:
		for _, t := range cur {
			if seg.kind == segScan && seg.wildcard {
				if out, err = ev.add(out, t); err != nil {
					return nil, err
				}
			}
			if out, err = ev.scan(seg, t, out, 0); err != nil {
				return nil, err
			}
		}
	case segIndex, segIndexes:
		for _, t := range cur {
			if t.kind != kindArray {
				continue
			}
			for _, i := range seg.idx {
				if i < 0 {
					return nil, fmt.Errorf("negative array index %d", i)
				}
				if i < len(t.arr) {
					if out, err = ev.add(out, t.arr[i]); err != nil {
						return nil, err
					}
				}
			}
		}
	case segAllItems:
		for _, t := range cur {
			if t.kind != kindArray {
				continue
			}
			for _, v := range t.arr {
				if out, err = ev.add(out, v); err != nil {
					return nil, err
				}
			}
		}
	case segSlice:
		for _, t := range cur {
			if t.kind != kindArray {
				continue
			}
			for _, i := range sliceIndexes(len(t.arr), seg.start, seg.end, seg.step) {
				if out, err = ev.add(out, t.arr[i]); err != nil {
					return nil, err
				}
			}
		}
	case segQuery:
		for _, t := range cur {
			if t.kind != kindArray {
				continue // object members are JProperty tokens in Json.NET: never matched here
			}
			for _, v := range t.arr {
				ok, err := seg.query.match(ev, root, v)
				if err != nil {
					return nil, err
				}
				if ok {
					if out, err = ev.add(out, v); err != nil {
						return nil, err
					}
				}
			}
		}
	case segQueryScan:
		for _, t := range cur {
			if out, err = ev.queryScan(seg.query, root, t, out, 0); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// scan walks the descendants of t in document order for "..name", "..*" and
// "..['a','b']".
func (ev *evaluator) scan(seg *pathSeg, t *node, out []*node, depth int) ([]*node, error) {
	if depth > maxDepth {
		return out, nil
	}
	var err error
	switch t.kind {
	case kindObject:
		for _, m := range t.obj {
			hit := false
			switch {
			case seg.kind == segScan && seg.wildcard:
				hit = true
			case seg.kind == segScan:
				hit = m.key == seg.name
			default:
				for _, n := range seg.names {
					if m.key == n {
						hit = true
						break
					}
				}
			}
			if hit {
				if out, err = ev.add(out, m.val); err != nil {
					return nil, err
				}
			}
			if out, err = ev.scan(seg, m.val, out, depth+1); err != nil {
				return nil, err
			}
		}
	case kindArray:
		for _, v := range t.arr {
			if seg.kind == segScan && seg.wildcard {
				if out, err = ev.add(out, v); err != nil {
					return nil, err
				}
			}
			if out, err = ev.scan(seg, v, out, depth+1); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// queryScan tests t and all its descendants, in document order.
func (ev *evaluator) queryScan(q queryExpr, root, t *node, out []*node, depth int) ([]*node, error) {
	if depth > maxDepth {
		return out, nil
	}
	ok, err := q.match(ev, root, t)
	if err != nil {
		return nil, err
	}
	if ok {
		if out, err = ev.add(out, t); err != nil {
			return nil, err
		}
	}
	switch t.kind {
	case kindObject:
		for _, m := range t.obj {
			if out, err = ev.queryScan(q, root, m.val, out, depth+1); err != nil {
				return nil, err
			}
		}
	case kindArray:
		for _, v := range t.arr {
			if out, err = ev.queryScan(q, root, v, out, depth+1); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// sliceIndexes follows Json.NET's ArraySliceFilter.
func sliceIndexes(n int, startP, endP, stepP *int) []int {
	step := 1
	if stepP != nil {
		step = *stepP
	}
	if step == 0 {
		return nil
	}
	var start, stop int
	if startP != nil {
		start = *startP
		if start < 0 {
			start += n
		}
	} else if step > 0 {
		start = 0
	} else {
		start = n - 1
	}
	if endP != nil {
		stop = *endP
		if stop < 0 {
			stop += n
		}
	} else if step > 0 {
		stop = n
	} else {
		stop = -1
	}
	if step > 0 {
		start = max(start, 0)
		start = min(start, n)
	} else {
		start = min(start, n-1)
	}
	stop = max(stop, -1)
	stop = min(stop, n)
	var out []int
	if step > 0 {
		for i := start; i < stop; i += step {
			out = append(out, i)
		}
	} else {
		for i := start; i > stop; i += step {
			if i >= 0 && i < n {
				out = append(out, i)
			}
		}
	}
	return out
}

func (ev *evaluator) operandValues(o *operand, root, t *node) ([]*node, *scalar, error) {
	if !o.isPath {
		return nil, &o.val, nil
	}
	res, err := ev.evalSegs(o.segs, root, t)
	return res, nil, err
}

func (b *boolExpr) match(ev *evaluator, root, t *node) (bool, error) {
	lres, lconst, err := ev.operandValues(&b.left, root, t)
	if err != nil {
		return false, err
	}
	if b.op == opExists {
		return lconst != nil || len(lres) > 0, nil
	}
	if lconst == nil && len(lres) == 0 {
		return false, nil
	}
	rres, rconst, err := ev.operandValues(&b.right, root, t)
	if err != nil {
		return false, err
	}
	lefts := lres
	if lconst != nil {
		lefts = []*node{nil}
	}
	rights := rres
	if rconst != nil {
		rights = []*node{nil}
	}
	for _, ln := range lefts {
		for _, rn := range rights {
			var ls, rs scalar
			lok, rok := true, true
			if ln == nil {
				ls = *lconst
			} else {
				ls, lok = scalarOf(ln)
			}
			if rn == nil {
				rs = *rconst
			} else {
				rs, rok = scalarOf(rn)
			}
			ok, err := b.matchPair(ls, rs, lok && rok)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
	}
	return false, nil
}

func (b *boolExpr) matchPair(l, r scalar, bothScalars bool) (bool, error) {
	if !bothScalars {
		// Json.NET: only != matches when either side is an object or array.
		return b.op == opNe, nil
	}
	switch b.op {
	case opEq:
		return equalsCoerce(l, r), nil
	case opNe:
		return !equalsCoerce(l, r), nil
	case opStrictEq:
		return strictEquals(l, r), nil
	case opStrictNe:
		return !strictEquals(l, r), nil
	case opRegex:
		if l.k != scString || r.k != scString {
			return false, nil
		}
		re := b.right.re
		if re == nil {
			var err error
			if re, err = compileRegexLiteral(r.s); err != nil {
				return false, err
			}
		}
		return re.MatchString(l.s), nil
	}
	c, err := compareScalars(l, r)
	if err != nil {
		return false, err
	}
	switch b.op {
	case opLt:
		return c < 0, nil
	case opLe:
		return c <= 0, nil
	case opGt:
		return c > 0, nil
	case opGe:
		return c >= 0, nil
	}
	return false, nil
}
