// The public types of udpcom: the one place they are declared. The compiled declarations
// (dist/*.d.ts) are generated from this file and the class in udpcom.ts; `udpcom.ts` also
// checks at compile time that the objects the native binding returns have exactly these fields.

/** 0: send only, 1: receive only, 2: both. */
export type Direction = 0 | 1 | 2

/** Which timestamps the kernel (or the NIC) attaches to packets. */
export type TimestampingMode = 'none' | 'software' | 'hardware'

/** Options of the UdpCom constructor. */
export interface UdpComOptions {
  /** CPU the worker thread(s) are pinned to; unset: not pinned. */
  cpu?: number
  /** CPU of the receive worker when direction is 2; default: cpu. */
  rxCpu?: number
  /** Ring capacity in packets, per direction; default 4096; 1..2**24. */
  capacity?: number
  /**
   * Payload bytes each ring holds, per direction; default capacity × 512 clamped to
   * 128 KiB..64 MiB; at least 128 KiB (twice the largest datagram).
   */
  ringBytes?: number
  /** 0: send only, 1: receive only, 2: both (default). */
  direction?: Direction
  /** SCHED_FIFO priority 1..99 for the workers; unset or 0: normal scheduling. */
  priority?: number
  /**
   * Busy-wait window before each deadline, ns (0..100 ms); default: adaptive, learned from the
   * measured wake-up lateness (20 µs..500 µs, starting at 50 µs).
   */
  spinNs?: number
  /**
   * Longest sleep of the sender in the last 5 ms before a deadline, ns (0..20 ms; default
   * 150 µs; 0: sleep in one go). On a virtual machine a virtual CPU that sleeps longer than the
   * host polls for it (KVM: 200 µs) is scheduled out and may wake milliseconds late; short naps
   * keep the last wake-up fast, for a few thousand wake-ups a second while a deadline is near.
   */
  napNs?: number
  /**
   * Lock memory into RAM at start so the packet path takes no page faults: true or 'rings' (the
   * rings and receive buffers), 'all' (also the worker stacks and every file-backed mapping:
   * the code and data of Node, its libraries and the addon; never V8's heap, which V8 could then
   * not give back to the kernel); default false.
   */
  lockMemory?: boolean | 'rings' | 'all'
  /**
   * Send a packet that is due now (no timestampNs, or a past one) from the calling thread when
   * nothing is queued before it, instead of waking the sender thread: saves a thread wake-up
   * (tens of µs on a VM) in request/response exchanges, at the cost of a system call on the
   * JavaScript thread per such packet. Default false. Not with transmit timestamps.
   */
  inlineSend?: boolean
  /**
   * How long the receive worker keeps polling the socket after a datagram before it blocks, ns
   * (0..100 ms; default 0): trades a core for the wake-up latency of the next datagram.
   */
  rxSpinNs?: number
  /**
   * Kernel or NIC timestamps (SO_TIMESTAMPING): 'none', 'software' (kernel receive and transmit
   * stamps) or 'hardware' (needs CAP_NET_ADMIN and a NIC that stamps; initSocket() throws
   * ERR_UDPCOM_HWTSTAMP_UNSUPPORTED otherwise). Default: 'software' for a receive-only instance
   * (receive stamps cost nothing), 'none' for one that sends (transmit stamps cost CPU per
   * packet).
   */
  timestamping?: TimestampingMode
  /** What to use when hardware stamps cannot be had: 'software' or 'none'; unset: throw. */
  timestampingFallback?: 'software' | 'none'
  /** Aborting it closes the instance, like closeSocket() (as dgram.createSocket's signal). */
  signal?: AbortSignal
}

/** A datagram handed to JavaScript. */
export interface ReceivedPacket {
  /**
   * The payload, copied out of the receive ring. The packets taken out together are views of
   * one ArrayBuffer (like Node's pooled Buffers), kept alive while any of them is.
   */
  data: Buffer
  /**
   * Arrival time on CLOCK_MONOTONIC (the clock of `process.hrtime.bigint()`): the kernel's
   * receive stamp converted from CLOCK_REALTIME when timestamping is on, else the receiver
   * thread's clock read.
   */
  timestampNs: bigint
  /**
   * Where timestampNs comes from: 'kernel' (software stamp), 'hardware' (a NIC stamp is in
   * hwTimestampNs; timestampNs is still the kernel's) or 'user' (the receiver thread).
   */
  timestampSource: 'hardware' | 'kernel' | 'user'
  /** The NIC's raw hardware receive stamp (its own clock), with hardware timestamping. */
  hwTimestampNs?: bigint
  /** The sender's address, as node:dgram's rinfo.address (IPv6 with `%scope` where it has one). */
  address: string
  /** The sender's port. */
  port: number
  /** The sender's address family. */
  family: 'IPv4' | 'IPv6'
}

/** Where a batch goes on an unconnected instance. */
export interface Destination {
  /** An IPv4 or IPv6 address of the socket's family (IPv6 may carry `%scope`). */
  address: string
  /** 1..65535. */
  port: number
}

/** Options of the calls that wait. */
export interface AbortOptions {
  /** Aborting it rejects the call with an AbortError; no packet is lost by it. */
  signal?: AbortSignal
}

/** Options of `batches()`. */
export interface BatchIterationOptions extends AbortOptions {
  /** Most packets per batch (default 1024). */
  max?: number
}

/** One bucket of a latency histogram. */
export interface HistogramBucket {
  /** Upper bound of the bucket in ns (bounds double from 16 ns). */
  upToNs: number
  /** Packets whose latency is above the previous bound and at most `upToNs`. */
  count: number
}

/** The last error a worker thread saw, e.g. `ECONNREFUSED` when the peer is not listening. */
export interface WorkerError {
  /** Node-style code: the errno name for OS errors. */
  code: string
  /** Human-readable message. */
  message: string
  /** The failing system call, for OS errors. */
  syscall?: string
  /** Negative errno, as in Node's own errors. */
  errno?: number
}

/**
 * Statistics of one instance since it was created. Counters only grow; every packet is in
 * exactly one of sent, refused (nSendRingFull), discarded or failed (nSendErrors), and every
 * datagram read off the socket is delivered, overflowed or discarded.
 */
export interface PacketStats {
  /** Packets the kernel accepted for sending. */
  nPacketsSent: number
  /** Payload bytes the kernel accepted for sending. */
  nBytesSent: number
  /** Datagrams the receiver thread read off the socket. */
  nPacketsReceived: number
  /** Payload bytes the receiver thread read off the socket. */
  nBytesReceived: number
  /** Packets refused because the send ring was full (sendData returned false, or sendBatch queued fewer). */
  nSendRingFull: number
  /** Received datagrams dropped because the receive ring was full. */
  nRecvRingOverflow: number
  /** Queued packets thrown away by stop(). */
  nPacketsDiscarded: number
  /** Packets whose send system call failed (see lastError). */
  nSendErrors: number
  /** Packets that left more than the spin window after their time. */
  nLatePackets: number
  /** Smallest send latency (departure − target), ns. */
  minLatencyNs: number
  /** Largest send latency, ns. */
  maxLatencyNs: number
  /** Mean send latency, ns. */
  meanLatencyNs: number
  /** Median send latency, ns (HDR histogram, within 1%). */
  p50LatencyNs: number
  /** 90th percentile send latency, ns. */
  p90LatencyNs: number
  /** 99th percentile send latency, ns. */
  p99LatencyNs: number
  /** 99.9th percentile send latency, ns. */
  p999LatencyNs: number
  /** Send latency histogram: doubling buckets from 16 ns up to the maximum. */
  latencyHistogram: HistogramBucket[]
  /** Datagrams the kernel dropped on the socket because its receive buffer was full (SO_RXQ_OVFL). */
  nKernelDrops: number
  /** Packets ever queued by sendData/sendTo/sendBatch. */
  nPacketsQueued: number
  /** Packets in the send ring now. */
  sendQueueLength: number
  /** Received packets handed to JavaScript (resolved, yielded or passed to onPackets). */
  nPacketsDelivered: number
  /** Received packets waiting now: in the receive ring, or taken out of it for a reader still to come. */
  recvQueueLength: number
  /** Received packets thrown away by stop() before JavaScript read them. */
  nRecvDiscarded: number
  /**
   * Times a SCHED_FIFO worker that had no time to sleep for 9 ms of 10 continued under normal
   * scheduling for a while, to stay clear of the kernel's RT throttling (it returns to SCHED_FIFO
   * before its next long sleep). Non-zero means packets came faster than the spin window: the
   * sender spun from one to the next.
   */
  nRtDemotions: number
  /** Sender spin loops that lost the CPU for more than 200 µs (preemption, throttling, VM). */
  nStalls: number
  /** Spin window the sender uses now, ns (spinNs, or the adaptive window). */
  spinWindowNs: number
  /** Transmit timestamps read from the socket's error queue and matched to their packets (one per sent packet when timestamping is on). */
  nTxTimestamps: number
  /** Transmit stamps dropped because getTxTimestamps() did not read them in time. */
  nTxTimestampsDropped: number
  /** Wire latency (kernel or NIC transmit stamp − target), median, ns. */
  p50WireLatencyNs: number
  /** Wire latency, 99th percentile, ns. */
  p99WireLatencyNs: number
  /** Wire latency, 99.9th percentile, ns. */
  p999WireLatencyNs: number
  /** Wire latency, maximum, ns. */
  maxWireLatencyNs: number
  /** Receive-path latency (kernel arrival stamp → taken out of the receive ring for JavaScript), median, ns. */
  p50DeliveryLatencyNs: number
  /** Receive-path latency, 99th percentile, ns. */
  p99DeliveryLatencyNs: number
  /** Receive-path latency, maximum, ns. */
  maxDeliveryLatencyNs: number
  /**
   * Received datagrams and error-queue entries whose control data (timestamps, drop counts)
   * did not fit the receive buffer (MSG_CTRUNC); the datagrams are still delivered, possibly
   * without their kernel stamp.
   */
  nControlTruncated: number
  /** The last error a worker thread saw, if any. */
  lastError?: WorkerError
}

/** What an interface can timestamp (ETHTOOL_GET_TS_INFO). */
export interface TimestampingCapabilities {
  /** SOF_TIMESTAMPING_* modes, e.g. 'rx_software', 'tx_hardware', 'raw_hardware'. */
  modes: string[]
  /** Index of the PTP hardware clock (/dev/ptpN), -1 for none. */
  phcIndex: number
  /** Hardware transmit stamping types, e.g. 'off', 'on'. */
  txTypes: string[]
  /** Hardware receive filters, e.g. 'none', 'all', 'ptp_v2_event'. */
  rxFilters: string[]
  /** True when the interface can stamp in hardware in both directions. */
  hardware: boolean
}

/** Timestamping of this instance's socket: asked for, possible, in use. */
export interface TimestampingStatus {
  /** The interface carrying the socket's traffic (absent for a wildcard address). */
  interface?: string
  /** The timestamping option. */
  requested: TimestampingMode
  /** What the socket uses. */
  inUse: TimestampingMode
  /** Why inUse differs from requested (timestampingFallback took over). */
  fallbackReason?: string
  /** What the interface supports (absent if it could not be asked). */
  supported?: TimestampingCapabilities
}

/** When one sent packet left, from its transmit timestamp. */
export interface TxTimestamp {
  /** The packet's queue order: 0 for the first packet queued on this instance, counting every packet queued. */
  id: number
  /** When it left per the kernel's software transmit stamp, on CLOCK_MONOTONIC. */
  txTimestampNs: bigint
  /** The NIC's raw hardware transmit stamp, with hardware timestamping. */
  hwTxTimestampNs?: bigint
}

/** Options of `probeWakeups()`. */
export interface WakeProbeOptions {
  /** Length of the timed wake-up phase, ns (0: skip it; at most 60 s); default 1 s. */
  durationNs?: number
  /** Time between the deadlines of the timed phase, ns (10 µs..1 s); default 1 ms. */
  periodNs?: number
  /**
   * Longest nap in the last 5 ms before a deadline, ns (0..20 ms; 0: one sleep per deadline);
   * default 150 µs, the sender's `napNs` default, so the probe wakes up as udpcom's sender does.
   */
  napNs?: number
  /**
   * Length of the CPU-loss phase, ns (0: skip it; at most 2 s, 900 ms with a priority, below
   * the kernel's RT throttling); default 500 ms.
   */
  spinNs?: number
  /** CPU the probe thread is pinned to; unset: not pinned. */
  cpu?: number
  /** SCHED_FIFO priority 1..99 of the probe thread; unset or 0: normal scheduling. */
  priority?: number
}

/** How late timed wake-ups were: wake-up time − deadline, CLOCK_MONOTONIC ns. */
export interface WakeLateness {
  /** Deadlines waited for. */
  count: number
  /** Sleep system calls taken, naps included. */
  sleeps: number
  /** Median lateness, ns. */
  p50Ns: number
  /** 99th percentile lateness, ns. */
  p99Ns: number
  /** 99.9th percentile lateness, ns. */
  p999Ns: number
  /** Largest lateness, ns. */
  maxNs: number
  /** Wake-ups more than 1 ms late. */
  over1ms: number
}

/**
 * How often and for how long a thread that never blocked lost the CPU (interrupts, threads of
 * higher priority, a virtual machine's host): gaps of more than 5 µs between two clock reads.
 */
export interface CpuLoss {
  /** How long the thread spun, ns. */
  spinNs: number
  /** Gaps seen. */
  gaps: number
  /** Median gap length, ns (0 without gaps). */
  gapP50Ns: number
  /** 99th percentile gap length, ns. */
  gapP99Ns: number
  /** Longest gap, ns. */
  gapMaxNs: number
  /** Sum of the gaps: CPU time lost, ns. */
  lostNs: number
  /** Median time from the start of one gap to the start of the next, ns (0 with fewer than two gaps). */
  intervalP50Ns: number
}

/** What `probeWakeups()` measured; a phase whose length was 0 is absent. */
export interface WakeProbe {
  /** The timed wake-up phase. */
  wakeups?: WakeLateness
  /** The CPU-loss phase. */
  cpuLoss?: CpuLoss
}
