package medtech

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
)

// jmesExpr is a compiled JMESPath expression.
type jmesExpr struct {
	src string
	jp  jmespath.JMESPath
	// projection reports whether the top of the expression is a projection;
	// MedTech (JmesPath.Net) then yields each projected element as a separate
	// matched token, and otherwise the whole result as one token.
	projection bool
}

// compileJMESPath parses a JMESPath expression with MedTech's custom
// functions registered.
func compileJMESPath(src string) (_ *jmesExpr, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid JMESPath %q: %v", src, r)
		}
	}()
	ast, err := parsing.NewParser().Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invalid JMESPath %q: %v", src, err)
	}
	if hasValueProjection(ast) {
		return nil, fmt.Errorf("invalid JMESPath %q: an object wildcard projection (\"*\" applied to an object) is not supported because its order is undefined here; use a multi-select list or a sorted function instead", src)
	}
	jp, err := jmespath.Compile(src, customFunctions...)
	if err != nil {
		return nil, fmt.Errorf("invalid JMESPath %q: %v", src, err)
	}
	return &jmesExpr{src: src, jp: jp, projection: isProjection(ast)}, nil
}

func hasValueProjection(n parsing.ASTNode) bool {
	if n.NodeType == parsing.ASTValueProjection {
		return true
	}
	for _, c := range n.Children {
		if hasValueProjection(c) {
			return true
		}
	}
	return false
}

func isProjection(n parsing.ASTNode) bool {
	switch n.NodeType {
	case parsing.ASTProjection, parsing.ASTFilterProjection, parsing.ASTFlatten:
		return true
	case parsing.ASTSubexpression:
		// "a.b[*].c" parses as a sub-expression whose right side projects.
		return len(n.Children) > 0 && isProjection(n.Children[len(n.Children)-1])
	}
	return false
}

// search evaluates the expression; panics in the library become errors.
func (e *jmesExpr) search(data any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("JMESPath evaluation failed: %v", r)
		}
	}()
	return e.jp.Search(data)
}

// toData converts a parsed JSON node to the generic form the JMESPath
// library evaluates: map[string]any, []any, float64, string, bool, nil.
func toData(n *node) any {
	switch n.kind {
	case kindNull:
		return nil
	case kindBool:
		return n.b
	case kindString:
		return n.s
	case kindNumber:
		f, _ := strconv.ParseFloat(n.s, 64)
		return f
	case kindArray:
		out := make([]any, len(n.arr))
		for i, v := range n.arr {
			out[i] = toData(v)
		}
		return out
	default:
		out := make(map[string]any, len(n.obj))
		for _, m := range n.obj {
			out[m.key] = toData(m.val)
		}
		return out
	}
}

// fromData converts a JMESPath result back to a node (object keys sorted).
func fromData(v any) *node {
	switch x := v.(type) {
	case nil:
		return &node{kind: kindNull}
	case bool:
		return &node{kind: kindBool, b: x}
	case string:
		return &node{kind: kindString, s: x}
	case float64:
		return &node{kind: kindNumber, s: formatNumber(x)}
	case []any:
		n := &node{kind: kindArray, arr: make([]*node, len(x))}
		for i, e := range x {
			n.arr[i] = fromData(e)
		}
		return n
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		n := &node{kind: kindObject, obj: make([]member, len(keys))}
		for i, k := range keys {
			n.obj[i] = member{key: k, val: fromData(x[k])}
		}
		return n
	default:
		// Functions of the library only return the types above; render
		// anything else as text rather than failing.
		return &node{kind: kindString, s: fmt.Sprint(x)}
	}
}

// formatNumber renders a JMESPath number. Integral values print without a
// fraction; others use the shortest decimal that round-trips, without an
// exponent between 1e-7 and 1e21.
func formatNumber(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-7 || a >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// ---- MedTech's custom functions (docs/CustomFunctions.md) ----

// maxExactInt is 2^63: float64 values at or beyond it are not int64s.
const maxExactInt = 9223372036854775808.0

// asInteger reports whether a JMESPath number is integral and fits int64.
// JmesPath.Net keeps JSON integers and floats apart; the Go library gives
// only float64, so an integral value stands for MedTech's Integer token.
func asInteger(f float64) (int64, bool) {
	if f != math.Trunc(f) || f >= maxExactInt || f < -maxExactInt || math.IsNaN(f) {
		return 0, false
	}
	return int64(f), true
}

var errNotFinite = errors.New("result is not a finite number")

func finite(f float64) (any, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errNotFinite
	}
	return f, nil
}

func numberArgs() []jmespath.ArgSpec {
	return []jmespath.ArgSpec{{Types: []jmespath.JpType{jmespath.JpNumber}}, {Types: []jmespath.JpType{jmespath.JpNumber}}}
}

// arith builds add/subtract/multiply/divide: integer arithmetic (with an
// overflow error) when both operands are integral, float arithmetic otherwise.
func arith(name string, intOp func(a, b int64) (int64, error), floatOp func(a, b float64) float64) jmespath.FunctionEntry {
	return jmespath.FunctionEntry{
		Name:      name,
		Arguments: numberArgs(),
		Handler: func(args []any) (any, error) {
			a, b := args[0].(float64), args[1].(float64)
			ai, aok := asInteger(a)
			bi, bok := asInteger(b)
			if aok && bok {
				r, err := intOp(ai, bi)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				return float64(r), nil
			}
			r, err := finite(floatOp(a, b))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return r, nil
		},
	}
}

var errOverflow = errors.New("integer overflow: the result does not fit a 64-bit integer")

func addInt(a, b int64) (int64, error) {
	r := a + b
	if (a > 0 && b > 0 && r < 0) || (a < 0 && b < 0 && r >= 0) {
		return 0, errOverflow
	}
	return r, nil
}

func subInt(a, b int64) (int64, error) {
	if b == math.MinInt64 {
		if a >= 0 {
			return 0, errOverflow
		}
		return a - b, nil
	}
	return addInt(a, -b)
}

func mulInt(a, b int64) (int64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	r := a * b
	if r/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, errOverflow
	}
	return r, nil
}

func divInt(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	if a == math.MinInt64 && b == -1 {
		return 0, errOverflow
	}
	return a / b, nil // truncates toward zero, like C#
}

func powFunc(args []any) (any, error) {
	a, b := args[0].(float64), args[1].(float64)
	_, aok := asInteger(a)
	_, bok := asInteger(b)
	r := math.Pow(a, b)
	if aok && bok {
		// C#: Convert.ToInt64(Math.Pow(a, b)), which rounds half to even.
		if math.IsNaN(r) || r >= maxExactInt || r < -maxExactInt {
			return nil, fmt.Errorf("pow: %w", errOverflow)
		}
		return math.RoundToEven(r), nil
	}
	v, err := finite(r)
	if err != nil {
		return nil, fmt.Errorf("pow: %w", err)
	}
	return v, nil
}

func insertStringFunc(args []any) (any, error) {
	orig, ins := args[0].(string), args[1].(string)
	pos, ok := asInteger(args[2].(float64))
	if !ok {
		return nil, fmt.Errorf("insertString: position %v is not an integer", args[2])
	}
	n := int64(utf8.RuneCountInString(orig))
	if pos < 0 || pos > n {
		return nil, fmt.Errorf("insertString: position %d is out of range [0, %d]", pos, n)
	}
	runes := []rune(orig)
	return string(runes[:pos]) + ins + string(runes[pos:]), nil
}

func appendStringFunc(args []any) (any, error) {
	return args[0].(string) + args[1].(string), nil
}

// DateTimeOffset's range: 0001-01-01 to 9999-12-31T23:59:59.999.
const (
	minUnixSeconds = -62135596800
	maxUnixSeconds = 253402300799
)

func fromUnix(name string, perSecond int64) func(args []any) (any, error) {
	return func(args []any) (any, error) {
		v, ok := asInteger(args[0].(float64))
		if !ok {
			return nil, fmt.Errorf("%s: %v is not an integer", name, args[0])
		}
		if v < minUnixSeconds*perSecond || v > (maxUnixSeconds+1)*perSecond-1 {
			return nil, fmt.Errorf("%s: %d is outside the supported date range", name, v)
		}
		t := time.Unix(v/perSecond, (v%perSecond)*(int64(time.Second)/perSecond)).UTC()
		return t.Format(time.RFC3339Nano), nil
	}
}

// sortedKeys, sortedValues and sortedItems replace the library's keys(),
// values() and items(), whose order follows Go's randomised map iteration.
// Keys are sorted so that results are deterministic (JmesPath.Net follows
// the document order instead).
func sortedKeyList(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var objectArg = []jmespath.ArgSpec{{Types: []jmespath.JpType{jmespath.JpObject}}}

var customFunctions = []jmespath.FunctionEntry{
	arith("add", addInt, func(a, b float64) float64 { return a + b }),
	arith("subtract", subInt, func(a, b float64) float64 { return a - b }),
	arith("multiply", mulInt, func(a, b float64) float64 { return a * b }),
	arith("divide", divInt, func(a, b float64) float64 { return a / b }),
	{Name: "pow", Arguments: numberArgs(), Handler: powFunc},
	{
		Name: "insertString",
		Arguments: []jmespath.ArgSpec{
			{Types: []jmespath.JpType{jmespath.JpString}},
			{Types: []jmespath.JpType{jmespath.JpString}},
			{Types: []jmespath.JpType{jmespath.JpNumber}},
		},
		Handler: insertStringFunc,
	},
	{
		Name: "appendString",
		Arguments: []jmespath.ArgSpec{
			{Types: []jmespath.JpType{jmespath.JpString}},
			{Types: []jmespath.JpType{jmespath.JpString}},
		},
		Handler: appendStringFunc,
	},
	{Name: "fromUnixTimestamp", Arguments: []jmespath.ArgSpec{{Types: []jmespath.JpType{jmespath.JpNumber}}}, Handler: fromUnix("fromUnixTimestamp", 1)},
	{Name: "fromUnixTimestampMs", Arguments: []jmespath.ArgSpec{{Types: []jmespath.JpType{jmespath.JpNumber}}}, Handler: fromUnix("fromUnixTimestampMs", 1000)},
	{Name: "keys", Arguments: objectArg, Handler: func(args []any) (any, error) {
		keys := sortedKeyList(args[0].(map[string]any))
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	}},
	{Name: "values", Arguments: objectArg, Handler: func(args []any) (any, error) {
		m := args[0].(map[string]any)
		keys := sortedKeyList(m)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = m[k]
		}
		return out, nil
	}},
	{Name: "items", Arguments: objectArg, Handler: func(args []any) (any, error) {
		m := args[0].(map[string]any)
		keys := sortedKeyList(m)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = []any{k, m[k]}
		}
		return out, nil
	}},
}
