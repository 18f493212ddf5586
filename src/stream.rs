//! Streams: `startStream`'s options as the engine's `StreamSpec`, and a stream's statistics as a
//! JavaScript object. The JavaScript layer checked the options' types and that exactly one rate
//! is given; the engine checks their values.

use napi::bindgen_prelude::{BigInt, Buffer};
use napi_derive::napi;
use udpcom_engine::analysis::StreamSnapshot;
use udpcom_engine::{
    format_ip, now_ns, Error, PeerAddr, StreamEnd, StreamHeader, StreamLength, StreamRate, StreamSendStats, StreamSpec,
};

use crate::args;
use crate::convert::HistogramBucket;
use crate::NativeDestination;

/// When a stream starts if its options do not say: a moment from now, so that its first packet
/// is not late by the time it takes to start.
const DEFAULT_START_DELAY_NS: u64 = 1_000_000;

/// `startStream`'s options, types checked by the JavaScript layer.
#[napi(object, object_to_js = false)]
pub struct NativeStreamOptions {
    pub rate_pps: Option<f64>,
    pub period_ns: Option<f64>,
    pub bits_per_second: Option<f64>,
    pub start_ns: Option<BigInt>,
    pub count: Option<f64>,
    pub duration_ns: Option<f64>,
    pub burst: Option<f64>,
    pub size: Option<f64>,
    pub payload: Option<Buffer>,
    /// 'udpcom', 'iperf2' or 'none'.
    pub header: Option<String>,
    pub stream_id: Option<f64>,
    pub destination: Option<NativeDestination>,
}

impl NativeStreamOptions {
    /// The engine's spec, and the stream id asked for.
    pub fn into_spec(self) -> Result<(StreamSpec, Option<u32>), Error> {
        let integer = |name: &str, value: f64, min: u64, max: u64| {
            udpcom_engine::integer(&format!("\"options.{name}\""), value, min, max)
        };
        let rate = match (self.rate_pps, self.period_ns, self.bits_per_second) {
            (Some(pps), None, None) => StreamRate::PacketsPerSecond(pps),
            (None, Some(ns), None) => StreamRate::PeriodNs(integer("periodNs", ns, 1, u64::MAX >> 11)?),
            (None, None, Some(bps)) => StreamRate::BitsPerSecond(bps),
            _ => {
                return Err(Error::invalid_arg_value(
                    "The argument 'options'",
                    "must have exactly one of ratePps, periodNs, bitsPerSecond",
                    "another set",
                ))
            }
        };
        let length = match (self.count, self.duration_ns) {
            (Some(count), None) => StreamLength::Count(integer("count", count, 0, (1 << 53) - 1)?),
            (None, Some(ns)) => StreamLength::DurationNs(integer("durationNs", ns, 0, (1 << 53) - 1)?),
            (None, None) => StreamLength::Unbounded,
            (Some(_), Some(_)) => {
                return Err(Error::invalid_arg_value(
                    "The argument 'options'",
                    "must have count or durationNs, not both",
                    "both",
                ))
            }
        };
        let payload = self.payload.map(|b| b.to_vec()).unwrap_or_default();
        let size = match self.size {
            Some(size) => integer("size", size, 0, 65_535)? as usize,
            None if !payload.is_empty() => payload.len(),
            None => 64,
        };
        let spec = StreamSpec {
            start_ns: self
                .start_ns
                .map_or_else(|| now_ns() + DEFAULT_START_DELAY_NS, |b| b.get_u64().1),
            rate,
            length,
            burst: self
                .burst
                .map(|b| integer("burst", b, 1, 1 << 20))
                .transpose()?
                .unwrap_or(1),
            size,
            payload,
            header: self
                .header
                .as_deref()
                .map(StreamHeader::parse)
                .transpose()?
                .unwrap_or(StreamHeader::Udpcom),
            destination: self
                .destination
                .map(|d| args::destination(&d.address, d.port))
                .transpose()?,
        };
        let id = self
            .stream_id
            .map(|id| integer("streamId", id, 0, u32::MAX as u64))
            .transpose()?
            .map(|id| id as u32);
        Ok((spec, id))
    }
}

/// One stream's send statistics.
#[napi(object, object_from_js = false)]
pub struct NativeStreamStats {
    pub id: u32,
    /// 'running', 'completed', 'stopped' or 'instanceStopped'.
    pub state: &'static str,
    pub sent: f64,
    pub bytes: f64,
    pub errors: f64,
    pub late: f64,
    pub start_ns: u64,
    pub period_ns: f64,
    pub first_departure_ns: Option<u64>,
    pub last_departure_ns: Option<u64>,
    pub min_lateness_ns: f64,
    pub mean_lateness_ns: f64,
    pub p50_lateness_ns: f64,
    pub p90_lateness_ns: f64,
    pub p99_lateness_ns: f64,
    pub p999_lateness_ns: f64,
    pub max_lateness_ns: f64,
    pub lateness_histogram: Vec<HistogramBucket>,
    /// Round trips of its packets through a reflector, when this instance analyses the replies.
    pub round_trip: Option<NativeRoundTrip>,
}

/// Round trips of a stream's packets through a reflector (its udpcom header's four times).
#[napi(object, object_from_js = false)]
pub struct NativeRoundTrip {
    pub count: f64,
    pub rtt_p50_ns: f64,
    pub rtt_p99_ns: f64,
    pub rtt_max_ns: f64,
    pub forward_p50_ns: f64,
    pub backward_p50_ns: f64,
}

/// One received stream's analysis (`analyze`): the fields of the public StreamStats.
#[napi(object, object_from_js = false)]
pub struct NativeStreamAnalysis {
    pub stream_id: Option<u32>,
    pub address: String,
    pub port: u32,
    pub received: f64,
    pub lost: f64,
    pub loss_runs: f64,
    pub duplicates: f64,
    pub reordered: f64,
    pub max_reorder_extent: f64,
    pub jitter_ns: f64,
    pub ipdv_p50_ns: f64,
    pub ipdv_p99_ns: f64,
    pub pdv_p99_ns: f64,
    pub one_way_latency_p50_ns: f64,
    pub one_way_latency_p99_ns: f64,
    pub one_way_latency_p999_ns: f64,
    pub one_way_latency_max_ns: f64,
    pub lateness_p50_ns: f64,
    pub lateness_p99_ns: f64,
    pub lateness_max_ns: f64,
    pub first_arrival_ns: u64,
    pub last_arrival_ns: u64,
    pub rate_pps: f64,
}

impl From<StreamSnapshot> for NativeStreamAnalysis {
    fn from(s: StreamSnapshot) -> Self {
        let n = |v: u64| v as f64;
        let i = |v: i64| v as f64;
        NativeStreamAnalysis {
            stream_id: s.stream_id,
            address: format_ip(&PeerAddr::from_socket_addr(s.source)),
            port: u32::from(s.source.port()),
            received: n(s.received),
            lost: n(s.lost),
            loss_runs: n(s.loss_runs),
            duplicates: n(s.duplicates),
            reordered: n(s.reordered),
            max_reorder_extent: n(s.max_reorder_extent),
            jitter_ns: s.jitter_ns,
            ipdv_p50_ns: i(s.ipdv_p50_ns),
            ipdv_p99_ns: i(s.ipdv_p99_ns),
            pdv_p99_ns: n(s.pdv_p99_ns),
            one_way_latency_p50_ns: i(s.one_way_latency_p50_ns),
            one_way_latency_p99_ns: i(s.one_way_latency_p99_ns),
            one_way_latency_p999_ns: i(s.one_way_latency_p999_ns),
            one_way_latency_max_ns: i(s.one_way_latency_max_ns),
            lateness_p50_ns: i(s.lateness_p50_ns),
            lateness_p99_ns: i(s.lateness_p99_ns),
            lateness_max_ns: i(s.lateness_max_ns),
            first_arrival_ns: s.first_arrival_ns,
            last_arrival_ns: s.last_arrival_ns,
            rate_pps: s.rate_pps,
        }
    }
}

/// How a stream or replay ended, as JavaScript names it.
pub fn state_name(end: StreamEnd) -> &'static str {
    match end {
        StreamEnd::Running => "running",
        StreamEnd::Completed => "completed",
        StreamEnd::Stopped => "stopped",
        StreamEnd::InstanceStopped => "instanceStopped",
    }
}

impl From<StreamSendStats> for NativeStreamStats {
    fn from(s: StreamSendStats) -> Self {
        let l = &s.lateness;
        let n = |v: u64| v as f64;
        NativeStreamStats {
            id: s.id,
            state: state_name(s.end),
            sent: n(s.sent),
            bytes: n(s.bytes),
            errors: n(s.errors),
            late: n(s.late),
            start_ns: s.start_ns,
            period_ns: s.period_ns,
            first_departure_ns: (s.first_departure_ns != 0).then_some(s.first_departure_ns),
            last_departure_ns: (s.last_departure_ns != 0).then_some(s.last_departure_ns),
            min_lateness_ns: n(l.min_ns),
            mean_lateness_ns: l.mean_ns,
            p50_lateness_ns: n(l.p50_ns),
            p90_lateness_ns: n(l.p90_ns),
            p99_lateness_ns: n(l.p99_ns),
            p999_lateness_ns: n(l.p999_ns),
            max_lateness_ns: n(l.max_ns),
            lateness_histogram: l.buckets.iter().map(HistogramBucket::from).collect(),
            round_trip: s.round_trip.map(|r| NativeRoundTrip {
                count: r.count as f64,
                rtt_p50_ns: r.rtt_p50_ns as f64,
                rtt_p99_ns: r.rtt_p99_ns as f64,
                rtt_max_ns: r.rtt_max_ns as f64,
                forward_p50_ns: r.forward_p50_ns as f64,
                backward_p50_ns: r.backward_p50_ns as f64,
            }),
        }
    }
}
