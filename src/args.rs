//! JavaScript argument checks: types here (`ERR_INVALID_ARG_TYPE`), values in the engine's
//! `config` module. Messages follow Node's wording ("The "data" argument must be ...
//! Received type string ('abc')").

use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, TypedArray, TypedArrayType, Unknown};
use napi::{JsValue, ValueType};
use udpcom_engine::{format_number, integer};
use udpcom_engine::{Error, Options};

use crate::napi_raw::{bigint_u64, take_exception_message, typed_array_detached, U64};

type Result<T> = std::result::Result<T, Error>;

/// Converts a failure of napi itself (which should not happen for a checked type) to an
/// engine error.
fn napi_failure(error: napi::Error) -> Error {
    Error::internal(format!("Node-API call failed: {error}"))
}

/// A property or element of an argument could not be read because JavaScript it ran (a
/// getter, a Proxy trap) threw. The exception is cleared, so that the caller's coded error is
/// what JavaScript sees (thrown, or as a rejection for receiveData), and its message is kept.
fn unreadable(env: napi::sys::napi_env, what: &str) -> Error {
    let message = take_exception_message(env).unwrap_or_else(|| "an exception".into());
    Error::invalid_arg_value(what, "could not be read", format!("an exception: {message}"))
}

fn type_of(value: &Unknown<'_>) -> ValueType {
    value.get_type().unwrap_or(ValueType::Unknown)
}

/// Node's description of a received value: `type number (5)`, `an instance of Array`, ...
pub fn describe(value: &Unknown<'_>) -> String {
    let shown = |v: &Unknown<'_>| {
        v.coerce_to_string()
            .and_then(|s| s.into_utf8())
            .and_then(|s| s.into_owned())
            .unwrap_or_default()
    };
    match type_of(value) {
        ValueType::Undefined => "undefined".into(),
        ValueType::Null => "null".into(),
        ValueType::Number => format!(
            "type number ({})",
            f64::from_unknown(*value).map_or("?".into(), format_number)
        ),
        ValueType::BigInt => format!("type bigint ({}n)", shown(value)),
        ValueType::Boolean => format!("type boolean ({})", shown(value)),
        ValueType::String => {
            let text = shown(value);
            let short: String = text.chars().take(25).collect();
            let ellipsis = if short.len() < text.len() { "..." } else { "" };
            format!("type string ('{short}'{ellipsis})")
        }
        ValueType::Symbol => "type symbol".into(),
        ValueType::Function => "function".into(),
        ValueType::Object => Object::from_unknown(*value)
            .and_then(|o| o.get_named_property::<Unknown>("constructor"))
            .and_then(|c| Object::from_unknown(c)?.get_named_property::<String>("name"))
            .map_or_else(
                |_| {
                    // A getter or Proxy trap threw: only a message depends on it, so drop the
                    // exception rather than let it replace the error being built.
                    take_exception_message(value.value().env);
                    "an object".into()
                },
                |name| format!("an instance of {name}"),
            ),
        _ => "an unknown value".into(),
    }
}

/// How Node names an argument in a type error: `The "data" argument`, or for an option
/// `The "options.capacity" property`.
fn label(name: &str) -> String {
    if name.contains('.') {
        format!("The \"{name}\" property")
    } else {
        format!("The \"{name}\" argument")
    }
}

/// How Node names a value in a range error: `"timestampNs"`.
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

fn wrong_type(name: &str, expected: &str, value: &Unknown<'_>) -> Error {
    Error::invalid_arg_type(&label(name), expected, &describe(value))
}

/// A BigInt as JavaScript prints it (`-5n`), for range errors.
fn bigint_text(value: &Unknown<'_>) -> String {
    let text = value
        .coerce_to_string()
        .and_then(|s| s.into_utf8())
        .and_then(|s| s.into_owned())
        .unwrap_or_default();
    format!("{text}n")
}

/// A string argument.
pub fn string(value: Unknown<'_>, name: &str) -> Result<String> {
    if type_of(&value) != ValueType::String {
        return Err(wrong_type(name, "of type string", &value));
    }
    String::from_unknown(value).map_err(napi_failure)
}

/// A number argument (its range is checked by the engine).
pub fn number(value: Unknown<'_>, name: &str) -> Result<f64> {
    if type_of(&value) != ValueType::Number {
        return Err(wrong_type(name, "of type number", &value));
    }
    f64::from_unknown(value).map_err(napi_failure)
}

/// A Uint8Array, a Buffer or any other TypedArray; its bytes are `&view.arraybuffer`, valid
/// for the call.
pub fn bytes<'env>(value: Unknown<'env>, name: &str) -> Result<TypedArray<'env>> {
    bytes_named(value, || name.to_string())
}

/// [`bytes`], naming the argument only if it is wrong (the hot path allocates nothing).
fn bytes_named<'env>(value: Unknown<'env>, name: impl Fn() -> String) -> Result<TypedArray<'env>> {
    // napi_get_typedarray_info fails for anything that is not a TypedArray: no separate
    // type check on the hot path.
    let Ok(view) = TypedArray::from_unknown(value) else {
        return Err(wrong_type(
            &name(),
            "an instance of Buffer, Uint8Array or another TypedArray",
            &value,
        ));
    };
    if view.arraybuffer.is_empty() && is_detached(&value) {
        return Err(Error::invalid_arg_value(
            &label(&name()),
            "is detached (its ArrayBuffer was transferred)",
            "a detached view",
        ));
    }
    Ok(view)
}

fn is_detached(view: &Unknown<'_>) -> bool {
    // Asks the engine about the view's own ArrayBuffer rather than reading its `buffer`
    // property, which a getter could override: no JavaScript runs here.
    typed_array_detached(view).unwrap_or(false)
}

/// An optional `timestampNs` (bigint): 0 when omitted, meaning "as soon as possible".
pub fn timestamp(value: Option<Unknown<'_>>, name: &str) -> Result<u64> {
    let Some(value) = value else { return Ok(0) };
    // napi_get_value_bigint_uint64 fails for anything that is not a BigInt: check the type
    // only then.
    match bigint_u64(&value) {
        Ok(U64::Value(ns)) => Ok(ns),
        Ok(U64::Negative) => Err(Error::out_of_range(&quoted(name), ">= 0n", bigint_text(&value))),
        Ok(U64::TooLarge) => Err(Error::out_of_range(&quoted(name), "< 2n ** 64n", bigint_text(&value))),
        Err(_) if type_of(&value) == ValueType::Undefined => Ok(0),
        Err(_) => Err(wrong_type(name, "of type bigint", &value)),
    }
}

/// An optional timeout in ns, as a bigint or a number: `None` when omitted (wait forever).
pub fn timeout(value: Option<Unknown<'_>>, name: &str) -> Result<Option<u64>> {
    let Some(value) = value.filter(|v| type_of(v) != ValueType::Undefined) else {
        return Ok(None);
    };
    match type_of(&value) {
        ValueType::BigInt => match bigint_u64(&value).map_err(napi_failure)? {
            U64::Value(ns) => Ok(Some(ns)),
            U64::Negative => Err(Error::out_of_range(&quoted(name), ">= 0", bigint_text(&value))),
            // Longer than 584 years: the same as forever.
            U64::TooLarge => Ok(None),
        },
        ValueType::Number => {
            let ns = f64::from_unknown(value).map_err(napi_failure)?;
            Ok(Some(integer(&quoted(name), ns, 0, 9_007_199_254_740_991)?))
        }
        _ => Err(wrong_type(name, "of type bigint or number", &value)),
    }
}

/// An integer count such as `max` of receiveBatch.
pub fn count(value: Unknown<'_>, name: &str, max: u64) -> Result<usize> {
    Ok(integer(&quoted(name), number(value, name)?, 1, max)? as usize)
}

/// An optional count: `default` when omitted.
pub fn optional_count(value: Option<Unknown<'_>>, name: &str, max: u64, default: usize) -> Result<usize> {
    match value.filter(|v| type_of(v) != ValueType::Undefined) {
        Some(value) => count(value, name, max),
        None => Ok(default),
    }
}

/// `sendBatch`'s packets: an array of TypedArrays, checked. Returns the elements, not their
/// bytes: reading the array (and the timestamps after it) may run JavaScript (getters), which
/// could detach a buffer whose bytes were already borrowed; take them with [`packet_views`]
/// once no more JavaScript can run.
pub fn packet_list<'env>(value: Unknown<'env>, name: &str) -> Result<Vec<Unknown<'env>>> {
    let array = array(value, name, "an instance of Array")?;
    let len = array.get_array_length().map_err(napi_failure)?;
    let mut elements = Vec::with_capacity(len as usize);
    for i in 0..len {
        let element: Unknown = array
            .get_element(i)
            .map_err(|_| unreadable(value.value().env, &label(&format!("{name}[{i}]"))))?;
        bytes_named(element, || format!("{name}[{i}]"))?;
        elements.push(element);
    }
    Ok(elements)
}

/// The bytes of [`packet_list`]'s elements; runs no JavaScript.
pub fn packet_views<'env>(elements: &[Unknown<'env>], name: &str) -> Result<Vec<TypedArray<'env>>> {
    let mut views = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        views.push(bytes_named(*element, || format!("{name}[{i}]"))?);
    }
    Ok(views)
}

fn array<'env>(value: Unknown<'env>, name: &str, expected: &str) -> Result<Object<'env>> {
    if type_of(&value) != ValueType::Object || !value.is_array().unwrap_or(false) {
        return Err(wrong_type(name, expected, &value));
    }
    Object::from_unknown(value).map_err(napi_failure)
}

/// `sendBatch`'s timestamps: a BigInt64Array, a BigUint64Array or an array of bigints, one per
/// packet; all zero (as soon as possible) when omitted.
pub fn timestamp_list(value: Option<Unknown<'_>>, name: &str, count: usize) -> Result<Vec<u64>> {
    let Some(value) = value.filter(|v| type_of(v) != ValueType::Undefined) else {
        return Ok(vec![0; count]);
    };
    let expected = "an instance of BigInt64Array, BigUint64Array or Array of bigint";
    let timestamps: Vec<u64> = match TypedArray::from_unknown(value) {
        Ok(view)
            if matches!(
                view.typed_array_type,
                TypedArrayType::BigInt64 | TypedArrayType::BigUint64
            ) =>
        {
            let signed = view.typed_array_type == TypedArrayType::BigInt64;
            let words = view
                .arraybuffer
                .chunks_exact(8)
                .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")));
            let mut timestamps = Vec::with_capacity(count);
            for (i, word) in words.enumerate() {
                if signed && (word as i64) < 0 {
                    return Err(Error::out_of_range(
                        &quoted(&format!("{name}[{i}]")),
                        ">= 0n",
                        format!("{}n", word as i64),
                    ));
                }
                timestamps.push(word);
            }
            timestamps
        }
        Ok(_) => return Err(wrong_type(name, expected, &value)),
        Err(_) => {
            let array = array(value, name, expected)?;
            let len = array.get_array_length().map_err(napi_failure)?;
            let mut timestamps = Vec::with_capacity(len as usize);
            for i in 0..len {
                let element: Unknown = array
                    .get_element(i)
                    .map_err(|_| unreadable(value.value().env, &label(&format!("{name}[{i}]"))))?;
                timestamps.push(timestamp(Some(element), &format!("{name}[{i}]"))?);
            }
            timestamps
        }
    };
    if timestamps.len() != count {
        return Err(Error::invalid_arg_value(
            &label(name),
            &format!("must have one timestamp per packet ({count})"),
            format!("{} timestamps", timestamps.len()),
        ));
    }
    Ok(timestamps)
}

/// A callback, or null to remove it.
pub fn callback<'env>(value: Unknown<'env>, name: &str) -> Result<Option<Unknown<'env>>> {
    match type_of(&value) {
        ValueType::Null => Ok(None),
        ValueType::Function => Ok(Some(value)),
        _ => Err(wrong_type(name, "of type function or null", &value)),
    }
}

/// Option names the constructor knows; any other name is a mistake worth reporting.
const OPTION_NAMES: [&str; 13] = [
    "cpu",
    "rxCpu",
    "capacity",
    "ringBytes",
    "direction",
    "priority",
    "spinNs",
    "napNs",
    "lockMemory",
    "timestamping",
    "timestampingFallback",
    "inlineSend",
    "rxSpinNs",
];

/// The constructor's `options` object.
pub fn options(value: Option<Unknown<'_>>) -> Result<Options> {
    let Some(value) = value.filter(|v| type_of(v) != ValueType::Undefined) else {
        return Ok(Options::default());
    };
    if type_of(&value) != ValueType::Object {
        return Err(wrong_type("options", "of type object", &value));
    }
    let object = Object::from_unknown(value).map_err(napi_failure)?;
    let names = object
        .get_property_names()
        .map_err(|_| unreadable(value.value().env, &label("options")))?;
    for i in 0..names.get_array_length().map_err(napi_failure)? {
        let name: String = names.get_element(i).map_err(napi_failure)?;
        if !OPTION_NAMES.contains(&name.as_str()) {
            return Err(Error::invalid_arg_value(
                &label(&format!("options.{name}")),
                &format!("is not an option of UdpCom (known: {})", OPTION_NAMES.join(", ")),
                format!("'{name}'"),
            ));
        }
    }
    let field = |name: &str| -> Result<Option<Unknown<'_>>> {
        let v: Unknown = object
            .get_named_property(name)
            .map_err(|_| unreadable(value.value().env, &label(&format!("options.{name}"))))?;
        Ok((type_of(&v) != ValueType::Undefined).then_some(v))
    };
    let num =
        |name: &str| -> Result<Option<f64>> { field(name)?.map(|v| number(v, &format!("options.{name}"))).transpose() };
    let lock_memory = match field("lockMemory")? {
        None => None,
        Some(v) if type_of(&v) == ValueType::Boolean => Some(
            if bool::from_unknown(v).map_err(napi_failure)? {
                "rings"
            } else {
                "none"
            }
            .to_string(),
        ),
        Some(v) if type_of(&v) == ValueType::String => Some(String::from_unknown(v).map_err(napi_failure)?),
        Some(v) => return Err(wrong_type("options.lockMemory", "of type boolean or string", &v)),
    };
    let inline_send = match field("inlineSend")? {
        None => None,
        Some(v) if type_of(&v) == ValueType::Boolean => Some(bool::from_unknown(v).map_err(napi_failure)?),
        Some(v) => return Err(wrong_type("options.inlineSend", "of type boolean", &v)),
    };
    let text = |name: &str| -> Result<Option<String>> {
        field(name)?.map(|v| string(v, &format!("options.{name}"))).transpose()
    };
    Ok(Options {
        timestamping: text("timestamping")?,
        timestamping_fallback: text("timestampingFallback")?,
        inline_send,
        rx_spin_ns: num("rxSpinNs")?,
        cpu: num("cpu")?,
        rx_cpu: num("rxCpu")?,
        capacity: num("capacity")?,
        ring_bytes: num("ringBytes")?,
        direction: num("direction")?,
        priority: num("priority")?,
        spin_ns: num("spinNs")?,
        nap_ns: num("napNs")?,
        lock_memory,
    })
}
