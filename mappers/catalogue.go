package mappers

import (
	"math"
	"sort"
	"strconv"
)

// Code is one coding: system, code and display.
type Code struct {
	System  string
	Code    string
	Display string
}

// Code systems the catalogue uses beyond those in package fhir.
const (
	// SystemBridge is the bridge's own code system for readings that have no
	// LOINC code (cold-chain environment, device health). Codes in it are
	// stable; docs/mapping.md lists them.
	SystemBridge = "https://github.com/fhir-bridge/fhir-bridge/CodeSystem/reading"
)

// Unit is a unit of measure as written in FHIR and HL7.
type Unit struct {
	UCUM    string // UCUM code, also used as the human-readable unit
	MDC     string // IEEE 11073 unit code (decimal), empty when unknown
	MDCName string // MDC reference id of the unit
}

// conversion turns a value in a vendor unit into the catalogue unit.
type conversion struct {
	fn       func(float64) float64 // nil: the same unit under another name
	decimals int                   // digits after the point for converted values
}

// Range is an inclusive low-high range in the catalogue unit; a zero bound
// pointer means open.
type Range struct {
	Low, High *float64
}

// Vital describes one kind of reading: its codes, its unit, the profile its
// Observation claims and how to check and convert input.
type Vital struct {
	Kind     string
	Code     Code   // primary code (LOINC where one exists)
	Extra    []Code // further codings sent with the primary, e.g. SpO2's 59408-5
	MDC      Code   // IEEE 11073 MDC code, empty System when none is confirmed
	Category string // observation-category code: "vital-signs", "laboratory" or ""
	Profiles []string
	Unit     Unit
	// Plausible is the range a device can report at all; values outside are
	// refused as input errors. They are not clinical limits.
	Plausible [2]float64
	// Normal, when set, becomes referenceRange and drives interpretation
	// (L, N, H).
	Normal *Range
	// Components, when set, make this a panel: the root has no value and each
	// component is a Vital of its own (its Code, MDC and Unit are used).
	Components []string
	// Subjects lists the allowed subject types; the first is the default.
	Subjects []string
	// Period says readings usually cover an interval, e.g. a step total: give
	// "end" and the Observation gets effectivePeriod.
	Period bool

	accept map[string]conversion
}

func f(v float64) *float64 { return &v }

const coreProfile = "http://hl7.org/fhir/StructureDefinition/"

func loinc(code, display string) Code {
	return Code{System: "http://loinc.org", Code: code, Display: display}
}
func mdc(code, ref string) Code {
	return Code{System: "urn:iso:std:iso:11073:10101", Code: code, Display: ref}
}
func bridgeCode(code, display string) Code {
	return Code{System: SystemBridge, Code: code, Display: display}
}

var (
	perMin  = Unit{UCUM: "/min", MDC: "264864", MDCName: "MDC_DIM_BEAT_PER_MIN"}
	respMin = Unit{UCUM: "/min", MDC: "264928", MDCName: "MDC_DIM_RESP_PER_MIN"}
	percent = Unit{UCUM: "%", MDC: "262688", MDCName: "MDC_DIM_PERCENT"}
	celsius = Unit{UCUM: "Cel", MDC: "268192", MDCName: "MDC_DIM_DEGC"}
	kg      = Unit{UCUM: "kg", MDC: "263875", MDCName: "MDC_DIM_KILO_G"}
	cm      = Unit{UCUM: "cm", MDC: "263441", MDCName: "MDC_DIM_CENTI_M"}
	kgm2    = Unit{UCUM: "kg/m2", MDC: "264096", MDCName: "MDC_DIM_KG_PER_M_SQ"}
	mmHg    = Unit{UCUM: "mm[Hg]", MDC: "266016", MDCName: "MDC_DIM_MMHG"}
	mgdL    = Unit{UCUM: "mg/dL", MDC: "264274", MDCName: "MDC_DIM_MILLI_G_PER_DL"}
	steps   = Unit{UCUM: "{steps}"}
	dBm     = Unit{UCUM: "dB[mW]"}
)

var same = conversion{}

func alias(names ...string) map[string]conversion {
	m := map[string]conversion{}
	for _, n := range names {
		m[n] = same
	}
	return m
}

func with(m map[string]conversion, name string, c conversion) map[string]conversion {
	m[name] = c
	return m
}

var (
	fromDegF = conversion{fn: func(v float64) float64 { return (v - 32) * 5 / 9 }, decimals: 1}
	fromLb   = conversion{fn: func(v float64) float64 { return v * 0.45359237 }, decimals: 2}
	fromG    = conversion{fn: func(v float64) float64 { return v / 1000 }, decimals: 3}
	fromInch = conversion{fn: func(v float64) float64 { return v * 2.54 }, decimals: 1}
	fromM    = conversion{fn: func(v float64) float64 { return v * 100 }, decimals: 1}
	// Glucose: 1 mmol/L = 18.016 mg/dL (molar mass 180.16 g/mol).
	fromMmolL = conversion{fn: func(v float64) float64 { return v * 18.016 }, decimals: 0}
)

// catalogue lists every kind the bridge maps. docs/mapping.md is generated
// from the same facts; keep them in step.
var catalogue = map[string]Vital{
	"heart-rate": {
		Kind: "heart-rate", Code: loinc("8867-4", "Heart rate"), MDC: mdc("149546", "MDC_PULS_RATE_NON_INV"),
		Category: "vital-signs", Profiles: []string{coreProfile + "heartrate", coreProfile + "vitalsigns"},
		Unit: perMin, Plausible: [2]float64{0, 400}, Normal: &Range{Low: f(60), High: f(100)},
		accept: alias("/min", "bpm", "beats/min", "{beats}/min", "1/min", "count/min"),
	},
	"respiratory-rate": {
		Kind: "respiratory-rate", Code: loinc("9279-1", "Respiratory rate"), MDC: mdc("151562", "MDC_RESP_RATE"),
		Category: "vital-signs", Profiles: []string{coreProfile + "resprate", coreProfile + "vitalsigns"},
		Unit: respMin, Plausible: [2]float64{0, 150}, Normal: &Range{Low: f(12), High: f(20)},
		accept: alias("/min", "breaths/min", "{breaths}/min", "rpm", "1/min", "breaths/minute", "count/min"),
	},
	"spo2": {
		Kind: "spo2", Code: loinc("2708-6", "Oxygen saturation in Arterial blood"),
		Extra: []Code{loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")},
		MDC:   mdc("150456", "MDC_PULS_OXIM_SAT_O2"), Category: "vital-signs",
		Profiles: []string{coreProfile + "oxygensat", coreProfile + "vitalsigns"},
		Unit:     percent, Plausible: [2]float64{0, 100}, Normal: &Range{Low: f(90), High: f(100)},
		accept: alias("%", "percent"),
	},
	"body-temperature": {
		Kind: "body-temperature", Code: loinc("8310-5", "Body temperature"), MDC: mdc("150364", "MDC_TEMP_BODY"),
		Category: "vital-signs", Profiles: []string{coreProfile + "bodytemp", coreProfile + "vitalsigns"},
		Unit: celsius, Plausible: [2]float64{20, 46},
		accept: with(alias("Cel", "C", "degC", "°C"), "[degF]", fromDegF),
	},
	"body-weight": {
		Kind: "body-weight", Code: loinc("29463-7", "Body weight"), MDC: mdc("188736", "MDC_MASS_BODY_ACTUAL"),
		Category: "vital-signs", Profiles: []string{coreProfile + "bodyweight", coreProfile + "vitalsigns"},
		Unit: kg, Plausible: [2]float64{0.2, 700},
		accept: with(with(alias("kg"), "[lb_av]", fromLb), "g", fromG),
	},
	"body-height": {
		Kind: "body-height", Code: loinc("8302-2", "Body height"), MDC: mdc("188740", "MDC_LEN_BODY_ACTUAL"),
		Category: "vital-signs", Profiles: []string{coreProfile + "bodyheight", coreProfile + "vitalsigns"},
		Unit: cm, Plausible: [2]float64{20, 300},
		accept: with(with(alias("cm"), "[in_i]", fromInch), "m", fromM),
	},
	"bmi": {
		Kind: "bmi", Code: loinc("39156-5", "Body mass index (BMI) [Ratio]"), MDC: mdc("188752", "MDC_RATIO_MASS_BODY_LEN_SQ"),
		Category: "vital-signs", Profiles: []string{coreProfile + "bmi", coreProfile + "vitalsigns"},
		Unit: kgm2, Plausible: [2]float64{5, 150}, accept: alias("kg/m2", "kg/m^2"),
	},
	"blood-pressure": {
		Kind: "blood-pressure", Code: loinc("85354-9", "Blood pressure panel with all children optional"),
		MDC: mdc("150020", "MDC_PRESS_BLD_NONINV"), Category: "vital-signs",
		Profiles:   []string{coreProfile + "bp", coreProfile + "vitalsigns"},
		Components: []string{"systolic", "diastolic", "mean-arterial-pressure"},
	},
	"systolic": {
		Kind: "systolic", Code: loinc("8480-6", "Systolic blood pressure"), MDC: mdc("150021", "MDC_PRESS_BLD_NONINV_SYS"),
		Unit: mmHg, Plausible: [2]float64{10, 300}, Normal: &Range{High: f(130)}, accept: alias("mm[Hg]", "mmHg"),
	},
	"diastolic": {
		Kind: "diastolic", Code: loinc("8462-4", "Diastolic blood pressure"), MDC: mdc("150022", "MDC_PRESS_BLD_NONINV_DIA"),
		Unit: mmHg, Plausible: [2]float64{5, 250}, Normal: &Range{High: f(80)}, accept: alias("mm[Hg]", "mmHg"),
	},
	"mean-arterial-pressure": {
		Kind: "mean-arterial-pressure", Code: loinc("8478-0", "Mean blood pressure"), MDC: mdc("150023", "MDC_PRESS_BLD_NONINV_MEAN"),
		Unit: mmHg, Plausible: [2]float64{5, 300}, accept: alias("mm[Hg]", "mmHg"),
	},
	"blood-glucose": {
		Kind: "blood-glucose", Code: loinc("2339-0", "Glucose [Mass/volume] in Blood"),
		MDC: mdc("160368", "MDC_CONC_GLU_UNDETERMINED_PLASMA"), Category: "laboratory",
		Unit: mgdL, Plausible: [2]float64{5, 2000}, Normal: &Range{Low: f(70), High: f(180)},
		accept: with(alias("mg/dL", "mg/dl"), "mmol/L", fromMmolL),
	},
	"blood-glucose-capillary": {
		Kind: "blood-glucose-capillary", Code: loinc("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
		MDC: mdc("160184", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"), Category: "laboratory",
		Unit: mgdL, Plausible: [2]float64{5, 2000}, Normal: &Range{Low: f(70), High: f(180)},
		accept: with(alias("mg/dL", "mg/dl"), "mmol/L", fromMmolL),
	},
	"step-count": {
		Kind: "step-count", Code: loinc("55423-8", "Number of steps"), Category: "activity",
		Unit: steps, Plausible: [2]float64{0, 200000}, Period: true, accept: alias("{steps}", "steps", "{count}", "count"),
	},
	"fridge-temperature": {
		Kind: "fridge-temperature", Code: bridgeCode("fridge-temperature", "Storage unit air temperature"),
		MDC: mdc("188508", "MDC_TEMP_ROOM"), Unit: celsius, Plausible: [2]float64{-90, 60},
		Normal: &Range{Low: f(2), High: f(8)}, Subjects: []string{"Device", "Location"},
		accept: with(alias("Cel", "C", "degC", "°C"), "[degF]", fromDegF),
	},
	"fridge-humidity": {
		Kind: "fridge-humidity", Code: bridgeCode("fridge-humidity", "Storage unit relative humidity"),
		Unit: percent, Plausible: [2]float64{0, 100}, Subjects: []string{"Device", "Location"},
		accept: alias("%", "percent", "%RH"),
	},
	"battery-level": {
		Kind: "battery-level", Code: bridgeCode("battery-level", "Device battery level"),
		MDC: mdc("67996", "MDC_ATTR_VAL_BATT_CHARGE"), Unit: percent, Plausible: [2]float64{0, 100},
		Normal: &Range{Low: f(20)}, Subjects: []string{"Device"}, accept: alias("%", "percent"),
	},
	"signal-strength": {
		Kind: "signal-strength", Code: bridgeCode("signal-strength", "Device radio signal strength (RSSI)"),
		Unit: dBm, Plausible: [2]float64{-150, 30}, Subjects: []string{"Device"}, accept: alias("dB[mW]", "dBm"),
	},
}

// Lookup returns the catalogue entry for kind.
func Lookup(kind string) (Vital, bool) {
	v, ok := catalogue[kind]
	return v, ok
}

// Kinds returns the kinds a reading may have, sorted; component-only kinds
// (systolic, diastolic, mean-arterial-pressure) are included because
// templates name them.
func Kinds() []string {
	out := make([]string, 0, len(catalogue))
	for k := range catalogue {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// AcceptedUnits returns the input units accepted for v, sorted.
func (v Vital) AcceptedUnits() []string {
	out := make([]string, 0, len(v.accept))
	for u := range v.accept {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// subjectAllowed reports whether t may be the subject of a reading of v.
func (v Vital) subjectAllowed(t string) bool {
	if len(v.Subjects) == 0 {
		return t == "Patient"
	}
	for _, s := range v.Subjects {
		if s == t {
			return true
		}
	}
	return false
}

func (v Vital) defaultSubject() string {
	if len(v.Subjects) == 0 {
		return "Patient"
	}
	return v.Subjects[0]
}

// normalise converts value (a decimal literal in unit) to the catalogue unit.
// A value already in the catalogue unit keeps its literal, so the device's
// precision survives; a converted one is rounded to the conversion's digits.
func (v Vital) normalise(value, unit string) (string, error) {
	if unit == "" {
		unit = v.Unit.UCUM
	}
	c, ok := v.accept[unit]
	if !ok {
		return "", &FieldError{Field: "unit", Reason: "unit " + strconv.Quote(unit) + " not accepted for " + v.Kind + "; use one of " + joinQuoted(v.AcceptedUnits())}
	}
	x, err := strconv.ParseFloat(value, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return "", &FieldError{Field: "value", Reason: "not a number"}
	}
	if c.fn != nil {
		x = c.fn(x)
		value = strconv.FormatFloat(x, 'f', c.decimals, 64)
	} else {
		value = canonicalDecimal(value)
	}
	if x < v.Plausible[0] || x > v.Plausible[1] {
		return "", &FieldError{Field: "value", Reason: value + " " + v.Unit.UCUM + " outside the plausible range " +
			strconv.FormatFloat(v.Plausible[0], 'g', -1, 64) + " to " + strconv.FormatFloat(v.Plausible[1], 'g', -1, 64) + " " + v.Unit.UCUM + " for " + v.Kind}
	}
	return value, nil
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}
