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
  /**
   * Analyse every received datagram's stream header natively ('udpcom': udpcom's header, streams
   * keyed by stream id and source; 'iperf2': iperf 2's, keyed by source): loss, reordering,
   * jitter, delay variation, one-way latency; read with getStreamStats().
   */
  analyze?: 'udpcom' | 'iperf2'
  /** false: count (and analyse, reflect) received datagrams without handing them to JavaScript, for rates JavaScript cannot take (nRecvNotDelivered). Default true. */
  deliver?: boolean
  /**
   * Send every received datagram back to its source at once, from the receive worker (direction
   * 2; not with timestamping). A udpcom header gets the reflector's receive and send times, so
   * that the sender's analysis splits the round trip into its two directions.
   */
  reflect?: boolean
  /**
   * Bind the socket to this network interface (SO_BINDTODEVICE): it sends and hears only
   * there, whatever the routes say. An unknown name throws ENODEV. Needs CAP_NET_RAW where the
   * kernel asks for it (Linux before 5.7; since, any process may bind a fresh socket).
   */
  interface?: string
  /** SO_REUSEADDR. */
  reuseAddress?: boolean
  /**
   * SO_REUSEPORT: several instances (of one user) on one port, e.g. several receivers of one
   * multicast group, each of which gets every datagram to the group.
   */
  reusePort?: boolean
  /** SO_BROADCAST: allows sending to a broadcast address (IPv4 only); without it the kernel refuses with EACCES. */
  broadcast?: boolean
  /** TTL (IPv4) or hop limit (IPv6) of unicast datagrams, 1..255; default the kernel's (64). */
  ttl?: number
  /**
   * DSCP, 0..63, in the upper six bits of the IPv4 TOS byte / IPv6 traffic class (the two ECN
   * bits are left alone); e.g. 46 (EF) for voice, 34 (AF41) for video. On IPv4 the kernel
   * also derives the socket priority from the TOS byte (IP_TOS does that; EF gives 4) unless
   * socketPriority is given, which is set after it.
   */
  dscp?: number
  /**
   * SO_PRIORITY: the priority of the socket's packets in the host's queueing (which mqprio or
   * taprio traffic class, which VLAN PCP through an egress-qos-map). 0..6 for anyone; 7 and up
   * need CAP_NET_ADMIN (EPERM otherwise).
   */
  socketPriority?: number
  /**
   * Receive buffer in bytes (SO_RCVBUF); default: 4 MiB where permitted. Past
   * net.core.rmem_max it is forced (SO_RCVBUFFORCE, CAP_NET_ADMIN) or initSocket() throws
   * EPERM saying so. getSocketInfo() shows what is in effect.
   */
  recvBufferSize?: number
  /** Send buffer in bytes (SO_SNDBUF); past net.core.wmem_max as recvBufferSize. */
  sendBufferSize?: number
  /** Outgoing multicast. */
  multicast?: MulticastOptions
  /**
   * Received packets also carry `localAddress` (their destination: the group, the broadcast
   * address or the unicast address they were sent to) and `interfaceIndex`/`interface` (where
   * they arrived): IP_PKTINFO / IPV6_RECVPKTINFO. Default false (it costs a little per packet).
   */
  packetInfo?: boolean
  /**
   * UDP segmentation offload on send (UDP_SEGMENT, Linux ≥ 4.18): packets that are due
   * together, of one size (the last of a run may be shorter) and for one destination, leave as
   * one message the kernel cuts into datagrams, up to 64 per message. Timing is unchanged: only
   * packets already due are grouped. Not used while transmit timestamps are on (the kernel would
   * stamp only the first datagram). If the kernel or the device refuses (EIO, EINVAL, or
   * EMSGSIZE: a segment larger than the route's MTU allows), those packets are sent again one
   * by one and the socket stops using GSO (nGsoFallbacks).
   * Default true where the kernel supports it; getSocketInfo().gso tells.
   */
  gso?: boolean
  /**
   * UDP receive offload (UDP_GRO, Linux ≥ 5.0): the kernel may hand a run of datagrams of one
   * flow to the socket as one buffer, which the receiver splits into ordinary packets (all
   * counted as datagrams). Packets split from one buffer share its kernel receive stamp.
   * Default true where the kernel supports it; getSocketInfo().gro tells.
   */
  gro?: boolean
  /** Aborting it closes the instance, like closeSocket() (as dgram.createSocket's signal). */
  signal?: AbortSignal
}

/** Outgoing multicast (the constructor's `multicast` option). */
export interface MulticastOptions {
  /**
   * The interface multicast leaves by: a name ('eth1'), or one of its addresses (IPv4
   * '10.0.0.2'; IPv6 '::%eth1' as node:dgram's setMulticastInterface, or a local address).
   * Default: the route's interface.
   */
  interface?: string
  /** TTL / hop limit of multicast datagrams, 0..255; default 1 (this link only). */
  ttl?: number
  /** Whether this host's own sockets hear the multicast it sends; default true. */
  loopback?: boolean
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
   * receive stamp converted from CLOCK_REALTIME when timestamping is on (or a capture turned
   * kernel receive stamps on), else the receiver thread's clock read.
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
  /**
   * With `packetInfo`: the address the datagram was sent to (a group, a broadcast address, or
   * a unicast address of this host). On an IPv6 socket an IPv4 datagram's is v4-mapped.
   */
  localAddress?: string
  /** With `packetInfo`: the index of the interface the datagram arrived on. */
  interfaceIndex?: number
  /** With `packetInfo`: the name of that interface (absent if it has none any more). */
  interface?: string
}

/**
 * Received packets in flat form (`onPackets(callback, { flat: true })`): one Buffer of payloads
 * back to back and typed arrays with one element per packet (four words per packet for
 * addresses), so that a batch costs a few allocations however many packets it holds, where the
 * object form costs an object and a Buffer view per packet. For rates of hundreds of thousands
 * to millions of packets per second. Every array is the batch's own: it may be kept.
 * The flat form carries no packetInfo fields (localAddress, interface).
 */
export interface PacketBatch {
  /** Packets in the batch. */
  count: number
  /** The payloads, in arrival order, back to back. */
  data: Buffer
  /** Where packet i starts in `data`. */
  offsets: Uint32Array
  /** Packet i's payload length in bytes. */
  lengths: Uint32Array
  /** Arrival times, CLOCK_MONOTONIC ns, as ReceivedPacket.timestampNs. */
  timestampsNs: BigUint64Array
  /** The NIC's raw hardware stamps; 0n: none. */
  hwTimestampsNs: BigUint64Array
  /** Where timestampsNs[i] comes from: 0 'user', 1 'kernel', 2 'hardware'. */
  timestampSources: Uint8Array
  /** The sender's address family: 4 or 6. */
  families: Uint8Array
  /** The sender's port. */
  ports: Uint16Array
  /**
   * The sender's address, four 32-bit words per packet (at 4 × i): IPv4 in word 0 as a number
   * (host order, 127.0.0.1 is 0x7f000001); IPv6 as four big-endian words of its 16 bytes.
   */
  addresses: Uint32Array
  /** IPv6 scope id per packet (0: none). */
  scopeIds: Uint32Array
  /** Packet i's payload: a view of `data`, no copy. */
  payload(i: number): Buffer
  /** Packet i's sender address as text, as ReceivedPacket.address. */
  address(i: number): string
}

/** Options of `onPackets`. */
export interface OnPacketsOptions {
  /** Most packets per callback (default 1024). */
  maxBatch?: number
  /** Deliver PacketBatch objects instead of arrays of ReceivedPacket (default false). */
  flat?: boolean
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
  /**
   * GSO sends the kernel or device refused (EIO: no checksum offload, on kernels before 6.12;
   * EMSGSIZE, or EINVAL before 6.x: a segment larger than the route's MTU allows): their packets
   * were sent again one by one, and the socket stopped using GSO (getSocketInfo().gso false).
   */
  nGsoFallbacks: number
  /** Received datagrams analysed or reflected and not handed to JavaScript (`deliver: false`). */
  nRecvNotDelivered: number
  /** Replies the native reflector sent (`reflect`). */
  nReflected: number
  /** Replies the reflector could not send (lastError says why). */
  nReflectErrors: number
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

/** Options of `startStream`: exactly one of `ratePps`, `periodNs`, `bitsPerSecond`. */
export interface StreamOptions {
  /** Packets per second (a tick of `burst` packets every `burst / ratePps` s). */
  ratePps?: number
  /** Nanoseconds from one tick to the next. */
  periodNs?: number | bigint
  /** Payload bits per second (a tick every `burst × size × 8 / bitsPerSecond` s). */
  bitsPerSecond?: number
  /** When tick 0 is due, CLOCK_MONOTONIC ns (default: 1 ms from now). */
  startNs?: bigint
  /** Packets in all; or `durationNs`; neither: until stop(). */
  count?: number
  /** The ticks that start within this many ns of the first. */
  durationNs?: number | bigint
  /** Packets per tick, back to back (default 1). */
  burst?: number
  /** Payload bytes per packet (default: `payload`'s length, else 64). */
  size?: number
  /** The bytes each packet is made of, cut or padded with zeros to `size`; the header is written over its start. */
  payload?: Uint8Array
  /** 'udpcom' (default): udpcom's header (stream id, sequence, target and departure time); 'iperf2': iperf 2's UDP header, so that `iperf -s -u` measures it; 'none'. */
  header?: 'udpcom' | 'iperf2' | 'none'
  /** The udpcom header's stream id (default: 1, 2, ... per instance). */
  streamId?: number
  /** Where the packets go, on an unconnected instance (as sendTo). */
  destination?: Destination
}

/** Where a stream is in its life: sending, or how it ended. */
export type StreamState = 'running' | 'completed' | 'stopped' | 'instanceStopped'

/** A stream's send statistics; lateness is departure − target, as the send latency of PacketStats. */
export interface StreamSendStats {
  /** The stream's id (its udpcom header's stream id). */
  id: number
  /** 'running', or how it ended: 'completed' (its count or duration), 'stopped' (stop()), 'instanceStopped' (stop(), closeSocket() or collection of the instance). */
  state: StreamState
  /** Packets the kernel accepted. */
  sent: number
  /** Their payload bytes. */
  bytes: number
  /** Packets whose send failed (see PacketStats.lastError). */
  errors: number
  /** Packets that left more than the spin window after their time. */
  late: number
  /** When tick 0 was due, CLOCK_MONOTONIC ns. */
  startNs: bigint
  /** The schedule's period, ns (fractional for rates such as 3 pps). */
  periodNs: number
  /** When the first and the last packet left, CLOCK_MONOTONIC ns (absent before the first). */
  firstDepartureNs?: bigint
  lastDepartureNs?: bigint
  /** Lateness, exact. */
  minLatenessNs: number
  meanLatenessNs: number
  maxLatenessNs: number
  /** Lateness percentiles (HDR histogram, within 1%). */
  p50LatenessNs: number
  p90LatenessNs: number
  p99LatenessNs: number
  p999LatenessNs: number
  /** Lateness histogram: doubling buckets from 16 ns up to the maximum. */
  latenessHistogram: HistogramBucket[]
  /** Round trips of its packets through a reflector, when this instance analyses the replies (`analyze: 'udpcom'`). */
  roundTrip?: RoundTripStats
}

/** Round trips through a native reflector, from the four times of the udpcom header. */
export interface RoundTripStats {
  /** Replies with all four times. */
  count: number
  /** Round-trip time without the reflector's hold time: arrival − departure − (reflector send − reflector receive). */
  rttP50Ns: number
  rttP99Ns: number
  rttMaxNs: number
  /** Reflector receive − departure (one way out; meaningful when the clocks are one), median. */
  forwardP50Ns: number
  /** Arrival − reflector send (one way back), median. */
  backwardP50Ns: number
}

/**
 * One received stream's analysis (analyze option; README "Streams" defines each metric as
 * RFC 3550, 4737 and 5481 do). One per stream seen, in order of first arrival.
 */
export interface StreamStats {
  /** The udpcom header's stream id; null for iperf 2 streams (keyed by source). */
  streamId: number | null
  /** The stream's source. */
  address: string
  port: number
  /** Datagrams of the stream that arrived, duplicates included. */
  received: number
  /** Sequence numbers expected (first to highest seen) and not received. */
  lost: number
  /** Runs of consecutive lost sequence numbers. */
  lossRuns: number
  /** Datagrams whose sequence number had arrived before. */
  duplicates: number
  /** Datagrams that arrived with a sequence number below the next expected (RFC 4737). */
  reordered: number
  /** The largest reordering extent (RFC 4737 §4.2). */
  maxReorderExtent: number
  /** Interarrival jitter, RFC 3550 A.8, ns. */
  jitterNs: number
  /** Inter-packet delay variation of consecutive packets, RFC 5481 §4.1 (signed), ns. */
  ipdvP50Ns: number
  ipdvP99Ns: number
  /** Packet delay variation, RFC 5481 §4.2: 99th percentile of delay − minimum delay, ns. */
  pdvP99Ns: number
  /** One-way latency: arrival − departure in the header (clocks must agree), ns. */
  oneWayLatencyP50Ns: number
  oneWayLatencyP99Ns: number
  oneWayLatencyP999Ns: number
  oneWayLatencyMaxNs: number
  /** Arrival − the header's target time ('udpcom'), ns. */
  latenessP50Ns: number
  latenessP99Ns: number
  latenessMaxNs: number
  /** First and last arrival, CLOCK_MONOTONIC ns. */
  firstArrivalNs: bigint
  lastArrivalNs: bigint
  /** (received − 1) / (last − first arrival). */
  ratePps: number
}

/** Options of `replay`. */
export interface ReplayOptions {
  /** 1 (default): the recorded timing; 2: twice as fast; 0: as fast as possible. */
  speed?: number
  /** When the first datagram leaves, CLOCK_MONOTONIC ns (default: 10 ms from now). */
  startNs?: bigint
  /** Passes through the file (default 1); each pass starts one (mean) gap after the last datagram of the one before. */
  loop?: number
  /** Only datagrams to this destination port and/or from this source address. */
  filter?: { port?: number; address?: string }
  /** 'connected' (default): to the connected peer; 'original': each to its captured destination (an unconnected instance); or one address for all (an unconnected instance). */
  destination?: 'connected' | 'original' | Destination
}

/** Datagrams of a file a replay did not send, by reason; `total` is their sum. */
export interface ReplaySkipped {
  total: number
  /** Frames that are not IPv4 or IPv6. */
  notIp: number
  /** IP packets that are not UDP. */
  notUdp: number
  /** IP fragments (a fragmented datagram cannot be replayed as one). */
  ipFragment: number
  /** Frames cut short by the capture's snaplen. */
  truncated: number
  /** Headers that do not add up (lengths, versions). */
  badHeader: number
  /** Frames of a link type the reader does not decode. */
  unsupportedLinkType: number
  /** Times a pcap or pcapng file cannot express in ns since 1970. */
  timestampOutOfRange: number
  /** pcapng blocks that hold packets the reader does not take (Simple Packet Blocks of several interfaces, ...). */
  unsupportedBlock: number
  /** UDP datagrams the filter left out. */
  filtered: number
  /** UDP datagrams of the other address family than the socket's (destination 'original'). */
  otherFamily: number
}

/** A replay's statistics; lateness is departure − due time, as for streams. */
export interface ReplayStats {
  /** The replay's id on its instance. */
  id: number
  /** 'running', or how it ended: 'completed', 'stopped' (stop()), 'instanceStopped'. */
  state: StreamState
  /** Datagrams the kernel accepted. */
  sent: number
  /** Their payload bytes. */
  bytes: number
  /** Datagrams whose send failed (see PacketStats.lastError). */
  errors: number
  /** Datagrams that left more than the spin window after their time. */
  late: number
  /** Datagrams read from the file and queued for sending, all passes. */
  read: number
  /** Passes read to the end. */
  passes: number
  /** What the file holds that was not sent, by reason. */
  skipped: ReplaySkipped
  /** Lateness, exact. */
  minLatenessNs: number
  meanLatenessNs: number
  maxLatenessNs: number
  /** Lateness percentiles (HDR histogram, within 1%). */
  p50LatenessNs: number
  p90LatenessNs: number
  p99LatenessNs: number
  p999LatenessNs: number
  /** Lateness histogram: doubling buckets from 16 ns up to the maximum. */
  latenessHistogram: HistogramBucket[]
  /** What ended the file early: ERR_UDPCOM_PCAP (a corrupt or truncated file, with the byte offset), or the OS error of reading it. */
  error?: WorkerError
}

/** Options of `capture`. */
export interface CaptureOptions {
  /** 'pcapng' (default, or for a path not ending in .pcap) keeps each datagram's direction and where its time came from; 'pcap' (nanosecond pcap). */
  format?: 'pcap' | 'pcapng'
  /** Longest frame (IP and UDP headers included) kept whole, bytes (default 65535); longer ones are cut, their length kept. */
  snaplen?: number
  /** Also the datagrams this instance sends (default false). */
  sent?: boolean
  /** 'raw' (default): frames start with the IP header; 'ethernet': behind an Ethernet header with the locally administered MAC addresses 02:00:00:00:00:01 (source) and :02 (destination). */
  link?: 'raw' | 'ethernet'
}

/** A capture's counts. */
export interface CaptureStats {
  /** Datagrams written. */
  written: number
  /** Datagrams the capture could not keep (the disk, or the stream it writes to, did not keep up); never taken from delivery. */
  dropped: number
  /** The capture is closed: its file is complete. */
  closed: boolean
  /** What stopped the writer (ENOSPC, ...), if anything did. */
  error?: WorkerError
}

/** What `Capture.close()` resolves with. */
export interface CaptureResult {
  written: number
  dropped: number
  /** The whole file, for a capture into memory (`capture()` without a target). */
  buffer?: Buffer
}

/** One multicast membership of the socket. */
export interface MulticastMembership {
  /** The group address. */
  group: string
  /** The only sender heard, for a source-specific membership. */
  source?: string
  /** The interface it was joined on (absent: the route's, as the kernel chose). */
  interface?: string
  /** Its index; 0: the route's. */
  interfaceIndex: number
}

/** Outgoing multicast as in effect. */
export interface MulticastStatus {
  /** The interface multicast leaves by (absent: the route's). */
  interface?: string
  /** Its index; 0: the route's. */
  interfaceIndex: number
  /** TTL / hop limit of multicast datagrams. */
  ttl: number
  /** Whether this host's own sockets hear them. */
  loopback: boolean
}

/** What is in effect on the socket, read back from the kernel (getSocketInfo()). */
export interface SocketInfo {
  /** The bound address (a group address when bound to one). */
  localAddress: string
  /** The bound port. */
  localPort: number
  /** The socket's address family. */
  family: 'IPv4' | 'IPv6'
  /** The connected peer's address (absent when unconnected). */
  remoteAddress?: string
  /** The connected peer's port. */
  remotePort?: number
  /** The interface the socket is bound to (SO_BINDTODEVICE; absent: any). */
  interface?: string
  /** SO_RCVBUF as the kernel reports it: twice the size granted (it counts its bookkeeping), as dgram's getRecvBufferSize(). */
  recvBufferSize: number
  /** SO_SNDBUF, reported the same way. */
  sendBufferSize: number
  /** Unicast TTL / hop limit. */
  ttl: number
  /** DSCP of sent datagrams. */
  dscp: number
  /** SO_PRIORITY. */
  socketPriority: number
  /** SO_BROADCAST. */
  broadcast: boolean
  /** SO_REUSEADDR. */
  reuseAddress: boolean
  /** SO_REUSEPORT. */
  reusePort: boolean
  /** Outgoing multicast. */
  multicast: MulticastStatus
  /** Whether received packets carry localAddress and interface. */
  packetInfo: boolean
  /** Groups joined, in the order they were joined. */
  memberships: MulticastMembership[]
  /**
   * Whether runs of equal-sized packets leave as GSO messages now: false when the `gso` option
   * is off, the kernel lacks UDP_SEGMENT, or a refused GSO send made the socket fall back.
   */
  gso: boolean
  /** Most datagrams per GSO message. */
  gsoMaxSegments: number
  /** Whether UDP_GRO is on (read back from the kernel). */
  gro: boolean
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
