// udpcom: deterministic UDP for Node.js on Linux. The public entry point (CommonJS); index.mts
// is the same for ES modules.

export { UdpCom } from './udpcom'
export { probeWakeups } from './probe'
export type {
  AbortOptions,
  BatchIterationOptions,
  CpuLoss,
  Destination,
  Direction,
  HistogramBucket,
  PacketStats,
  ReceivedPacket,
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
