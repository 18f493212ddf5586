// udpcom: deterministic UDP for Node.js on Linux. The public entry point (CommonJS); index.mts
// is the same for ES modules.

export { UdpCom } from './udpcom'
export type { Capture, CaptureTarget } from './capture'
export { probeWakeups } from './probe'
export type { Replay } from './replay'
export type { Stream } from './stream'
export type {
  AbortOptions,
  BatchIterationOptions,
  CaptureOptions,
  CaptureResult,
  CaptureStats,
  CpuLoss,
  Destination,
  Direction,
  HistogramBucket,
  MulticastMembership,
  MulticastOptions,
  MulticastStatus,
  PacketStats,
  OnPacketsOptions,
  PacketBatch,
  ReceivedPacket,
  ReplayOptions,
  ReplaySkipped,
  ReplayStats,
  RoundTripStats,
  SocketInfo,
  StreamOptions,
  StreamStats,
  StreamSendStats,
  StreamState,
  TimestampingCapabilities,
  TimestampingMode,
  TimestampingStatus,
  TxTimestamp,
  UdpComOptions,
  WakeLateness,
  WakeProbe,
  WakeProbeOptions,
  WorkerError,
} from './types'
