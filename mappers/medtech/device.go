package medtech

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Measurement is one normalised reading extracted from a payload by a device
// template, MedTech's "Measurement" (Type, OccurrenceTimeUtc, DeviceId, ...).
type Measurement struct {
	// Type is the typeName of the template that produced the measurement; it
	// selects the FHIR mapping template (FHIRMapping.Lookup).
	Type string
	// DeviceID is the device identifier (always set).
	DeviceID string
	// PatientID, EncounterID and CorrelationID are empty when the template
	// has no such expression or it selected nothing.
	PatientID, EncounterID, CorrelationID string
	// Timestamp is when the reading was taken, with the UTC offset the payload
	// gave (UTC when it gave none).
	Timestamp time.Time
	// Values are the extracted values in template order; optional values
	// that were absent are omitted.
	Values []Value
}

// Value is one named value of a measurement.
type Value struct {
	// Name is the template's valueName, bound by the FHIR mapping's valueName.
	Name string
	// Value is the scalar as text: a string as is, a number with the literal
	// the payload used (JsonPath) or in shortest decimal form (JmesPath
	// results), a boolean as "true" or "false".
	Value string
}

// Language is an expression language of a CalculatedContent template.
type Language string

// Expression languages, spelled as in template files (matched ignoring case).
const (
	JSONPath Language = "JsonPath"
	JMESPath Language = "JmesPath"
)

// Device template types, spelled as in template files. Files may use any
// letter case and may append "Template" (MedTech accepts both).
const (
	TypeCollectionContent         = "CollectionContent"
	TypeJSONPathContent           = "JsonPathContent"
	TypeIotJSONPathContent        = "IotJsonPathContent"
	TypeIotCentralJSONPathContent = "IotCentralJsonPathContent"
	TypeCalculatedContent         = "CalculatedContent"
)

// Fixed expressions of the IoT templates (MedTech ignores any given in the file).
const (
	iotDeviceIDExpr            = "$.SystemProperties.iothub-connection-device-id"
	iotTimestampExpr           = "$.Properties.iothub-creation-time-utc"
	iotAlternateTimestampExpr  = "$.SystemProperties.iothub-enqueuedtime"
	iotCentralDeviceIDExpr     = "$.deviceId"
	iotCentralTimestampExpr    = "$.enqueuedTime"
	matchedTokenProperty       = "matchedToken"
	fieldTypeMatchExpression   = "typeMatchExpression"
	fieldDeviceIDExpression    = "deviceIdExpression"
	fieldPatientIDExpression   = "patientIdExpression"
	fieldEncounterIDExpression = "encounterIdExpression"
	fieldCorrelationIDExpr     = "correlationIdExpression"
	fieldTimestampExpression   = "timestampExpression"
)

// DeviceTemplate is a loaded device mapping (devicecontent.json). It is
// immutable and safe for concurrent use.
type DeviceTemplate struct {
	templates []*contentTemplate
}

// TemplateInfo describes one leaf template of a device mapping.
type TemplateInfo struct {
	// Path locates the template in the file, e.g. "template[3].template".
	Path string
	// Type is the canonical template type, e.g. "CalculatedContent".
	Type string
	// TypeName is the measurement type the template produces.
	TypeName string
	// ValueNames are the names of its values, in order.
	ValueNames []string
}

type expression struct {
	src  string
	lang Language
	jp   *jsonPath
	jm   *jmesExpr
}

type valueExpr struct {
	name     string
	expr     *expression // nil: declared without an expression (never produces a value)
	required bool
}

type contentTemplate struct {
	kind          string
	path          string
	typeName      string
	wrap          bool // CalculatedContent: expressions see the payload plus "matchedToken"
	typeMatch     *expression
	deviceID      *expression
	patientID     *expression
	encounterID   *expression
	correlationID *expression
	timestamps    []*expression // the first that yields a timestamp wins
	values        []valueExpr
}

// Templates lists the leaf templates in evaluation order.
func (t *DeviceTemplate) Templates() []TemplateInfo {
	out := make([]TemplateInfo, 0, len(t.templates))
	for _, ct := range t.templates {
		info := TemplateInfo{Path: ct.path, Type: ct.kind, TypeName: ct.typeName}
		for _, v := range ct.values {
			info.ValueNames = append(info.ValueNames, v.name)
		}
		out = append(out, info)
	}
	return out
}

// TypeNames lists the distinct typeNames the templates produce, in file order.
func (t *DeviceTemplate) TypeNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, ct := range t.templates {
		if !seen[ct.typeName] {
			seen[ct.typeName] = true
			out = append(out, ct.typeName)
		}
	}
	return out
}

// ---- loading ----

type loader struct {
	src []byte
}

func (l *loader) errAt(off int, path, format string, args ...any) error {
	line, col := lineCol(l.src, off)
	return &LoadError{Path: path, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (l *loader) errf(n *node, path, format string, args ...any) error {
	return l.errAt(n.off, path, format, args...)
}

func syntaxLoadError(src []byte, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		line, col := lineCol(src, se.off)
		return &LoadError{Line: line, Column: col, Msg: "invalid JSON: " + se.msg}
	}
	return &LoadError{Msg: "invalid JSON: " + err.Error()}
}

func joinPath(base, name string) string {
	if base == "" {
		return name
	}
	return base + "." + name
}

// field returns the member named name, matched exactly or else ignoring case
// (Json.NET binds properties case-insensitively), and its path.
func field(obj *node, base, name string) (*node, string) {
	var found *member
	for i := range obj.obj {
		m := &obj.obj[i]
		if m.key == name {
			found = m
			break
		}
		if found == nil && strings.EqualFold(m.key, name) {
			found = m
		}
	}
	if found == nil {
		return nil, joinPath(base, name)
	}
	return found.val, joinPath(base, found.key)
}

// canonicalType maps a templateType to its canonical spelling: MedTech
// compares ignoring case and accepts an optional "Template" suffix.
func canonicalType(s string, known ...string) (string, bool) {
	for _, k := range known {
		if strings.EqualFold(s, k) || strings.EqualFold(s, k+"Template") {
			return k, true
		}
	}
	return "", false
}

func (l *loader) stringField(obj *node, base, name string, required bool) (string, bool, error) {
	v, path := field(obj, base, name)
	if v == nil || v.kind == kindNull {
		if required {
			return "", false, l.errf(obj, path, "required property %q is missing", name)
		}
		return "", false, nil
	}
	switch v.kind {
	case kindString, kindNumber:
		return v.s, true, nil
	}
	return "", false, l.errf(v, path, "expected a string, got %s", v.kind)
}

func (l *loader) boolField(obj *node, base, name string) (bool, error) {
	v, path := field(obj, base, name)
	if v == nil {
		return false, nil
	}
	switch v.kind {
	case kindNull:
		return false, nil
	case kindBool:
		return v.b, nil
	case kindString:
		switch strings.ToLower(strings.TrimSpace(v.s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	case kindNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		if err == nil {
			return f != 0, nil
		}
	}
	return false, l.errf(v, path, "expected true or false, got %s", describeNode(v))
}

func describeNode(n *node) string {
	switch n.kind {
	case kindString:
		return strconv.Quote(n.s)
	case kindNumber:
		return n.s
	}
	return n.kind.String()
}

func parseLanguage(s string) (Language, bool) {
	switch {
	case strings.EqualFold(strings.TrimSpace(s), string(JSONPath)):
		return JSONPath, true
	case strings.EqualFold(strings.TrimSpace(s), string(JMESPath)):
		return JMESPath, true
	}
	return "", false
}

// LoadDeviceTemplate parses and compiles a device mapping (devicecontent.json).
// Every expression is compiled here, so a template that loads cannot fail
// later for a syntax reason. Errors are *LoadError.
func LoadDeviceTemplate(data []byte) (*DeviceTemplate, error) {
	root, err := parseJSON(data)
	if err != nil {
		return nil, syntaxLoadError(data, err)
	}
	l := &loader{src: data}
	if root.kind != kindObject {
		return nil, l.errf(root, "", "expected an object with templateType and template, got %s", root.kind)
	}
	typ, _, err := l.stringField(root, "", "templateType", true)
	if err != nil {
		return nil, err
	}
	if _, ok := canonicalType(typ, TypeCollectionContent); !ok {
		v, path := field(root, "", "templateType")
		return nil, l.errf(v, path, "the root templateType must be %q, got %q", TypeCollectionContent, typ)
	}
	dt := &DeviceTemplate{}
	if err := l.collection(root, "", dt); err != nil {
		return nil, err
	}
	return dt, nil
}

func (l *loader) collection(container *node, base string, dt *DeviceTemplate) error {
	list, path := field(container, base, "template")
	if list == nil || list.kind != kindArray {
		at := container
		if list != nil {
			at = list
		}
		return l.errf(at, path, "expected an array of templates for %s", TypeCollectionContent)
	}
	for i, item := range list.arr {
		if err := l.container(item, fmt.Sprintf("%s[%d]", path, i), dt); err != nil {
			return err
		}
	}
	return nil
}

// container loads one {"templateType": ..., "template": ...} element.
func (l *loader) container(c *node, path string, dt *DeviceTemplate) error {
	if c.kind != kindObject {
		return l.errf(c, path, "expected an object with templateType and template, got %s", c.kind)
	}
	typ, _, err := l.stringField(c, path, "templateType", true)
	if err != nil {
		return err
	}
	kind, ok := canonicalType(typ, TypeCollectionContent, TypeJSONPathContent, TypeIotJSONPathContent,
		TypeIotCentralJSONPathContent, TypeCalculatedContent)
	if !ok {
		v, tpath := field(c, path, "templateType")
		return l.errf(v, tpath, "unknown templateType %q (supported: %s, %s, %s, %s, %s)", typ,
			TypeCollectionContent, TypeJSONPathContent, TypeIotJSONPathContent, TypeIotCentralJSONPathContent, TypeCalculatedContent)
	}
	if kind == TypeCollectionContent {
		return l.collection(c, path, dt)
	}
	body, bpath := field(c, path, "template")
	if body == nil || body.kind != kindObject {
		at := c
		if body != nil {
			at = body
		}
		return l.errf(at, bpath, "expected an object for the template of type %s", kind)
	}
	ct, err := l.content(kind, body, bpath)
	if err != nil {
		return err
	}
	dt.templates = append(dt.templates, ct)
	return nil
}

func (l *loader) content(kind string, body *node, path string) (*contentTemplate, error) {
	ct := &contentTemplate{kind: kind, path: path, wrap: kind == TypeCalculatedContent}
	name, _, err := l.stringField(body, path, "typeName", true)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		v, p := field(body, path, "typeName")
		return nil, l.errf(v, p, "typeName must not be empty")
	}
	ct.typeName = name

	lang := JSONPath
	if kind == TypeCalculatedContent {
		if s, ok, err := l.stringField(body, path, "defaultExpressionLanguage", false); err != nil {
			return nil, err
		} else if ok {
			v, p := field(body, path, "defaultExpressionLanguage")
			if lang, ok = parseLanguage(s); !ok {
				return nil, l.errf(v, p, "unknown expression language %q (JsonPath or JmesPath)", s)
			}
		}
	}
	allowJMES := kind == TypeCalculatedContent
	expr := func(name string, required bool) (*expression, error) {
		v, p := field(body, path, name)
		e, err := l.expression(v, p, lang, allowJMES)
		if err != nil {
			return nil, err
		}
		if e == nil && required {
			return nil, l.errf(body, p, "required property %q is missing", name)
		}
		return e, nil
	}
	if ct.typeMatch, err = expr(fieldTypeMatchExpression, true); err != nil {
		return nil, err
	}
	if ct.patientID, err = expr(fieldPatientIDExpression, false); err != nil {
		return nil, err
	}
	if ct.encounterID, err = expr(fieldEncounterIDExpression, false); err != nil {
		return nil, err
	}
	if ct.correlationID, err = expr(fieldCorrelationIDExpr, false); err != nil {
		return nil, err
	}
	switch kind {
	case TypeIotJSONPathContent:
		ct.deviceID = mustJSONPath(iotDeviceIDExpr)
		ct.timestamps = []*expression{mustJSONPath(iotTimestampExpr), mustJSONPath(iotAlternateTimestampExpr)}
	case TypeIotCentralJSONPathContent:
		ct.deviceID = mustJSONPath(iotCentralDeviceIDExpr)
		ct.timestamps = []*expression{mustJSONPath(iotCentralTimestampExpr)}
	default:
		if ct.deviceID, err = expr(fieldDeviceIDExpression, true); err != nil {
			return nil, err
		}
		ts, err := expr(fieldTimestampExpression, true)
		if err != nil {
			return nil, err
		}
		ct.timestamps = []*expression{ts}
	}

	vals, vpath := field(body, path, "values")
	if vals != nil && vals.kind != kindNull {
		if vals.kind != kindArray {
			return nil, l.errf(vals, vpath, "expected an array of values, got %s", vals.kind)
		}
		for i, v := range vals.arr {
			ipath := fmt.Sprintf("%s[%d]", vpath, i)
			if v.kind != kindObject {
				return nil, l.errf(v, ipath, "expected a value object, got %s", v.kind)
			}
			ve := valueExpr{}
			if ve.name, _, err = l.stringField(v, ipath, "valueName", true); err != nil {
				return nil, err
			}
			if strings.TrimSpace(ve.name) == "" {
				n, p := field(v, ipath, "valueName")
				return nil, l.errf(n, p, "valueName must not be empty")
			}
			if ve.required, err = l.boolField(v, ipath, "required"); err != nil {
				return nil, err
			}
			en, epath := field(v, ipath, "valueExpression")
			if ve.expr, err = l.expression(en, epath, lang, allowJMES); err != nil {
				return nil, err
			}
			if ve.expr == nil && ve.required {
				return nil, l.errf(v, epath, "required value %q has no valueExpression", ve.name)
			}
			ct.values = append(ct.values, ve)
		}
	}
	return ct, nil
}

func mustJSONPath(src string) *expression {
	jp, err := compileJSONPath(src)
	if err != nil {
		panic(err)
	}
	return &expression{src: src, lang: JSONPath, jp: jp}
}

// expression loads an expression written either as a string (in the default
// language) or as {"value": ..., "language": ...}. A missing, null or blank
// expression is nil.
func (l *loader) expression(v *node, path string, lang Language, allowJMES bool) (*expression, error) {
	if v == nil || v.kind == kindNull {
		return nil, nil
	}
	src := ""
	switch v.kind {
	case kindString:
		src = v.s
	case kindObject:
		s, ok, err := l.stringField(v, path, "value", false)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		src = s
		ls, ok, err := l.stringField(v, path, "language", false)
		if err != nil {
			return nil, err
		}
		if ok {
			n, p := field(v, path, "language")
			if lang, ok = parseLanguage(ls); !ok {
				return nil, l.errf(n, p, "unknown expression language %q (JsonPath or JmesPath)", ls)
			}
		}
		vn, vp := field(v, path, "value")
		v, path = vn, vp
	default:
		return nil, l.errf(v, path, "expected an expression string or {\"value\", \"language\"} object, got %s", v.kind)
	}
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	e := &expression{src: src, lang: lang}
	var err error
	switch lang {
	case JMESPath:
		if !allowJMES {
			return nil, l.errf(v, path, "JmesPath expressions are only supported by %s templates", TypeCalculatedContent)
		}
		e.jm, err = compileJMESPath(src)
	default:
		e.jp, err = compileJSONPath(src)
	}
	if err != nil {
		return nil, l.errf(v, path, "%v", err)
	}
	return e, nil
}

// ---- evaluation ----

// mapState holds per-payload values shared by all templates.
type mapState struct {
	root    *node
	data    any
	hasData bool
}

func (st *mapState) rootData() any {
	if !st.hasData {
		st.data = toData(st.root)
		st.hasData = true
	}
	return st.data
}

// subject is what a template's expressions are evaluated against: the
// matched token, or for CalculatedContent the payload plus "matchedToken".
type subject struct {
	node    *node
	matched *node
	wrap    bool
	data    any
	hasData bool
}

func (s *subject) jmesData(st *mapState) any {
	if s.hasData {
		return s.data
	}
	s.hasData = true
	if !s.wrap {
		s.data = toData(s.node)
		return s.data
	}
	rootMap, _ := st.rootData().(map[string]any)
	m := make(map[string]any, len(rootMap)+1)
	for k, v := range rootMap {
		m[k] = v
	}
	m[matchedTokenProperty] = toData(s.matched)
	s.data = m
	return s.data
}

// Map evaluates every template against one payload and returns all
// measurements: templates in file order, and for each template one
// measurement per matched token in document order. The payload is the JSON
// MedTech evaluates templates against, usually the event envelope
// {"Body": ..., "Properties": ..., "SystemProperties": ...} (see Envelope).
// Any failure aborts the whole payload, as in MedTech; errors are
// *PayloadError or *EvalError.
func (t *DeviceTemplate) Map(payload []byte) ([]Measurement, error) {
	root, err := parseJSON(payload)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			line, col := lineCol(payload, se.off)
			return nil, &PayloadError{Line: line, Column: col, Msg: "not valid JSON: " + se.msg}
		}
		return nil, &PayloadError{Msg: "not valid JSON: " + err.Error()}
	}
	if root.kind != kindObject && root.kind != kindArray {
		return nil, &PayloadError{Msg: fmt.Sprintf("expected a JSON object or array, got %s", root.kind)}
	}
	st := &mapState{root: root}
	var out []Measurement
	for _, ct := range t.templates {
		if out, err = ct.appendMeasurements(out, st); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (ct *contentTemplate) fail(field string, e *expression, err error) error {
	src := ""
	if e != nil {
		src = e.src
	}
	return &EvalError{TemplateType: ct.kind, TypeName: ct.typeName, TemplatePath: ct.path, Field: field, Expression: src, Err: err}
}

func (ct *contentTemplate) matchTokens(st *mapState) ([]*node, error) {
	e := ct.typeMatch
	if e.jp != nil {
		res, err := e.jp.selectTokens(st.root, st.root)
		if err != nil {
			return nil, ct.fail(fieldTypeMatchExpression, e, err)
		}
		return res, nil
	}
	res, err := e.jm.search(st.rootData())
	if err != nil {
		return nil, ct.fail(fieldTypeMatchExpression, e, err)
	}
	if res == nil {
		return nil, nil
	}
	if list, ok := res.([]any); ok && e.jm.projection {
		out := make([]*node, 0, len(list))
		for _, item := range list {
			if item != nil {
				out = append(out, fromData(item))
			}
		}
		return out, nil
	}
	return []*node{fromData(res)}, nil
}

func (ct *contentTemplate) appendMeasurements(out []Measurement, st *mapState) ([]Measurement, error) {
	matches, err := ct.matchTokens(st)
	if err != nil {
		return out, err
	}
	for _, m := range matches {
		subj := &subject{node: m, matched: m, wrap: ct.wrap}
		if ct.wrap {
			if st.root.kind != kindObject {
				return out, ct.fail(fieldTypeMatchExpression, ct.typeMatch,
					errors.New("CalculatedContent needs a JSON object payload to add matchedToken to"))
			}
			if st.root.get(matchedTokenProperty) != nil {
				return out, ct.fail(fieldTypeMatchExpression, ct.typeMatch,
					errors.New("the payload already has a property named matchedToken"))
			}
			obj := make([]member, len(st.root.obj), len(st.root.obj)+1)
			copy(obj, st.root.obj)
			subj.node = &node{kind: kindObject, obj: append(obj, member{key: matchedTokenProperty, val: m})}
		}
		meas, err := ct.measure(subj, st)
		if err != nil {
			return out, err
		}
		out = append(out, meas)
	}
	return out, nil
}

// result is the outcome of evaluating one single-token expression.
type result struct {
	text     string
	isString bool
	present  bool
	convErr  error // selected something that is not a usable scalar
}

var errNotScalar = errors.New("selected a JSON object or array, not a single value")

func (e *expression) eval(subj *subject, st *mapState) (result, error) {
	if e.jp != nil {
		n, err := e.jp.selectToken(subj.node, subj.node)
		if err != nil || n == nil {
			return result{}, err
		}
		switch n.kind {
		case kindNull:
			return result{}, nil
		case kindString:
			return result{text: n.s, isString: true, present: n.s != ""}, nil
		case kindNumber:
			return result{text: n.s, present: true}, nil
		case kindBool:
			return result{text: strconv.FormatBool(n.b), present: true}, nil
		}
		return result{present: true, convErr: errNotScalar}, nil
	}
	res, err := e.jm.search(subj.jmesData(st))
	if err != nil {
		return result{}, err
	}
	switch v := res.(type) {
	case nil:
		return result{}, nil
	case string:
		return result{text: v, isString: true, present: v != ""}, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return result{present: true, convErr: errNotFinite}, nil
		}
		return result{text: formatNumber(v), present: true}, nil
	case bool:
		return result{text: strconv.FormatBool(v), present: true}, nil
	case []any:
		if e.jm.projection && len(v) > 1 {
			return result{}, ErrMultipleTokens
		}
	}
	return result{present: true, convErr: errNotScalar}, nil
}

// text evaluates an identifier expression. Missing or unusable values are
// errors when required and empty otherwise.
func (ct *contentTemplate) text(subj *subject, st *mapState, field string, e *expression, required bool) (string, error) {
	if e == nil {
		return "", nil
	}
	r, err := e.eval(subj, st)
	if err != nil {
		return "", ct.fail(field, e, err)
	}
	switch {
	case r.convErr != nil:
		if required {
			return "", ct.fail(field, e, r.convErr)
		}
		return "", nil
	case !r.present:
		if required {
			return "", ct.fail(field, e, ErrRequiredValueMissing)
		}
		return "", nil
	}
	return r.text, nil
}

func (ct *contentTemplate) timestamp(subj *subject, st *mapState) (time.Time, error) {
	var firstErr error
	var srcs []string
	for _, e := range ct.timestamps {
		srcs = append(srcs, e.src)
		r, err := e.eval(subj, st)
		if err != nil {
			return time.Time{}, ct.fail(fieldTimestampExpression, e, err)
		}
		if !r.present {
			continue
		}
		if r.convErr == nil && !r.isString {
			r.convErr = fmt.Errorf("%s is a %s, not a date-time string", r.text, describeKind(r))
		}
		if r.convErr == nil {
			ts, perr := parseTimestamp(r.text)
			if perr == nil {
				return ts, nil
			}
			r.convErr = perr
		}
		if firstErr == nil {
			firstErr = r.convErr
		}
	}
	err := firstErr
	if err == nil {
		err = ErrRequiredValueMissing
	}
	e := &expression{src: strings.Join(srcs, ",")}
	return time.Time{}, ct.fail(fieldTimestampExpression, e, err)
}

func describeKind(r result) string {
	if r.text == "true" || r.text == "false" {
		return "boolean"
	}
	return "number"
}

func (ct *contentTemplate) measure(subj *subject, st *mapState) (Measurement, error) {
	m := Measurement{Type: ct.typeName}
	var err error
	// MedTech's order: device id, timestamp, correlation id, patient id,
	// encounter id, values.
	if m.DeviceID, err = ct.text(subj, st, fieldDeviceIDExpression, ct.deviceID, true); err != nil {
		return m, err
	}
	if m.Timestamp, err = ct.timestamp(subj, st); err != nil {
		return m, err
	}
	if m.CorrelationID, err = ct.text(subj, st, fieldCorrelationIDExpr, ct.correlationID, true); err != nil {
		return m, err
	}
	if m.PatientID, err = ct.text(subj, st, fieldPatientIDExpression, ct.patientID, false); err != nil {
		return m, err
	}
	if m.EncounterID, err = ct.text(subj, st, fieldEncounterIDExpression, ct.encounterID, false); err != nil {
		return m, err
	}
	for _, v := range ct.values {
		if v.expr == nil {
			continue
		}
		field := fmt.Sprintf("value %q", v.name)
		if v.required {
			field = fmt.Sprintf("required value %q", v.name)
		}
		text, err := ct.text(subj, st, field, v.expr, v.required)
		if err != nil {
			return m, err
		}
		if text != "" {
			m.Values = append(m.Values, Value{Name: v.name, Value: text})
		}
	}
	return m, nil
}

var timestampLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTimestamp accepts ISO 8601 date-times ("T" or a space between date
// and time, optional fraction, offset "Z", "+hh:mm", "+hhmm" or "+hh") and
// plain dates. A time without an offset is taken as UTC.
func parseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	candidate := s
	if len(s) > 10 && s[10] == ' ' {
		candidate = s[:10] + "T" + s[11:]
	}
	for _, layout := range timestampLayouts {
		t, err := time.Parse(layout, candidate)
		if err != nil {
			continue
		}
		if _, off := t.Zone(); off == 0 {
			return t.UTC(), nil
		} else {
			return t.In(time.FixedZone("", off)), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date-time", s)
}
