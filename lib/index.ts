// udpcom: deterministic UDP for Node.js on Linux. The public entry point (CommonJS); index.mts
// is the same for ES modules.

export { UdpCom } from './udpcom'
export type {
  AbortOptions,
  BatchIterationOptions,
  Destination,
  Direction,
  HistogramBucket,
  MulticastMembership,
  MulticastOptions,
  MulticastStatus,
  PacketStats,
  ReceivedPacket,
  SocketInfo,
  TimestampingCapabilities,
  TimestampingMode,
  TimestampingStatus,
  TxTimestamp,
  UdpComOptions,
  WorkerError,
} from './types'
