//! Arguments of the per-packet calls (`sendData`, `sendTo`), which the JavaScript layer hands
//! over unchecked to keep them cheap: types here (`ERR_INVALID_ARG_TYPE`), values in the engine.
//! Messages follow Node's wording ("The "data" argument must be ... Received type string
//! ('abc')"), like the JavaScript layer's own checks (`lib/validate.ts`).

use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, TypedArray, Unknown};
use napi::{JsValue, ValueType};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use udpcom_engine::format_number;

use udpcom_engine::{parse_ip_with_scope, Error};

use crate::napi_raw::{bigint_u64, take_exception_message, typed_array_detached, U64};

type Result<T> = std::result::Result<T, Error>;

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
pub fn label(name: &str) -> String {
    if name.contains('.') {
        format!("The \"{name}\" property")
    } else {
        format!("The \"{name}\" argument")
    }
}

/// How Node names a value in a range error: `"timestampNs"`.
pub fn quoted(name: &str) -> String {
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

/// A destination address and port (types checked by the JavaScript layer; the engine checks the
/// port and the family).
pub fn destination(address: &str, port: u32) -> Result<SocketAddr> {
    let port = u16::try_from(port).map_err(|_| Error::bad_port("Port", format!("type number ({port})")))?;
    Ok(match parse_ip_with_scope("address", address)? {
        (IpAddr::V6(ip), scope) => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)),
        (ip, _) => SocketAddr::new(ip, port),
    })
}
