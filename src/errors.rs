//! Engine errors as JavaScript errors: the right class, a string `code`, and for OS errors
//! `errno` (negative, as in Node's own errors) and `syscall`.

use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{Env, JsRangeError, JsTypeError};
use udpcom_engine::{Error, ErrorClass};

/// The JavaScript error object for `error`.
pub fn js_error<'env>(env: &'env Env, error: &Error) -> napi::Result<Unknown<'env>> {
    let base = napi::Error::new(error.code, &error.message);
    let value = match error.class {
        ErrorClass::TypeError => JsTypeError::from(base).into_unknown(*env),
        ErrorClass::RangeError => JsRangeError::from(base).into_unknown(*env),
        ErrorClass::Error => napi::JsError::from(base).into_unknown(*env),
    };
    if let Some(os) = error.os {
        let mut object = Object::from_unknown(value)?;
        object.set_named_property("errno", -os.errno)?;
        object.set_named_property("syscall", os.syscall)?;
    }
    Ok(value)
}

/// A `napi::Error` that throws exactly the object [`js_error`] builds.
pub fn throw(env: &Env, error: Error) -> napi::Error {
    match js_error(env, &error) {
        Ok(value) => napi::Error::from(value),
        Err(failed) => failed,
    }
}

/// Converts engine results for `?` in binding methods.
pub trait OrThrow<T> {
    /// Maps an engine error to a thrown JavaScript error.
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, Error> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|error| throw(env, error))
    }
}
