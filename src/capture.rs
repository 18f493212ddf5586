//! Captures: `capture()`'s options as the engine's `CaptureSpec`, closing off the JavaScript
//! thread (a writer with a backlog may take a while to finish its file), and a capture's
//! statistics as a JavaScript object.

use napi::bindgen_prelude::{AsyncTask, Function};
use napi::{Env, Task};
use napi_derive::napi;
use udpcom_engine::pcap::{CaptureFormat, LinkType};
use udpcom_engine::{CaptureCloser, CaptureSink, CaptureSpec, CaptureStats, Error};

use crate::convert::WorkerError;
use crate::errors::{throw, OrThrow};
use crate::notify::JsNotify;

/// `capture()`'s options, types checked by the JavaScript layer.
#[napi(object, object_to_js = false)]
pub struct NativeCaptureOptions {
    /// 'pcap' or 'pcapng'.
    pub format: Option<String>,
    pub snaplen: Option<f64>,
    pub sent: Option<bool>,
    /// 'raw' or 'ethernet'.
    pub link: Option<String>,
}

impl NativeCaptureOptions {
    /// The engine's spec, writing to `path`, or to memory that `on_data` is told about.
    pub fn into_spec(
        self,
        env: &Env,
        path: Option<String>,
        on_data: Option<Function<(), ()>>,
    ) -> napi::Result<CaptureSpec> {
        // Values first, so that a bad option costs no thread-safe function.
        let mut spec = self.spec(CaptureSink::Path(Default::default())).or_throw(env)?;
        spec.sink = match (path, on_data) {
            (Some(path), None) => CaptureSink::Path(path.into()),
            (None, Some(on_data)) => {
                let notify = JsNotify::new(on_data, || {})?;
                // A capture alone does not keep the process alive; its instance does.
                notify.set_referenced(env, false)?;
                CaptureSink::Memory(notify)
            }
            _ => {
                let error = Error::invalid_arg_value(
                    "The argument 'target'",
                    "must be a path or a data callback",
                    "both or neither",
                );
                return Err(throw(env, error));
            }
        };
        Ok(spec)
    }

    fn spec(self, sink: CaptureSink) -> Result<CaptureSpec, Error> {
        let format = match self.format.as_deref() {
            None | Some("pcapng") => CaptureFormat::Pcapng,
            Some("pcap") => CaptureFormat::Pcap,
            Some(other) => return Err(one_of("format", "'pcap' or 'pcapng'", other)),
        };
        let link = match self.link.as_deref() {
            None | Some("raw") => LinkType::RawIp,
            Some("ethernet") => LinkType::Ethernet,
            Some(other) => return Err(one_of("link", "'raw' or 'ethernet'", other)),
        };
        let snaplen = match self.snaplen {
            Some(snaplen) => udpcom_engine::integer("\"options.snaplen\"", snaplen, 1, 262_144)? as u32,
            None => 65_535,
        };
        Ok(CaptureSpec {
            sink,
            format,
            link,
            snaplen,
            sent: self.sent.unwrap_or(false),
        })
    }
}

fn one_of(option: &str, allowed: &str, value: &str) -> Error {
    Error::invalid_arg_value(
        &format!("The property 'options.{option}'"),
        &format!("must be {allowed}"),
        format!("'{value}'"),
    )
}

/// A capture's counts (see `lib/types.ts` CaptureStats).
#[napi(object, object_from_js = false)]
pub struct NativeCaptureStats {
    pub written: f64,
    pub dropped: f64,
    pub closed: bool,
    pub error: Option<WorkerError>,
}

impl From<CaptureStats> for NativeCaptureStats {
    fn from(s: CaptureStats) -> Self {
        NativeCaptureStats {
            written: s.written as f64,
            dropped: s.dropped as f64,
            closed: s.closed,
            error: s.error.map(WorkerError::from),
        }
    }
}

/// Waits for a capture's file on the libuv thread pool.
pub struct CloseCapture(pub CaptureCloser);

impl Task for CloseCapture {
    type Output = CaptureStats;
    type JsValue = NativeCaptureStats;

    fn compute(&mut self) -> napi::Result<CaptureStats> {
        Ok(self.0.wait())
    }

    fn resolve(&mut self, _env: Env, stats: CaptureStats) -> napi::Result<NativeCaptureStats> {
        Ok(stats.into())
    }
}

/// The task `closeCapture` returns.
pub type CloseTask = AsyncTask<CloseCapture>;
