//! A small checker of JSON values against the schemas of an OpenAPI 3.1 document (JSON
//! Schema 2020-12 as utoipa writes it), for the control-plane tests.
//!
//! It is strict in two ways: a schema keyword it does not know is a panic (so no
//! constraint is skipped silently), and an object property that the schema does not
//! declare is a mismatch unless the schema allows additional properties (so the document
//! has to describe everything the server sends).
//!
//! Each test file declares it `pub mod openapi_check;`, so its public helpers count as used in every
//! test binary, whichever ones that file calls, without a blanket `allow(dead_code)`: a
//! private item nothing reaches still warns.

use serde_json::{Map, Value};

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
];

/// The mismatches of `value` against `schema` (empty: it validates). `$ref`s are
/// resolved in `doc`.
pub fn check(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check_at(doc, schema, value, "$", true, &mut errs);
    errs
}

/// The schema a local `$ref` ("#/components/schemas/X") points at.
pub fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

/// The property names `schema` declares (through `$ref` and `allOf`).
pub fn property_names(doc: &Value, schema: &Value) -> Vec<String> {
    declared_properties(doc, schema).unwrap_or_default()
}

/// Whether `schema` (through `$ref` and `allOf`) refuses undeclared properties.
pub fn forbids_unknown_properties(doc: &Value, schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        return false;
    };
    obj.get("additionalProperties") == Some(&Value::Bool(false))
        || obj
            .get("$ref")
            .is_some_and(|r| forbids_unknown_properties(doc, resolve(doc, as_str(r))))
        || obj.get("allOf").is_some_and(|all| {
            as_array(all)
                .iter()
                .any(|s| forbids_unknown_properties(doc, s))
        })
}

/// Every `$ref` string anywhere in `doc`.
pub fn all_refs(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut out);
    out
}

/// `strict`: check that `schema` as a whole declares every property of `value` (false
/// inside `$ref` and `allOf`, whose parts declare only some of them).
fn check_at(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    strict: bool,
    errs: &mut Vec<String>,
) {
    let obj = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errs.push(format!("{at}: no value allowed")),
        Value::Object(o) => o,
        other => panic!("{at}: not a schema: {other}"),
    };
    for (key, arg) in obj {
        match key.as_str() {
            "$ref" => check_at(doc, resolve(doc, as_str(arg)), value, at, false, errs),
            "allOf" => {
                for s in as_array(arg) {
                    check_at(doc, s, value, at, false, errs);
                }
            }
            "anyOf" | "oneOf" => {
                let matching = as_array(arg)
                    .iter()
                    .filter(|s| check(doc, s, value).is_empty())
                    .count();
                let ok = if key == "anyOf" {
                    matching >= 1
                } else {
                    matching == 1
                };
                if !ok {
                    errs.push(format!(
                        "{at}: {matching} of the {key} schemas match {value}"
                    ));
                }
            }
            "type" => check_type(arg, value, at, errs),
            "enum" => {
                if !as_array(arg).contains(value) {
                    errs.push(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != value {
                    errs.push(format!("{at}: {value} is not {arg}"));
                }
            }
            "required" => {
                if let Value::Object(m) = value {
                    for name in as_array(arg).iter().map(as_str) {
                        if !m.contains_key(name) {
                            errs.push(format!("{at}: required property {name:?} missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Value::Object(m) = value {
                    for (name, s) in as_object(arg) {
                        if let Some(v) = m.get(name) {
                            check_at(doc, s, v, &format!("{at}.{name}"), true, errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Value::Object(m) = value {
                    let declared = obj.get("properties").map(as_object);
                    for (name, v) in m {
                        if !declared.is_some_and(|d| d.contains_key(name)) {
                            check_at(doc, arg, v, &format!("{at}.{name}"), true, errs);
                        }
                    }
                }
            }
            "items" => {
                if let Value::Array(a) = value {
                    for (i, v) in a.iter().enumerate() {
                        check_at(doc, arg, v, &format!("{at}[{i}]"), true, errs);
                    }
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                check_bound(key, arg, value, at, errs)
            }
            "format" => check_format(as_str(arg), value, at, errs),
            "minLength" | "maxLength" => {
                if let Value::String(s) = value {
                    let n = s.chars().count() as u64;
                    let lim = arg.as_u64().expect("a length");
                    if (key == "minLength" && n < lim) || (key == "maxLength" && n > lim) {
                        errs.push(format!("{at}: length {n} breaks {key} {lim}"));
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => panic!("{at}: schema keyword {other:?} is not understood by the checker"),
        }
    }
    if !strict || sets_additional_properties(doc, schema) {
        return;
    }
    // Strict: every property of an object must be declared somewhere in the schema.
    if let Value::Object(m) = value
        && let Some(declared) = declared_properties(doc, schema)
    {
        for name in m.keys() {
            if !declared.contains(name) {
                errs.push(format!("{at}: property {name:?} is not in the document"));
            }
        }
    }
}

/// Whether the schema, through `$ref` and `allOf`, says itself what to do with
/// undeclared properties.
fn sets_additional_properties(doc: &Value, schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        return false;
    };
    obj.contains_key("additionalProperties")
        || obj
            .get("$ref")
            .is_some_and(|r| sets_additional_properties(doc, resolve(doc, as_str(r))))
        || obj.get("allOf").is_some_and(|all| {
            as_array(all)
                .iter()
                .any(|s| sets_additional_properties(doc, s))
        })
}

/// The property names an object schema declares, through `$ref` and `allOf`; None when
/// the schema declares none of its own (e.g. a bare `oneOf`, left to its branches).
fn declared_properties(doc: &Value, schema: &Value) -> Option<Vec<String>> {
    let obj = schema.as_object()?;
    let mut names: Option<Vec<String>> = None;
    let mut add = |more: Vec<String>| names.get_or_insert_with(Vec::new).extend(more);
    if let Some(r) = obj.get("$ref")
        && let Some(more) = declared_properties(doc, resolve(doc, as_str(r)))
    {
        add(more);
    }
    if let Some(all) = obj.get("allOf") {
        for s in as_array(all) {
            if let Some(more) = declared_properties(doc, s) {
                add(more);
            }
        }
    }
    if let Some(p) = obj.get("properties") {
        add(as_object(p).keys().cloned().collect());
    }
    names
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type {other:?}"),
    }
}

fn check_type(t: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let ok = match t {
        Value::String(t) => type_matches(t, v),
        Value::Array(ts) => ts.iter().any(|t| type_matches(as_str(t), v)),
        other => panic!("{at}: bad type {other}"),
    };
    if !ok {
        errs.push(format!("{at}: {v} is not of type {t}"));
    }
}

/// An integer value as i128 (u64 and i64 both fit).
fn int(v: &Value) -> Option<i128> {
    v.as_u64()
        .map(i128::from)
        .or_else(|| v.as_i64().map(i128::from))
}

fn check_bound(key: &str, bound: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    if !v.is_number() {
        return;
    }
    let ok = match (int(bound), int(v)) {
        (Some(b), Some(x)) => bound_holds(key, x.cmp(&b)),
        _ => {
            let (b, x) = (bound.as_f64().unwrap(), v.as_f64().unwrap());
            bound_holds(key, x.partial_cmp(&b).expect("comparable"))
        }
    };
    if !ok {
        errs.push(format!("{at}: {v} breaks {key} {bound}"));
    }
}

fn bound_holds(key: &str, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match key {
        "minimum" => ord != Less,
        "maximum" => ord != Greater,
        "exclusiveMinimum" => ord == Greater,
        "exclusiveMaximum" => ord == Less,
        _ => unreachable!(),
    }
}

fn check_format(format: &str, v: &Value, at: &str, errs: &mut Vec<String>) {
    let range: (i128, i128) = match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" => (0, u64::MAX.into()),
        other => panic!("{at}: format {other:?} is not understood by the checker"),
    };
    if let Some(x) = int(v)
        && !(range.0..=range.1).contains(&x)
    {
        errs.push(format!("{at}: {v} is out of the {format} range"));
    }
}

fn as_str(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string: {v}"))
}

fn as_array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
}

fn as_object(v: &Value) -> &Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object: {v}"))
}
