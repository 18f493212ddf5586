//! Replays: `replay()`'s options as the engine's `ReplaySpec`, and a replay's statistics as a
//! JavaScript object. The JavaScript layer checked the options' types; the engine checks their
//! values.

use std::sync::Arc;

use napi::bindgen_prelude::{BigInt, Buffer};
use napi_derive::napi;
use udpcom_engine::{now_ns, Error, ReplayDestination, ReplayInput, ReplaySpec, ReplayStats};

use crate::args;
use crate::convert::{HistogramBucket, WorkerError};
use crate::stream::state_name;
use crate::NativeDestination;

/// When the first datagram leaves if the options do not say (the contract).
const DEFAULT_START_DELAY_NS: u64 = 10_000_000;

/// `replay()`'s options, types checked by the JavaScript layer.
#[napi(object, object_to_js = false)]
pub struct NativeReplayOptions {
    pub speed: Option<f64>,
    pub start_ns: Option<BigInt>,
    /// Passes through the file (`loop`).
    pub loops: Option<f64>,
    pub filter_port: Option<f64>,
    pub filter_address: Option<String>,
    /// 'connected' or 'original'; absent with `destination_to`.
    pub destination: Option<String>,
    pub destination_to: Option<NativeDestination>,
}

impl NativeReplayOptions {
    /// The engine's spec for reading `path` or `bytes`.
    pub fn into_spec(self, path: Option<String>, bytes: Option<Buffer>) -> Result<ReplaySpec, Error> {
        let input = match (path, bytes) {
            (Some(path), None) => ReplayInput::Path(path.into()),
            (None, Some(bytes)) => ReplayInput::Bytes(Arc::new(bytes.to_vec())),
            _ => {
                return Err(Error::invalid_arg_value(
                    "The argument 'file'",
                    "must be a path or the bytes of a file",
                    "both or neither",
                ))
            }
        };
        let speed = self.speed.unwrap_or(1.0);
        if !speed.is_finite() || speed < 0.0 {
            return Err(Error::out_of_range("\"options.speed\"", ">= 0 and finite", speed));
        }
        let loops = match self.loops {
            Some(loops) => udpcom_engine::integer("\"options.loop\"", loops, 1, u32::MAX as u64)?,
            None => 1,
        };
        let filter_port = match self.filter_port {
            Some(port) => Some(udpcom_engine::integer("\"options.filter.port\"", port, 0, 65_535)? as u16),
            None => None,
        };
        let filter_address = match &self.filter_address {
            Some(text) => Some(udpcom_engine::parse_ip_with_scope("options.filter.address", text)?.0),
            None => None,
        };
        let destination = match (self.destination.as_deref(), self.destination_to) {
            (_, Some(to)) => ReplayDestination::Fixed(args::destination(&to.address, to.port)?),
            (None | Some("connected"), None) => ReplayDestination::Connected,
            (Some("original"), None) => ReplayDestination::Original,
            (Some(other), None) => {
                return Err(Error::invalid_arg_value(
                    "The property 'options.destination'",
                    "must be 'connected', 'original' or { address, port }",
                    format!("'{other}'"),
                ))
            }
        };
        Ok(ReplaySpec {
            input,
            speed,
            start_ns: self
                .start_ns
                .map_or_else(|| now_ns() + DEFAULT_START_DELAY_NS, |b| b.get_u64().1),
            loops,
            filter_port,
            filter_address,
            destination,
        })
    }
}

/// Datagrams a replay left out, by reason (see `lib/types.ts` ReplaySkipped).
#[napi(object, object_from_js = false)]
pub struct NativeReplaySkipped {
    pub total: f64,
    pub not_ip: f64,
    pub not_udp: f64,
    pub ip_fragment: f64,
    pub truncated: f64,
    pub bad_header: f64,
    pub unsupported_link_type: f64,
    pub timestamp_out_of_range: f64,
    pub unsupported_block: f64,
    pub filtered: f64,
    pub other_family: f64,
}

/// A replay's statistics (see `lib/types.ts` ReplayStats).
#[napi(object, object_from_js = false)]
pub struct NativeReplayStats {
    pub id: u32,
    /// 'running', 'completed', 'stopped' or 'instanceStopped'.
    pub state: &'static str,
    pub sent: f64,
    pub bytes: f64,
    pub errors: f64,
    pub late: f64,
    pub read: f64,
    pub passes: f64,
    pub skipped: NativeReplaySkipped,
    pub min_lateness_ns: f64,
    pub mean_lateness_ns: f64,
    pub p50_lateness_ns: f64,
    pub p90_lateness_ns: f64,
    pub p99_lateness_ns: f64,
    pub p999_lateness_ns: f64,
    pub max_lateness_ns: f64,
    pub lateness_histogram: Vec<HistogramBucket>,
    pub error: Option<WorkerError>,
}

impl From<ReplayStats> for NativeReplayStats {
    fn from(s: ReplayStats) -> Self {
        let n = |v: u64| v as f64;
        let (file, l) = (&s.skipped.file, &s.lateness);
        NativeReplayStats {
            id: s.id,
            state: state_name(s.end),
            sent: n(s.sent),
            bytes: n(s.bytes),
            errors: n(s.errors),
            late: n(s.late),
            read: n(s.read),
            passes: n(s.passes),
            skipped: NativeReplaySkipped {
                total: n(file.total() + s.skipped.filtered + s.skipped.other_family),
                not_ip: n(file.not_ip),
                not_udp: n(file.not_udp),
                ip_fragment: n(file.ip_fragment),
                truncated: n(file.truncated),
                bad_header: n(file.bad_header),
                unsupported_link_type: n(file.unsupported_link_type),
                timestamp_out_of_range: n(file.timestamp_out_of_range),
                unsupported_block: n(file.unsupported_block),
                filtered: n(s.skipped.filtered),
                other_family: n(s.skipped.other_family),
            },
            min_lateness_ns: n(l.min_ns),
            mean_lateness_ns: l.mean_ns,
            p50_lateness_ns: n(l.p50_ns),
            p90_lateness_ns: n(l.p90_ns),
            p99_lateness_ns: n(l.p99_ns),
            p999_lateness_ns: n(l.p999_ns),
            max_lateness_ns: n(l.max_ns),
            lateness_histogram: l.buckets.iter().map(HistogramBucket::from).collect(),
            error: s.error.map(WorkerError::from),
        }
    }
}
