//! Errors that carry the same `code` a Node user sees.
//!
//! The engine knows nothing of JavaScript, but every error it returns already says which
//! JavaScript error it becomes: its class (`Error`, `TypeError`, `RangeError`), its string
//! `code` (Node's own `ERR_*` codes where they fit, `ERR_UDPCOM_*` for ours, the errno name for
//! OS errors) and, for OS errors, the errno and the failing syscall. The binding only copies
//! these fields onto a JS error object.

use std::fmt;
use std::io;

use crate::errno::errno_name;

/// Error codes that are not errno names.
pub mod code {
    /// An argument has the wrong JavaScript type.
    pub const INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
    /// A number is outside its allowed range (or not an integer).
    pub const OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
    /// An argument has the right type but an unusable value (`'not-an-ip'`).
    pub const INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
    /// A method was called in the wrong state or direction (send before start, ...).
    pub const STATE: &str = "ERR_UDPCOM_STATE";
    /// A pending operation was cut short by `stop()` or `closeSocket()`.
    pub const STOPPED: &str = "ERR_UDPCOM_STOPPED";
    /// A worker thread failed in a way that is a bug (a panic caught at the thread's edge).
    pub const INTERNAL: &str = "ERR_UDPCOM_INTERNAL";
    /// Hardware timestamping was asked for and the interface or the permissions cannot give it.
    pub const HWTSTAMP_UNSUPPORTED: &str = "ERR_UDPCOM_HWTSTAMP_UNSUPPORTED";
    /// A destination was given to a connected instance (as node:dgram's `send` with an address
    /// on a connected socket).
    pub const SOCKET_DGRAM_IS_CONNECTED: &str = "ERR_SOCKET_DGRAM_IS_CONNECTED";
    /// A port outside 1..=65535 where a destination port is needed (node:dgram's code).
    pub const SOCKET_BAD_PORT: &str = "ERR_SOCKET_BAD_PORT";
    /// A capture file (pcap or pcapng) is corrupt, truncated or of a kind that cannot be read.
    pub const PCAP: &str = "ERR_UDPCOM_PCAP";
}

/// The JavaScript error class an [`Error`] becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// A plain `Error` (state errors, OS errors).
    Error,
    /// `TypeError`, for `ERR_INVALID_ARG_TYPE` and `ERR_INVALID_ARG_VALUE`.
    TypeError,
    /// `RangeError`, for `ERR_OUT_OF_RANGE`.
    RangeError,
}

/// Details of an error that came from a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsError {
    /// The positive Linux errno (98 for EADDRINUSE).
    pub errno: i32,
    /// The system call that failed (`"bind"`, `"sched_setscheduler"`, ...).
    pub syscall: &'static str,
}

/// An error with a Node-style string code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// `ERR_OUT_OF_RANGE`, `ERR_UDPCOM_STATE`, `EADDRINUSE`, ...
    pub code: &'static str,
    /// Human-readable message; for OS errors it starts like Node's (`bind EADDRINUSE 0.0.0.0:5000`).
    pub message: String,
    /// Which JavaScript error class this becomes.
    pub class: ErrorClass,
    /// Set for errors that came from a system call.
    pub os: Option<OsError>,
}

/// Result with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    fn new(code: &'static str, class: ErrorClass, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            class,
            os: None,
        }
    }

    /// `TypeError [ERR_INVALID_ARG_TYPE]`: `what` names the argument, e.g. `The "data" argument`.
    pub fn invalid_arg_type(what: &str, expected: &str, received: &str) -> Self {
        Self::new(
            code::INVALID_ARG_TYPE,
            ErrorClass::TypeError,
            format!("{what} must be {expected}. Received {received}"),
        )
    }

    /// `RangeError [ERR_OUT_OF_RANGE]`.
    pub fn out_of_range(what: &str, range: &str, received: impl fmt::Display) -> Self {
        Self::new(
            code::OUT_OF_RANGE,
            ErrorClass::RangeError,
            format!("The value of {what} is out of range. It must be {range}. Received {received}"),
        )
    }

    /// `TypeError [ERR_INVALID_ARG_VALUE]`.
    pub fn invalid_arg_value(what: &str, reason: &str, received: impl fmt::Display) -> Self {
        Self::new(
            code::INVALID_ARG_VALUE,
            ErrorClass::TypeError,
            format!("{what} {reason}. Received {received}"),
        )
    }

    /// `Error [ERR_UDPCOM_STATE]`: the call does not fit the instance's state or direction.
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(code::STATE, ErrorClass::Error, message)
    }

    /// `Error [ERR_UDPCOM_STOPPED]`: a pending operation ended because the instance stopped.
    pub fn stopped(message: impl Into<String>) -> Self {
        Self::new(code::STOPPED, ErrorClass::Error, message)
    }

    /// `Error [ERR_UDPCOM_INTERNAL]`: a bug, reported instead of crashing the process.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, ErrorClass::Error, message)
    }

    /// `Error [ERR_UDPCOM_HWTSTAMP_UNSUPPORTED]`: no hardware timestamps on `interface`.
    pub fn hwtstamp_unsupported(interface: &str, reason: &str) -> Self {
        Self::new(
            code::HWTSTAMP_UNSUPPORTED,
            ErrorClass::Error,
            format!(
                "hardware timestamping is not available on interface {interface}: {reason} \
                 (set timestampingFallback to 'software' or 'none' to continue without it)"
            ),
        )
    }

    /// `Error [ERR_SOCKET_DGRAM_IS_CONNECTED]`: a destination for an instance connected to
    /// `remote`.
    pub fn dgram_is_connected(remote: &str) -> Self {
        Self::new(
            code::SOCKET_DGRAM_IS_CONNECTED,
            ErrorClass::Error,
            format!("Already connected to {remote}: send to the peer without an address, or use an unconnected instance (remotePort 0)"),
        )
    }

    /// `RangeError [ERR_SOCKET_BAD_PORT]`, worded as Node's: `"Port should be > 0 and < 65536.
    /// Received type number (0)."`; `name` names the port (`Port`).
    pub fn bad_port(name: &str, received: impl fmt::Display) -> Self {
        Self::new(
            code::SOCKET_BAD_PORT,
            ErrorClass::RangeError,
            format!("{name} should be > 0 and < 65536. Received {received}."),
        )
    }

    /// `Error [ERR_UDPCOM_PCAP]`: a capture file that cannot be read on from `offset_bytes`, as
    /// `pcap: {what} at byte {offset_bytes}: {detail}` ("pcap: truncated block at byte 1234: ...").
    pub fn pcap(what: &str, offset_bytes: u64, detail: impl fmt::Display) -> Self {
        Self::new(
            code::PCAP,
            ErrorClass::Error,
            format!("pcap: {what} at byte {offset_bytes}: {detail}"),
        )
    }

    /// An OS error, coded by errno name like Node's: `"{syscall} {NAME} {detail}"`.
    pub fn os(syscall: &'static str, errno: i32, detail: &str) -> Self {
        let name = errno_name(errno).unwrap_or("EUNKNOWN");
        let mut message = format!("{syscall} {name}");
        if !detail.is_empty() {
            message.push(' ');
            message.push_str(detail);
        }
        Error {
            code: name,
            message,
            class: ErrorClass::Error,
            os: Some(OsError { errno, syscall }),
        }
    }

    /// An OS error from an `io::Error` (which must carry an errno).
    pub fn from_io(syscall: &'static str, err: &io::Error, detail: &str) -> Self {
        Self::os(syscall, err.raw_os_error().unwrap_or(libc::EIO), detail)
    }

    /// Appends a sentence to the message (used for hints on how to fix permission errors).
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.message.push_str(": ");
        self.message.push_str(hint);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_are_coded_by_errno_name_like_node() {
        let err = Error::os("bind", libc::EADDRINUSE, "127.0.0.1:5000");
        assert_eq!(err.code, "EADDRINUSE");
        assert_eq!(err.message, "bind EADDRINUSE 127.0.0.1:5000");
        assert_eq!(
            err.os,
            Some(OsError {
                errno: libc::EADDRINUSE,
                syscall: "bind"
            })
        );
        assert_eq!(err.class, ErrorClass::Error);
    }

    #[test]
    fn unknown_errno_still_has_a_code() {
        assert_eq!(Error::os("send", 4000, "").code, "EUNKNOWN");
    }

    #[test]
    fn argument_errors_get_node_classes() {
        assert_eq!(Error::out_of_range("x", ">= 0", -1).class, ErrorClass::RangeError);
        assert_eq!(
            Error::invalid_arg_type("x", "a bigint", "type number").class,
            ErrorClass::TypeError
        );
        assert_eq!(
            Error::invalid_arg_value("x", "is invalid", "'a'").code,
            code::INVALID_ARG_VALUE
        );
    }
}
