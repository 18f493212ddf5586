// udpcom: deterministic UDP for Node.js on Linux. The public entry point (CommonJS); index.mts
// is the same for ES modules.

export { UdpCom } from './udpcom'
export type { Stream } from './stream'
export type {
  AbortOptions,
  BatchIterationOptions,
  Destination,
  Direction,
  HistogramBucket,
  PacketStats,
  ReceivedPacket,
  RoundTripStats,
  StreamOptions,
  StreamStats,
  StreamSendStats,
  StreamState,
  TimestampingCapabilities,
  TimestampingMode,
  TimestampingStatus,
  TxTimestamp,
  UdpComOptions,
  WorkerError,
} from './types'
