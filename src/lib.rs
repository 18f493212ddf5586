//! The Node.js binding of udpcom: the internal `NativeUdpCom` class that the JavaScript layer
//! (`lib/`) wraps.
//!
//! A thin layer with no logic of its own: each method converts its arguments, calls the engine
//! (`udpcom-engine`, which knows nothing of Node) and converts the result or the error back
//! ([`convert`], [`errors`]). The JavaScript layer owns everything that is Node idiom: the public
//! class, argument type checks, promises, the receive queue, packet objects, iterators, abort
//! signals. What stays here is what must be native: the thread-safe function that wakes
//! JavaScript ([`notify`]), the per-packet send entry point ([`fast_path`]), and copying received
//! packets into memory JavaScript owns ([`receive`]).

use std::cell::RefMut;

use napi::bindgen_prelude::{
    AsyncTask, BigInt, BigUint64ArraySlice, Buffer, Function, ObjectFinalize, Uint32ArraySlice, Uint8ArraySlice,
    Unknown,
};
use napi::Env;
use napi_derive::napi;
use std::net::{Ipv6Addr, SocketAddrV6};

use udpcom_engine::{format_ip, interface_name, Config, Options, PeerAddr, UdpEngine};

mod args;
mod capture;
mod convert;
mod errors;
mod fast_path;
mod instance;
mod napi_raw;
mod notify;
pub mod probe;
mod receive;
mod replay;
mod send;
mod stream;

use convert::{PacketStats, SocketStatus, TimestampingStatus, TxTimestamp};
use errors::OrThrow;
use instance::{Instance, SharedInstance};

/// Constructor options after the JavaScript layer checked their types (values are checked by
/// the engine's `Config`). Field for field the engine's `Options`.
#[napi(object, object_to_js = false)]
pub struct NativeOptions {
    pub cpu: Option<f64>,
    pub rx_cpu: Option<f64>,
    pub capacity: Option<f64>,
    pub ring_bytes: Option<f64>,
    pub direction: Option<f64>,
    pub priority: Option<f64>,
    pub spin_ns: Option<f64>,
    pub nap_ns: Option<f64>,
    /// 'none', 'rings' or 'all'.
    pub lock_memory: Option<String>,
    pub inline_send: Option<bool>,
    pub rx_spin_ns: Option<f64>,
    pub timestamping: Option<String>,
    pub timestamping_fallback: Option<String>,
    /// 'udpcom' or 'iperf2'.
    pub analyze: Option<String>,
    pub deliver: Option<bool>,
    pub reflect: Option<bool>,
    pub interface: Option<String>,
    pub reuse_address: Option<bool>,
    pub reuse_port: Option<bool>,
    pub broadcast: Option<bool>,
    pub ttl: Option<f64>,
    pub dscp: Option<f64>,
    pub socket_priority: Option<f64>,
    pub recv_buffer_size: Option<f64>,
    pub send_buffer_size: Option<f64>,
    pub multicast: Option<NativeMulticastOptions>,
    pub packet_info: Option<bool>,
    pub gso: Option<bool>,
    pub gro: Option<bool>,
}

/// The `multicast` option: outgoing multicast.
#[napi(object, object_to_js = false)]
pub struct NativeMulticastOptions {
    /// An interface name or address.
    pub interface: Option<String>,
    pub ttl: Option<f64>,
    pub loopback: Option<bool>,
}

impl From<NativeOptions> for Options {
    fn from(o: NativeOptions) -> Self {
        let multicast = o.multicast.unwrap_or(NativeMulticastOptions {
            interface: None,
            ttl: None,
            loopback: None,
        });
        Options {
            cpu: o.cpu,
            rx_cpu: o.rx_cpu,
            capacity: o.capacity,
            ring_bytes: o.ring_bytes,
            direction: o.direction,
            priority: o.priority,
            spin_ns: o.spin_ns,
            nap_ns: o.nap_ns,
            lock_memory: o.lock_memory,
            inline_send: o.inline_send,
            rx_spin_ns: o.rx_spin_ns,
            timestamping: o.timestamping,
            timestamping_fallback: o.timestamping_fallback,
            analyze: o.analyze,
            deliver: o.deliver,
            reflect: o.reflect,
            interface: o.interface,
            reuse_address: o.reuse_address,
            reuse_port: o.reuse_port,
            broadcast: o.broadcast,
            ttl: o.ttl,
            dscp: o.dscp,
            socket_priority: o.socket_priority,
            recv_buffer_size: o.recv_buffer_size,
            send_buffer_size: o.send_buffer_size,
            multicast_interface: multicast.interface,
            multicast_ttl: multicast.ttl,
            multicast_loopback: multicast.loopback,
            packet_info: o.packet_info,
            gso: o.gso,
            gro: o.gro,
        }
    }
}

/// Where a batch goes (sendBatch's `destination`, checked by the JavaScript layer).
#[napi(object, object_to_js = false)]
pub struct NativeDestination {
    pub address: String,
    pub port: u32,
}

/// One engine instance. Internal: the public `UdpCom` class of `lib/` wraps it.
#[napi(custom_finalize)]
pub struct NativeUdpCom {
    instance: SharedInstance,
}

#[napi]
impl NativeUdpCom {
    /// Checks the argument values (types were checked by the JavaScript layer).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        local_ip: String,
        local_port: f64,
        remote_ip: String,
        remote_port: f64,
        options: NativeOptions,
    ) -> napi::Result<Self> {
        let config = Config::new(&local_ip, local_port, &remote_ip, remote_port, &options.into()).or_throw(&env)?;
        Ok(NativeUdpCom {
            instance: Instance::new(UdpEngine::new(config)),
        })
    }

    fn instance(&self) -> RefMut<'_, Instance> {
        // Methods run one at a time on the JavaScript thread and never call into JavaScript
        // while they hold the instance, so it is never borrowed twice.
        self.instance.borrow_mut()
    }

    /// The bound port once initSocket() ran.
    #[napi(getter)]
    pub fn local_port(&self, env: Env) -> napi::Result<u32> {
        self.instance().engine.local_port().map(u32::from).or_throw(&env)
    }

    /// Creates, binds and (unless remotePort is 0) connects the socket.
    #[napi]
    pub fn init_socket(&self, env: Env) -> napi::Result<()> {
        self.instance().engine.init_socket().or_throw(&env)
    }

    /// Starts the workers. `onWake` runs on the JavaScript thread whenever a worker has news
    /// (packets for a waiting reader, an expired receive timeout, a reached drain target),
    /// at most once per batch of news.
    #[napi(ts_args_type = "onWake: () => void")]
    pub fn start(&self, env: Env, on_wake: Function<(), ()>) -> napi::Result<()> {
        Instance::start(&self.instance, &env, on_wake)?;
        let address = fast_path::register(self);
        let mut instance = self.instance();
        instance.fast_path_address = Some(address);
        instance.report_memory(&env, None);
        Ok(())
    }

    /// Stops and joins the workers; queued packets are discarded and counted.
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.stop(&env);
        Ok(())
    }

    /// Stops if needed and closes the socket; every later call throws ERR_UDPCOM_STATE.
    #[napi]
    pub fn close(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.stop(&env);
        instance.engine.close().or_throw(&env)?;
        instance.report_memory(&env, None);
        Ok(())
    }

    /// Queues one packet for the connected peer (replaced by a hand-written entry point, see
    /// `fast_path`; this is the path for unusual calls).
    #[napi(ts_args_type = "data: Uint8Array, timestampNs?: bigint")]
    pub fn send_data(&self, env: Env, data: Unknown, timestamp_ns: Option<Unknown>) -> napi::Result<bool> {
        let view = args::bytes(data, "data").or_throw(&env)?;
        let deadline_ns = args::timestamp(timestamp_ns, "timestampNs").or_throw(&env)?;
        self.instance()
            .engine
            .send(&view.arraybuffer, deadline_ns)
            .or_throw(&env)
    }

    /// Queues packets stored back to back in `bytes`, `lengths[i]` bytes each, each to leave at
    /// `timestampsNs[i]` (a BigUint64Array or BigInt64Array; omitted: as soon as possible).
    /// Returns how many were queued: it stops at the first that does not fit.
    /// With `destination`, to that address (an unconnected instance).
    #[napi(ts_args_type = "bytes: Uint8Array, lengths: Uint32Array, count: number, \
                           timestampsNs?: BigUint64Array | BigInt64Array | null, destination?: NativeDestination | null")]
    pub fn send_flat(
        &self,
        env: Env,
        bytes: &[u8],
        lengths: &[u32],
        count: u32,
        timestamps_ns: Option<Unknown>,
        destination: Option<NativeDestination>,
    ) -> napi::Result<u32> {
        let batch = send::flat_batch(bytes, lengths, count as usize, timestamps_ns).or_throw(&env)?;
        let destination = match destination {
            Some(to) => Some(args::destination(&to.address, to.port).or_throw(&env)?),
            None => None,
        };
        let queued = self.instance().engine.send_batch(&batch, destination).or_throw(&env)?;
        Ok(queued as u32)
    }

    /// Queues one packet for `address`:`port` (an unconnected instance).
    #[napi(ts_args_type = "data: Uint8Array, address: string, port: number, timestampNs?: bigint")]
    pub fn send_to(
        &self,
        env: Env,
        data: Unknown,
        address: String,
        port: u32,
        timestamp_ns: Option<Unknown>,
    ) -> napi::Result<bool> {
        let view = args::bytes(data, "data").or_throw(&env)?;
        let deadline_ns = args::timestamp(timestamp_ns, "timestampNs").or_throw(&env)?;
        let destination = args::destination(&address, port).or_throw(&env)?;
        self.instance()
            .engine
            .send_to(&view.arraybuffer, deadline_ns, destination)
            .or_throw(&env)
    }

    /// The text of an IPv6 address given as four big-endian words, with `%<interface>` for a
    /// non-zero scope: what `ReceivedPacket.address` shows.
    #[napi]
    pub fn format_ipv6(&self, words: Vec<u32>, scope_id: u32) -> String {
        let mut octets = [0u8; 16];
        for (bytes, word) in octets.chunks_exact_mut(4).zip(words) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        let address = SocketAddrV6::new(Ipv6Addr::from(octets), 0, 0, scope_id);
        format_ip(&PeerAddr::from_socket_addr(address.into()))
    }

    /// The name of the interface with index `index` (what `ReceivedPacket.interface` shows),
    /// or null if none has it.
    #[napi]
    pub fn interface_name(&self, index: u32) -> Option<String> {
        interface_name(index)
    }

    /// Moves up to `max` received packets out of the receive ring into memory JavaScript owns:
    /// payloads back to back into `bytes` (as many as fit), per packet two stamps into `stamps`
    /// (arrival, hardware), eight words into `info` and, with `packetInfo`, six words into
    /// `destinations` (see [`receive`]; null: not written). Returns how many.
    #[napi]
    pub fn take(
        &self,
        bytes: Uint8ArraySlice,
        stamps: BigUint64ArraySlice,
        info: Uint32ArraySlice,
        max: u32,
        destinations: Option<Uint32ArraySlice>,
    ) -> u32 {
        receive::take(
            &mut self.instance().engine,
            bytes,
            stamps,
            info,
            destinations,
            max as usize,
        ) as u32
    }

    /// Joins (`join` true) or leaves a multicast group: addMembership / dropMembership, and
    /// with `source` addSourceSpecificMembership / dropSourceSpecificMembership.
    #[napi]
    pub fn change_membership(
        &self,
        env: Env,
        join: bool,
        source: Option<String>,
        group: String,
        interface: Option<String>,
    ) -> napi::Result<()> {
        let engine = &mut self.instance().engine;
        let (source, interface) = (source.as_deref(), interface.as_deref());
        let result = if join {
            engine.add_membership(source, &group, interface)
        } else {
            engine.drop_membership(source, &group, interface)
        };
        result.or_throw(&env)
    }

    /// What is in effect on the socket: addresses, interface, buffers, TTL, DSCP, multicast.
    #[napi]
    pub fn socket_info(&self, env: Env) -> napi::Result<SocketStatus> {
        self.instance()
            .engine
            .socket_info()
            .map(SocketStatus::from)
            .or_throw(&env)
    }

    /// Packets waiting in the receive ring now.
    #[napi]
    pub fn received_count(&self) -> u32 {
        self.instance().engine.received_count() as u32
    }

    /// Asks the receiver to call `onWake` when a packet arrives and, with `deadlineNs`
    /// (CLOCK_MONOTONIC), when that time passes.
    #[napi]
    pub fn arm_receive(&self, deadline_ns: Option<BigInt>) {
        let deadline_ns = deadline_ns.map(|d| d.get_u64().1);
        self.instance().engine.wait_for_receive(deadline_ns);
    }

    /// Nobody waits for packets any more.
    #[napi]
    pub fn disarm_receive(&self) {
        self.instance().engine.stop_waiting_for_receive();
    }

    /// Throws ERR_UDPCOM_STATE once close() ran.
    #[napi]
    pub fn check_open(&self, env: Env) -> napi::Result<()> {
        self.instance().engine.check_open().or_throw(&env)
    }

    /// Throws the error a receive call gets now (ERR_UDPCOM_STATE), if any.
    #[napi]
    pub fn check_can_receive(&self, env: Env) -> napi::Result<()> {
        self.instance().engine.check_can_receive().or_throw(&env)
    }

    /// Packets queued so far.
    #[napi]
    pub fn queued_total(&self) -> f64 {
        self.instance().engine.queued_total() as f64
    }

    /// Packets that left the send ring so far (sent, failed or discarded).
    #[napi]
    pub fn completed_total(&self) -> f64 {
        self.instance().engine.completed_total() as f64
    }

    /// Asks the sender to call `onWake` once `completedTotal()` reaches `target` (negative:
    /// nobody waits).
    #[napi]
    pub fn set_drain_target(&self, target: f64) {
        let target = if target < 0.0 { u64::MAX } else { target as u64 };
        self.instance().engine.set_drain_target(target);
    }

    /// Counters and latency statistics since the instance was created.
    #[napi]
    pub fn stats(&self, env: Env) -> napi::Result<PacketStats> {
        self.instance().engine.stats().map(PacketStats::from).or_throw(&env)
    }

    /// Timestamping of the socket: asked for, possible, in use.
    #[napi]
    pub fn timestamping_info(&self, env: Env) -> napi::Result<TimestampingStatus> {
        self.instance()
            .engine
            .timestamping_info()
            .map(TimestampingStatus::from)
            .or_throw(&env)
    }

    /// Takes up to `max` transmit timestamps read so far.
    #[napi]
    pub fn tx_timestamps(&self, env: Env, max: u32) -> napi::Result<Vec<TxTimestamp>> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        let mut stamps = Vec::new();
        instance
            .engine
            .take_tx_records(max as usize, |record| stamps.push(TxTimestamp::from(record)));
        Ok(stamps)
    }

    /// Starts a native stream (see `lib/types.ts` StreamOptions); returns its id.
    #[napi]
    pub fn start_stream(&self, env: Env, options: stream::NativeStreamOptions) -> napi::Result<u32> {
        let (spec, id) = options.into_spec().or_throw(&env)?;
        self.instance().engine.start_stream(&spec, id).or_throw(&env)
    }

    /// Asks stream `id` to stop; false if there is no such stream.
    #[napi]
    pub fn stop_stream(&self, id: u32) -> bool {
        self.instance().engine.stop_stream(id)
    }

    /// Send statistics of stream `id`.
    #[napi]
    pub fn stream_stats(&self, id: u32) -> Option<stream::NativeStreamStats> {
        self.instance()
            .engine
            .stream_stats(id)
            .map(stream::NativeStreamStats::from)
    }

    /// The analysis of every stream received so far (`analyze`), in order of first arrival;
    /// empty without `analyze`.
    #[napi]
    pub fn stream_analysis(&self, env: Env) -> napi::Result<Vec<stream::NativeStreamAnalysis>> {
        let instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        Ok(instance
            .engine
            .analyzed_streams()
            .unwrap_or_default()
            .into_iter()
            .map(stream::NativeStreamAnalysis::from)
            .collect())
    }

    /// Starts replaying the capture file at `path`, or held in `bytes` (see `lib/types.ts`
    /// ReplayOptions); returns its id.
    #[napi]
    pub fn start_replay(
        &self,
        env: Env,
        path: Option<String>,
        bytes: Option<Buffer>,
        options: replay::NativeReplayOptions,
    ) -> napi::Result<u32> {
        let spec = options.into_spec(path, bytes).or_throw(&env)?;
        self.instance().engine.start_replay(spec).or_throw(&env)
    }

    /// Asks replay `id` to stop; false if there is no such replay.
    #[napi]
    pub fn stop_replay(&self, id: u32) -> bool {
        self.instance().engine.stop_replay(id)
    }

    /// Statistics of replay `id`.
    #[napi]
    pub fn replay_stats(&self, id: u32) -> Option<replay::NativeReplayStats> {
        self.instance()
            .engine
            .replay_stats(id)
            .map(replay::NativeReplayStats::from)
    }

    /// Starts capturing into the file at `path`, or into memory that `onData` is told about
    /// (then `takeCaptureBytes`); returns its id.
    #[napi(ts_args_type = "path: string | null, onData: (() => void) | null, options: NativeCaptureOptions")]
    pub fn start_capture(
        &self,
        env: Env,
        path: Option<String>,
        on_data: Option<Function<(), ()>>,
        options: capture::NativeCaptureOptions,
    ) -> napi::Result<u32> {
        let spec = options.into_spec(&env, path, on_data)?;
        self.instance().engine.start_capture(&spec).or_throw(&env)
    }

    /// Closes capture `id`: resolves with its final counts once its file is complete.
    #[napi(ts_return_type = "Promise<NativeCaptureStats>")]
    pub fn close_capture(&self, env: Env, id: u32) -> napi::Result<capture::CloseTask> {
        match self.instance().engine.close_capture(id) {
            Some(closer) => Ok(AsyncTask::new(capture::CloseCapture(closer))),
            None => Err(errors::throw(
                &env,
                udpcom_engine::Error::state("there is no such capture"),
            )),
        }
    }

    /// Counts of capture `id`.
    #[napi]
    pub fn capture_stats(&self, id: u32) -> Option<capture::NativeCaptureStats> {
        self.instance()
            .engine
            .capture_stats(id)
            .map(capture::NativeCaptureStats::from)
    }

    /// What memory capture `id` wrote since the last call.
    #[napi]
    pub fn take_capture_bytes(&self, id: u32) -> Option<Buffer> {
        self.instance().engine.take_capture_bytes(id).map(Buffer::from)
    }

    /// True once after a stream ended (then look at the streams' states).
    #[napi]
    pub fn take_streams_ended(&self) -> bool {
        self.instance().engine.take_streams_ended()
    }

    /// Whether a started instance keeps the event loop alive.
    #[napi]
    pub fn set_referenced(&self, env: Env, referenced: bool) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.set_referenced(&env, referenced)
    }
}

impl ObjectFinalize for NativeUdpCom {
    /// Garbage-collected: stop and join the workers.
    fn finalize(self, env: Env) -> napi::Result<()> {
        if let Ok(mut instance) = self.instance.try_borrow_mut() {
            if let Some(address) = instance.fast_path_address.take() {
                fast_path::unregister(address);
            }
            instance.stop(&env);
            instance.report_memory(&env, Some(0));
        }
        Ok(())
    }
}

/// Installs the hand-written entry point of `sendData` (see `fast_path`).
#[napi(module_exports)]
pub fn install_fast_paths(exports: napi::bindgen_prelude::Object, env: Env) -> napi::Result<()> {
    fast_path::install(&env, &exports)
}
