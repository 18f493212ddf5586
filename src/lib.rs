//! The Node.js binding of udpcom: the `UdpCom` class.
//!
//! A thin layer: each method checks and converts its JavaScript arguments ([`args`]), calls
//! the engine (`udpcom-engine`, which knows nothing of Node) and converts results and errors
//! back ([`convert`], [`errors`]). Promises and the thread-safe function that settles them live
//! in [`instance`].

use std::cell::RefMut;

use napi::bindgen_prelude::{FromNapiValue, FunctionRef, Object, ObjectFinalize, Unknown};
use napi::Env;
use napi_derive::napi;
use udpcom_engine::{Config, UdpEngine};

mod args;
mod batch;
mod convert;
mod errors;
mod fast_path;
mod instance;
mod napi_raw;
mod notify;
mod packets;

use convert::{PacketStats, TimestampingStatus, TxTimestamp};
use errors::OrThrow;
use instance::{Instance, SharedInstance};

/// Most packets one receiveBatch or onPackets batch may ask for.
const MAX_BATCH: usize = 1 << 20;

/// Options of the UdpCom constructor.
#[napi(object, object_to_js = false)]
pub struct UdpComOptions {
    /// CPU the worker thread(s) are pinned to; unset: not pinned.
    pub cpu: Option<u32>,
    /// CPU of the receive worker when direction is 2; default: cpu.
    pub rx_cpu: Option<u32>,
    /// Ring capacity in packets, per direction; default 4096; 1..2**24.
    pub capacity: Option<u32>,
    /// Payload bytes each ring holds, per direction; default capacity × 512 clamped to
    /// 128 KiB..64 MiB; at least 128 KiB (twice the largest datagram).
    pub ring_bytes: Option<u32>,
    /// 0: send only, 1: receive only, 2: both (default).
    #[napi(ts_type = "Direction")]
    pub direction: Option<u32>,
    /// SCHED_FIFO priority 1..99 for the workers; unset or 0: normal scheduling.
    pub priority: Option<u32>,
    /// Busy-wait window before each deadline, ns (0..100 ms); default: adaptive, learned from
    /// the measured wake-up lateness (20 µs..500 µs, starting at 50 µs).
    pub spin_ns: Option<u32>,
    /// Longest sleep of the sender in the last 5 ms before a deadline, ns (0..20 ms; default
    /// 150 µs; 0: sleep in one go). On a virtual machine a virtual CPU that sleeps longer
    /// than the host polls for it (KVM: 200 µs) is scheduled out and may wake milliseconds
    /// late; short naps keep the last wake-up fast, for a few thousand wake-ups a second
    /// while a deadline is near.
    pub nap_ns: Option<u32>,
    /// Lock memory into RAM at start so the packet path takes no page faults: true or 'rings'
    /// (mlock the rings), 'all' (mlockall(MCL_CURRENT | MCL_FUTURE): the whole process);
    /// default false.
    #[napi(ts_type = "boolean | 'rings' | 'all'")]
    pub lock_memory: Option<String>,
    /// Send a packet that is due now (no timestampNs, or a past one) from the calling thread
    /// when nothing is queued before it, instead of waking the sender thread: saves a thread
    /// wake-up (tens of µs on a VM) in request/response exchanges, at the cost of a system
    /// call on the JavaScript thread per such packet. Default false. Not with transmit
    /// timestamps.
    pub inline_send: Option<bool>,
    /// How long the receive worker keeps polling the socket after a datagram before it
    /// blocks, ns (0..100 ms; default 0): trades a core for the wake-up latency of the next
    /// datagram.
    pub rx_spin_ns: Option<u32>,
    /// Kernel or NIC timestamps (SO_TIMESTAMPING): 'none', 'software' (kernel receive and
    /// transmit stamps) or 'hardware' (needs CAP_NET_ADMIN and a NIC that stamps; initSocket()
    /// throws ERR_UDPCOM_HWTSTAMP_UNSUPPORTED otherwise). Default: 'software' for a
    /// receive-only instance (receive stamps cost nothing), 'none' for one that sends
    /// (transmit stamps cost CPU per packet).
    #[napi(ts_type = "'none' | 'software' | 'hardware'")]
    pub timestamping: Option<String>,
    /// What to use when hardware stamps cannot be had: 'software' or 'none'; unset: throw.
    #[napi(ts_type = "'software' | 'none'")]
    pub timestamping_fallback: Option<String>,
}

/// A UDP endpoint whose native threads send packets at exact CLOCK_MONOTONIC times and
/// receive packets into a ring that Promises read from.
#[napi(custom_finalize)]
pub struct UdpCom {
    instance: SharedInstance,
}

#[napi]
impl UdpCom {
    /// Checks the arguments; no socket is opened until initSocket().
    #[napi(
        constructor,
        ts_args_type = "localIp: string, localPort: number, remoteIp: string, remotePort: number, options?: UdpComOptions"
    )]
    pub fn new(
        env: Env,
        local_ip: Unknown,
        local_port: Unknown,
        remote_ip: Unknown,
        remote_port: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<Self> {
        let config = (|| {
            let local_ip = args::string(local_ip, "localIp")?;
            let local_port = args::number(local_port, "localPort")?;
            let remote_ip = args::string(remote_ip, "remoteIp")?;
            let remote_port = args::number(remote_port, "remotePort")?;
            let options = args::options(options)?;
            Config::new(&local_ip, local_port, &remote_ip, remote_port, &options)
        })()
        .or_throw(&env)?;
        Ok(UdpCom {
            instance: Instance::new(UdpEngine::new(config)),
        })
    }

    fn instance(&self) -> RefMut<'_, Instance> {
        // Methods run one at a time on the JavaScript thread and never call back into
        // JavaScript while they hold the instance, so it is never borrowed twice.
        self.instance.borrow_mut()
    }

    /// The bound port once initSocket() ran (useful with port 0).
    #[napi(getter)]
    pub fn local_port(&self, env: Env) -> napi::Result<u32> {
        self.instance().engine.local_port().map(u32::from).or_throw(&env)
    }

    /// Creates the socket, binds it to the local address and connects it to the remote one
    /// (unless remotePort is 0).
    #[napi]
    pub fn init_socket(&self, env: Env) -> napi::Result<()> {
        self.instance().engine.init_socket().or_throw(&env)
    }

    /// Starts the worker thread(s) for the direction, pinned and real-time as configured.
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        Instance::start(&self.instance, &env)?;
        let address = fast_path::register(self);
        let mut instance = self.instance();
        instance.fast_path_address = Some(address);
        instance.report_memory(&env, None);
        Ok(())
    }

    /// Copies `data` into the send ring to leave at `timestampNs` (CLOCK_MONOTONIC ns; omitted
    /// or 0n: as soon as possible). Returns false, queuing nothing, when the ring is full.
    #[napi(ts_args_type = "data: Uint8Array, timestampNs?: bigint")]
    pub fn send_data(&self, env: Env, data: Unknown, timestamp_ns: Option<Unknown>) -> napi::Result<bool> {
        let view = args::bytes(data, "data").or_throw(&env)?;
        let deadline_ns = args::timestamp(timestamp_ns, "timestampNs").or_throw(&env)?;
        self.instance()
            .engine
            .send(&view.arraybuffer, deadline_ns)
            .or_throw(&env)
    }

    /// Copies packets into the send ring in order, each to leave at its timestamp (omitted:
    /// all as soon as possible), and returns how many were queued: it stops at the first that
    /// does not fit. Every argument is checked before anything is queued.
    #[napi(ts_args_type = "packets: Uint8Array[], timestampsNs?: BigInt64Array | BigUint64Array | bigint[]")]
    pub fn send_batch(&self, env: Env, packets: Unknown, timestamps_ns: Option<Unknown>) -> napi::Result<u32> {
        let elements = args::packet_list(packets, "packets").or_throw(&env)?;
        let deadlines = args::timestamp_list(timestamps_ns, "timestampsNs", elements.len()).or_throw(&env)?;
        // Bytes last: the reads above may run getters that detach a buffer.
        let views = args::packet_views(&elements, "packets").or_throw(&env)?;
        let payloads: Vec<&[u8]> = views.iter().map(|v| &*v.arraybuffer).collect();
        self.queue_batch(env, &payloads, deadlines)
    }

    /// Queues checked payloads with their deadlines (also used by `fast_path`).
    fn queue_batch(&self, env: Env, payloads: &[&[u8]], deadlines: Vec<u64>) -> napi::Result<u32> {
        let batch: Vec<(&[u8], u64)> = payloads.iter().copied().zip(deadlines).collect();
        let queued = self.instance().engine.send_batch(&batch, None).or_throw(&env)?;
        Ok(queued as u32)
    }

    /// Resolves with the next received packet, or null once `timeoutNs` has passed (omitted:
    /// wait until a packet arrives; 0: only what is already queued).
    #[napi(
        ts_args_type = "timeoutNs?: bigint | number",
        ts_return_type = "Promise<ReceivedPacket | null>"
    )]
    pub fn receive_data<'env>(&self, env: &'env Env, timeout_ns: Option<Unknown>) -> napi::Result<Unknown<'env>> {
        let timeout_ns = args::timeout(timeout_ns, "timeoutNs");
        self.instance().receive(env, timeout_ns, Ok(None))
    }

    /// Resolves as soon as at least one packet is there, with up to `max` packets in arrival
    /// order, or with [] once `timeoutNs` has passed. JavaScript is woken once per batch.
    #[napi(
        ts_args_type = "max: number, timeoutNs?: bigint | number",
        ts_return_type = "Promise<ReceivedPacket[]>"
    )]
    pub fn receive_batch<'env>(
        &self,
        env: &'env Env,
        max: Unknown,
        timeout_ns: Option<Unknown>,
    ) -> napi::Result<Unknown<'env>> {
        let max = args::count(max, "max", MAX_BATCH as u64).map(Some);
        let timeout_ns = args::timeout(timeout_ns, "timeoutNs");
        self.instance().receive(env, timeout_ns, max)
    }

    /// Delivers every received packet to `callback`, in arrival order and in batches of up to
    /// `maxBatch` (default 1024), with no Promise per packet; `null` stops it. While a callback
    /// is set, receiveData/receiveBatch reject with ERR_UDPCOM_STATE. A callback that cannot
    /// keep up does not grow memory: the receive ring fills and further packets are dropped
    /// and counted (nRecvRingOverflow). An exception thrown by the callback is an uncaught
    /// exception, as in a 'message' listener.
    #[napi(ts_args_type = "callback: ((packets: ReceivedPacket[]) => void) | null, maxBatch?: number")]
    pub fn on_packets(&self, env: Env, callback: Unknown, max_batch: Option<Unknown>) -> napi::Result<()> {
        let callback = args::callback(callback, "callback").or_throw(&env)?;
        let max_batch = args::optional_count(max_batch, "maxBatch", MAX_BATCH as u64, 1024).or_throw(&env)?;
        let callback = callback.map(FunctionRef::from_unknown).transpose()?;
        self.instance().set_listener(&env, callback, max_batch).or_throw(&env)
    }

    /// Resolves once every packet queued so far has left (or failed).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn drain<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        self.instance().drain(env)
    }

    /// Timestamping of the socket: the interface, what it supports (ETHTOOL_GET_TS_INFO: modes,
    /// PHC index) and what is in use. Needs initSocket().
    #[napi]
    pub fn get_timestamping_info(&self, env: Env) -> napi::Result<TimestampingStatus> {
        self.instance()
            .engine
            .timestamping_info()
            .map(TimestampingStatus::from)
            .or_throw(&env)
    }

    /// Takes up to `max` (default all) transmit timestamps read so far, in the order packets
    /// left: `{ id, txTimestampNs }` where id is the packet's queue order. Kept in a ring of
    /// `capacity` entries; stamps nobody takes in time are dropped and counted
    /// (nTxTimestampsDropped). Empty without timestamping.
    #[napi]
    pub fn get_tx_timestamps(&self, env: Env, max: Option<Unknown>) -> napi::Result<Vec<TxTimestamp>> {
        let max = args::optional_count(max, "max", MAX_BATCH as u64, MAX_BATCH).or_throw(&env)?;
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        let mut stamps = Vec::new();
        instance
            .engine
            .take_tx_records(max, |record| stamps.push(TxTimestamp::from(record)));
        Ok(stamps)
    }

    /// Counters and latency statistics since the instance was created.
    #[napi]
    pub fn get_packet_stats(&self, env: Env) -> napi::Result<PacketStats> {
        self.instance().engine.stats().map(PacketStats::from).or_throw(&env)
    }

    /// Stops and joins the worker thread(s) (within 100 ms); queued packets are discarded and
    /// counted, pending receiveData/drain promises reject with ERR_UDPCOM_STOPPED. start()
    /// works again afterwards.
    #[napi]
    pub fn stop(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.stop(&env, "stop() was called");
        Ok(())
    }

    /// Stops if needed and closes the socket; every later call throws ERR_UDPCOM_STATE.
    #[napi]
    pub fn close_socket(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.stop(&env, "closeSocket() was called");
        instance.clear_listener();
        instance.engine.close().or_throw(&env)?;
        instance.report_memory(&env, None);
        Ok(())
    }

    /// Lets a started instance keep the process alive (the default).
    #[napi(js_name = "ref")]
    pub fn reference(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.set_referenced(&env, true)
    }

    /// Lets the process exit while this instance is started.
    #[napi]
    pub fn unref(&self, env: Env) -> napi::Result<()> {
        let mut instance = self.instance();
        instance.engine.check_open().or_throw(&env)?;
        instance.set_referenced(&env, false)
    }
}

impl ObjectFinalize for UdpCom {
    /// Garbage-collected: stop and join the workers, and settle what is still pending.
    fn finalize(self, env: Env) -> napi::Result<()> {
        if let Ok(mut instance) = self.instance.try_borrow_mut() {
            if let Some(address) = instance.fast_path_address.take() {
                fast_path::unregister(address);
            }
            instance.stop(&env, "the UdpCom instance was garbage-collected");
            instance.report_memory(&env, Some(0));
        }
        Ok(())
    }
}

/// Installs the hand-written entry points of the per-packet methods (see `fast_path`).
#[napi(module_exports)]
pub fn install_fast_paths(exports: Object, env: Env) -> napi::Result<()> {
    fast_path::install(&env, &exports)
}
