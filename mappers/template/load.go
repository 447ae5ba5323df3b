package template

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/fhir-bridge/fhir-bridge/mappers/medtech"
	"go.yaml.in/yaml/v3"
)

// Template is a loaded native template. It is immutable and safe for
// concurrent use.
type Template struct {
	vendor   string
	readings []reading
}

// Vendor returns the template's vendor name.
func (t *Template) Vendor() string { return t.vendor }

// expr is a compiled expression. root expressions ("$$...") are evaluated
// against the payload root, the others against the matched token.
type expr struct {
	src  string
	q    *medtech.Query
	root bool
}

// text is a literal or, when e is set, an expression.
type text struct {
	lit string
	e   *expr
}

type reading struct {
	kind       string
	provenance string // "<vendor>/<kind>"
	match      *expr
	device     *expr
	deviceInfo []deviceField
	patient    *expr
	identifier *expr // patientIdentifier value
	idSystem   string
	subjectID  *expr
	subject    string // subject type, set with subjectID
	time, end  *expr
	timeFormat timeFormat
	value      *expr
	unit       text
	absent     text
	status     text
	components []component
}

type deviceField struct {
	name string // "deviceInfo.serial", ...
	t    text
	set  func(*mappers.Device, string)
}

type component struct {
	kind     string
	fields   valueFields
	value    *expr
	unit     text
	absent   text
	optional bool
}

// valueFields name a value, its unit and its data-absent reason in errors.
type valueFields struct{ value, unit, absent string }

var readingValueFields = valueFields{"value", "unit", "dataAbsentReason"}

var (
	vendorName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	plainKey   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

var (
	topKeys       = []string{"version", "vendor", "defaults", "readings"}
	defaultKeys   = []string{"patientIdentifierSystem", "timeFormat", "subjectType"}
	readingKeys   = []string{"kind", "match", "device", "deviceInfo", "patient", "patientIdentifier", "subject", "time", "end", "timeFormat", "value", "unit", "dataAbsentReason", "status", "components"}
	componentKeys = []string{"kind", "value", "unit", "dataAbsentReason", "required"}
	identKeys     = []string{"system", "value"}
	subjectKeys   = []string{"type", "id"}
	deviceKeys    = []string{"serial", "eui64", "mac", "model", "manufacturer"}
)

// deviceSetters fill mappers.Device from deviceInfo, by key.
var deviceSetters = map[string]func(*mappers.Device, string){
	"serial":       func(d *mappers.Device, s string) { d.Serial = s },
	"eui64":        func(d *mappers.Device, s string) { d.EUI64 = s },
	"mac":          func(d *mappers.Device, s string) { d.MAC = s },
	"model":        func(d *mappers.Device, s string) { d.Model = s },
	"manufacturer": func(d *mappers.Device, s string) { d.Manufacturer = s },
}

// Load reads a template in the native YAML format, version 1
// (docs/templates.md). Every expression is compiled and every kind, unit,
// status and subject checked against the catalogue now, so a template that
// loads can only fail on payloads that do not fit it. Errors are *LoadError
// naming the YAML path, line and column.
func Load(data []byte) (*Template, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LoadError{Reason: "empty template: expected version, vendor and readings"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, &LoadError{Line: extra.Line, Column: extra.Column, Reason: "more than one YAML document; a template file holds one"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &LoadError{Reason: "empty template: expected version, vendor and readings"}
		}
		root = root.Content[0]
	}
	l := &loader{}
	return l.template(root)
}

// yamlError turns a YAML syntax error into a LoadError with its line.
func yamlError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &LoadError{Line: line, Column: 1, Reason: "invalid YAML: " + m[2]}
	}
	return &LoadError{Reason: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type loader struct {
	defaults struct {
		idSystem    string
		timeFormat  timeFormat
		subjectType string
	}
}

func errAt(n *yaml.Node, path, format string, args ...any) *LoadError {
	return &LoadError{Path: path, Line: n.Line, Column: n.Column, Reason: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if !plainKey.MatchString(key) {
		if len(key) > 40 {
			key = key[:40] + "..."
		}
		key = "[" + strconv.Quote(key) + "]"
		if path == "" {
			return key
		}
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// object is a YAML mapping whose keys have been checked.
type object struct {
	n    *yaml.Node
	path string
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
}

// object checks that n is a mapping with distinct keys, all in allowed.
func (l *loader) object(n *yaml.Node, path string, allowed []string) (*object, error) {
	if n.Kind == yaml.AliasNode {
		return nil, errAt(n, path, "YAML aliases are not supported")
	}
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, path, "must be a mapping with the keys %s", strings.Join(allowed, ", "))
	}
	o := &object{n: n, path: path, vals: make(map[string]*yaml.Node, len(n.Content)/2), keys: make(map[string]*yaml.Node, len(n.Content)/2)}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, path, "keys must be names")
		}
		p := join(path, k.Value)
		if k.Value == "<<" {
			return nil, errAt(k, p, "YAML merge keys are not supported")
		}
		if !slices.Contains(allowed, k.Value) {
			return nil, errAt(k, p, "unknown key; expected one of %s", strings.Join(allowed, ", "))
		}
		if _, dup := o.vals[k.Value]; dup {
			return nil, errAt(k, p, "given twice")
		}
		if v.Kind == yaml.AliasNode {
			return nil, errAt(v, p, "YAML aliases are not supported")
		}
		o.vals[k.Value] = v
		o.keys[k.Value] = k
	}
	return o, nil
}

func (o *object) has(key string) bool { _, ok := o.vals[key]; return ok }

// at is where errors about key point: its value when that is a scalar, the
// key otherwise (a nested mapping or list starts on a later line).
func (o *object) at(key string) *yaml.Node {
	if v := o.vals[key]; v != nil && v.Kind == yaml.ScalarNode {
		return v
	}
	return o.keys[key]
}

// str returns the string value of key; ok is false when the key is absent.
func (o *object) str(key string, required bool) (s string, n *yaml.Node, ok bool, err error) {
	v, ok := o.vals[key]
	p := join(o.path, key)
	if !ok {
		if required {
			return "", nil, false, errAt(o.n, p, "required")
		}
		return "", nil, false, nil
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			return "", nil, false, errAt(v, p, "empty")
		}
		return "", nil, false, errAt(v, p, "must be a string (quote it)")
	}
	if v.Value == "" {
		return "", nil, false, errAt(v, p, "empty")
	}
	return v.Value, v, true, nil
}

// literal reads a key that only takes a literal.
func (o *object) literal(key string, required bool) (string, *yaml.Node, error) {
	s, n, ok, err := o.str(key, required)
	if err != nil || !ok {
		return "", nil, err
	}
	if strings.HasPrefix(s, "$") {
		return "", nil, errAt(n, join(o.path, key), "takes a literal, not an expression")
	}
	return s, n, nil
}

// expression reads a key that only takes an expression.
func (o *object) expression(key string, required bool) (*expr, error) {
	s, n, ok, err := o.str(key, required)
	if err != nil || !ok {
		return nil, err
	}
	if !strings.HasPrefix(s, "$") {
		return nil, errAt(n, join(o.path, key), "must be an expression starting with $ (the matched token) or $$ (the payload root); "+
			"a literal here would give every reading the same value")
	}
	e, err := compile(s)
	if err != nil {
		return nil, errAt(n, join(o.path, key), "%v", err)
	}
	return e, nil
}

// text reads a key that takes a literal or an expression.
func (o *object) text(key string) (text, *yaml.Node, error) {
	s, n, ok, err := o.str(key, false)
	if err != nil || !ok {
		return text{}, nil, err
	}
	if !strings.HasPrefix(s, "$") {
		return text{lit: s}, n, nil
	}
	e, err := compile(s)
	if err != nil {
		return text{}, nil, errAt(n, join(o.path, key), "%v", err)
	}
	return text{e: e}, n, nil
}

var jsonPathError = regexp.MustCompile(`(?s)^invalid JSONPath "(?:[^"\\]|\\.)*" at offset (\d+): (.*)$`)

// compile compiles an expression: "$..." relative to the matched token, or
// "$$..." relative to the payload root.
func compile(src string) (*expr, error) {
	q, shift := src, 0
	root := strings.HasPrefix(src, "$$")
	if root {
		q, shift = src[1:], 1
	}
	if len(q) > 1 && q[1] != '.' && q[1] != '[' {
		return nil, fmt.Errorf("invalid JSONPath %q: expected '.', '[' or the end after %s", src, src[:1+shift])
	}
	c, err := medtech.CompileQuery(q)
	if err != nil {
		msg := err.Error()
		if m := jsonPathError.FindStringSubmatch(msg); m != nil {
			off, _ := strconv.Atoi(m[1])
			return nil, fmt.Errorf("invalid JSONPath %q at offset %d: %s", src, off+shift, m[2])
		}
		return nil, errors.New(strings.Replace(msg, strconv.Quote(q), strconv.Quote(src), 1))
	}
	return &expr{src: src, q: c, root: root}, nil
}

func (l *loader) template(n *yaml.Node) (*Template, error) {
	top, err := l.object(n, "", topKeys)
	if err != nil {
		return nil, err
	}
	v, ok := top.vals["version"]
	switch {
	case !ok:
		return nil, errAt(n, "version", "required: version: 1")
	case v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int":
		return nil, errAt(v, "version", "must be the number 1")
	case v.Value != "1":
		return nil, errAt(v, "version", "unsupported version; this bridge reads version 1")
	}
	vendor, vn, err := top.literal("vendor", true)
	if err != nil {
		return nil, err
	}
	if !vendorName.MatchString(vendor) {
		return nil, errAt(vn, "vendor", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	l.defaults.timeFormat = rfc3339
	if d, ok := top.vals["defaults"]; ok {
		if err := l.readDefaults(d); err != nil {
			return nil, err
		}
	}
	rs, ok := top.vals["readings"]
	if !ok {
		return nil, errAt(n, "readings", "required: a list of readings")
	}
	if rs.Kind != yaml.SequenceNode || len(rs.Content) == 0 {
		return nil, errAt(rs, "readings", "must be a non-empty list of readings")
	}
	t := &Template{vendor: vendor}
	for i, rn := range rs.Content {
		r, err := l.reading(rn, fmt.Sprintf("readings[%d]", i))
		if err != nil {
			return nil, err
		}
		r.provenance = vendor + "/" + r.kind
		t.readings = append(t.readings, r)
	}
	return t, nil
}

func (l *loader) readDefaults(n *yaml.Node) error {
	d, err := l.object(n, "defaults", defaultKeys)
	if err != nil {
		return err
	}
	sys, sn, err := d.literal("patientIdentifierSystem", false)
	if err != nil {
		return err
	}
	if sn != nil {
		if err := checkSystem(sys); err != nil {
			return errAt(sn, "defaults.patientIdentifierSystem", "%v", err)
		}
		l.defaults.idSystem = sys
	}
	tf, tn, err := d.literal("timeFormat", false)
	if err != nil {
		return err
	}
	if tn != nil {
		if l.defaults.timeFormat, err = parseTimeFormat(tf); err != nil {
			return errAt(tn, "defaults.timeFormat", "%v", err)
		}
	}
	st, stn, err := d.literal("subjectType", false)
	if err != nil {
		return err
	}
	if stn != nil {
		if !slices.Contains([]string{"Patient", "Device", "Location"}, st) {
			return errAt(stn, "defaults.subjectType", "must be Patient, Device or Location")
		}
		l.defaults.subjectType = st
	}
	return nil
}

func checkSystem(s string) error {
	if !strings.Contains(s, ":") || strings.ContainsAny(s, "| \t\r\n") {
		return errors.New("must be an absolute URI naming the identifier's namespace, e.g. urn:oid:1.2.3.4")
	}
	return nil
}

// readingKinds lists the kinds a reading may have: catalogue entries with a
// unit or components that are not a component of a panel.
var readingKinds = sync.OnceValue(func() []string {
	var out []string
	for _, k := range mappers.Kinds() {
		v, _ := mappers.Lookup(k)
		if (v.Unit.UCUM != "" || len(v.Components) > 0) && !isComponent(k) {
			out = append(out, k)
		}
	}
	return out
})

func isComponent(kind string) bool {
	for _, k := range mappers.Kinds() {
		if v, _ := mappers.Lookup(k); slices.Contains(v.Components, kind) {
			return true
		}
	}
	return false
}

func (l *loader) reading(n *yaml.Node, path string) (reading, error) {
	o, err := l.object(n, path, readingKeys)
	if err != nil {
		return reading{}, err
	}
	var r reading
	kind, kn, err := o.literal("kind", true)
	if err != nil {
		return r, err
	}
	v, ok := mappers.Lookup(kind)
	if !ok || !slices.Contains(readingKinds(), kind) {
		if ok {
			return r, errAt(kn, path+".kind", "%s is a component of a panel; give it under components of its panel", kind)
		}
		return r, errAt(kn, path+".kind", "unknown kind; one of %s", strings.Join(readingKinds(), ", "))
	}
	r.kind = kind
	if r.match, err = o.expression("match", true); err != nil {
		return r, err
	}
	if r.device, err = o.expression("device", true); err != nil {
		return r, err
	}
	if r.time, err = o.expression("time", true); err != nil {
		return r, err
	}
	if r.end, err = o.expression("end", false); err != nil {
		return r, err
	}
	r.timeFormat = l.defaults.timeFormat
	tf, tn, err := o.literal("timeFormat", false)
	if err != nil {
		return r, err
	}
	if tn != nil {
		if r.timeFormat, err = parseTimeFormat(tf); err != nil {
			return r, errAt(tn, path+".timeFormat", "%v", err)
		}
	}
	if err := l.subject(o, v, &r); err != nil {
		return r, err
	}
	if err := l.deviceInfo(o, &r); err != nil {
		return r, err
	}
	sn := o.vals["status"]
	if r.status, _, err = o.text("status"); err != nil {
		return r, err
	}
	if r.status.lit != "" {
		if err := probe(r.status.lit, ""); err != nil {
			return r, errAt(sn, path+".status", "%v", err)
		}
	}
	if len(v.Components) > 0 {
		for _, key := range []string{"value", "unit", "dataAbsentReason"} {
			if o.has(key) {
				return r, errAt(o.at(key), join(path, key), "%s is a panel: give %s under components", kind, key)
			}
		}
		cn, ok := o.vals["components"]
		if !ok {
			return r, errAt(n, path+".components", "required: %s is a panel of %s", kind, strings.Join(v.Components, ", "))
		}
		r.components, err = l.components(cn, path+".components", v)
		return r, err
	}
	if o.has("components") {
		return r, errAt(o.at("components"), path+".components", "%s has no components; give value and unit", kind)
	}
	if r.value, err = o.expression("value", true); err != nil {
		return r, err
	}
	r.unit, r.absent, err = unitAndAbsent(o, v)
	return r, err
}

// unitAndAbsent reads unit and dataAbsentReason, checking literals against
// the catalogue.
func unitAndAbsent(o *object, v mappers.Vital) (unit, absent text, err error) {
	unit, un, err := o.text("unit")
	if err != nil {
		return text{}, text{}, err
	}
	if unit.lit != "" && !slices.Contains(v.AcceptedUnits(), unit.lit) {
		return text{}, text{}, errAt(un, join(o.path, "unit"), "%q is not accepted for %s; use one of %s",
			unit.lit, v.Kind, strings.Join(quoted(v.AcceptedUnits()), ", "))
	}
	absent, an, err := o.text("dataAbsentReason")
	if err != nil {
		return text{}, text{}, err
	}
	if absent.lit != "" {
		if err := probe("", absent.lit); err != nil {
			return text{}, text{}, errAt(an, join(o.path, "dataAbsentReason"), "%v", err)
		}
	}
	return unit, absent, nil
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// probe asks mappers.Input.Measurement whether a literal status or
// data-absent reason is valid, so the loader keeps no second copy of those
// code lists. It returns the check's reason.
func probe(status, absent string) error {
	in := mappers.Input{Kind: "heart-rate", DeviceID: "probe", PatientID: "probe", Time: "2000-01-01T00:00:00Z",
		Status: status, Absent: absent}
	if absent == "" {
		in.Value = "60"
	}
	_, err := in.Measurement()
	var fe *mappers.FieldError
	if errors.As(err, &fe) {
		return errors.New(fe.Reason)
	}
	return err
}

func (l *loader) subject(o *object, v mappers.Vital, r *reading) error {
	var given []string
	for _, k := range []string{"patient", "patientIdentifier", "subject"} {
		if o.has(k) {
			given = append(given, k)
		}
	}
	allowed := v.Subjects
	if len(allowed) == 0 {
		allowed = []string{"Patient"}
	}
	switch {
	case len(given) > 1:
		return errAt(o.at(given[1]), join(o.path, given[1]), "give one of patient, patientIdentifier or subject, not %s and %s", given[0], given[1])
	case len(given) == 0 && allowed[0] == "Patient":
		return errAt(o.n, join(o.path, "patient"), "required: give patient, patientIdentifier or subject")
	case len(given) == 0:
		return nil // the device itself is the subject (cold chain, device health)
	}
	key := given[0]
	kn := o.vals[key]
	if key != "subject" && !slices.Contains(allowed, "Patient") {
		return errAt(o.at(key), join(o.path, key), "a %s reading is about a %s, not a patient; give subject", v.Kind, strings.Join(allowed, " or "))
	}
	var err error
	switch key {
	case "patient":
		r.patient, err = o.expression("patient", true)
		return err
	case "patientIdentifier":
		return l.patientIdentifier(o, kn, r)
	}
	so, err := l.object(kn, join(o.path, key), subjectKeys)
	if err != nil {
		return err
	}
	if r.subjectID, err = so.expression("id", true); err != nil {
		return err
	}
	typ, tn, err := so.literal("type", false)
	if err != nil {
		return err
	}
	at, atPath := tn, join(so.path, "type")
	if tn == nil {
		typ, at, atPath = l.defaults.subjectType, o.at(key), so.path
		if typ == "" {
			typ = allowed[0]
		}
	}
	if !slices.Contains(allowed, typ) {
		return errAt(at, atPath, "subject type %q not allowed for %s; use %s", typ, v.Kind, strings.Join(allowed, " or "))
	}
	r.subject = typ
	return nil
}

// patientIdentifier reads "patientIdentifier: $expr" (the system from
// defaults) or "patientIdentifier: {system, value}".
func (l *loader) patientIdentifier(o *object, n *yaml.Node, r *reading) error {
	path := join(o.path, "patientIdentifier")
	r.idSystem = l.defaults.idSystem
	var err error
	if n.Kind == yaml.ScalarNode {
		if r.identifier, err = o.expression("patientIdentifier", true); err != nil {
			return err
		}
	} else {
		po, err := l.object(n, path, identKeys)
		if err != nil {
			return err
		}
		if r.identifier, err = po.expression("value", true); err != nil {
			return err
		}
		sys, sn, err := po.literal("system", false)
		if err != nil {
			return err
		}
		if sn != nil {
			if err := checkSystem(sys); err != nil {
				return errAt(sn, path+".system", "%v", err)
			}
			r.idSystem = sys
		}
	}
	if r.idSystem == "" {
		return errAt(o.at("patientIdentifier"), path, "needs a system: give patientIdentifier.system or defaults.patientIdentifierSystem")
	}
	return nil
}

func (l *loader) deviceInfo(o *object, r *reading) error {
	n, ok := o.vals["deviceInfo"]
	if !ok {
		return nil
	}
	d, err := l.object(n, join(o.path, "deviceInfo"), deviceKeys)
	if err != nil {
		return err
	}
	for _, k := range deviceKeys {
		t, _, err := d.text(k)
		if err != nil {
			return err
		}
		if t.lit != "" || t.e != nil {
			r.deviceInfo = append(r.deviceInfo, deviceField{name: "deviceInfo." + k, t: t, set: deviceSetters[k]})
		}
	}
	return nil
}

func (l *loader) components(n *yaml.Node, path string, panel mappers.Vital) ([]component, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, errAt(n, path, "must be a non-empty list of components (%s)", strings.Join(panel.Components, ", "))
	}
	var out []component
	for i, cn := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		o, err := l.object(cn, p, componentKeys)
		if err != nil {
			return nil, err
		}
		kind, kn, err := o.literal("kind", true)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(panel.Components, kind) {
			return nil, errAt(kn, p+".kind", "not a part of %s; use %s", panel.Kind, strings.Join(panel.Components, ", "))
		}
		for _, c := range out {
			if c.kind == kind {
				return nil, errAt(kn, p+".kind", "%s given twice", kind)
			}
		}
		v, _ := mappers.Lookup(kind)
		cp := fmt.Sprintf("components[%d].", i)
		c := component{kind: kind, fields: valueFields{cp + "value", cp + "unit", cp + "dataAbsentReason"}}
		if c.value, err = o.expression("value", true); err != nil {
			return nil, err
		}
		if c.unit, c.absent, err = unitAndAbsent(o, v); err != nil {
			return nil, err
		}
		if rn, ok := o.vals["required"]; ok {
			b, err := strconv.ParseBool(rn.Value)
			if rn.Kind != yaml.ScalarNode || rn.ShortTag() != "!!bool" || err != nil {
				return nil, errAt(rn, p+".required", "must be true or false")
			}
			c.optional = !b
		}
		out = append(out, c)
	}
	return out, nil
}
