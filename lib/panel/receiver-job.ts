// The panel's receiver job: a receive-only UdpCom on an address and port from the form,
// measured by the same ReceiveMeter as `udpcom recv`, its totals straight from getPacketStats().

import { isIP } from 'node:net'

import { RECEIVE_SERIES, ReceiveMeter } from '../report/receive-meter'
import type { PacketStats } from '../types'
import { UdpCom } from '../udpcom'
import { FormError, type JobKind, type RunningJob } from './jobs'
import type { FieldSpec, PanelLimits } from './protocol'

export interface ReceiverParams extends Record<string, string | number> {
  address: string
  port: number
  durationS: number
  timestamping: string
}

/** A running receiver. `udp` is its instance (tests compare the page with its statistics). */
export class ReceiverJob implements RunningJob {
  readonly title: string
  readonly udp: UdpCom
  /** The bound port (kept: the instance is closed once stopped). */
  readonly port: number
  readonly ended: Promise<string | null>
  readonly #meter: ReceiveMeter
  #stopped = false
  #finalStats: PacketStats | undefined
  #endTimer: NodeJS.Timeout | undefined
  #end: (error: string | null) => void = () => {}

  constructor(params: ReceiverParams) {
    this.udp = new UdpCom(params.address, params.port, params.address, 0, { direction: 1, timestamping: params.timestamping as 'software' | 'none' })
    try {
      this.udp.initSocket()
      this.udp.start()
    } catch (error) {
      this.udp.closeSocket()
      throw error
    }
    this.port = this.udp.localPort
    const where = params.address.includes(':') ? `[${params.address}]:${this.port}` : `${params.address}:${this.port}`
    this.title = `receiver on ${where}`
    this.#meter = new ReceiveMeter(this.udp)
    this.ended = new Promise((resolve) => {
      this.#end = resolve
    })
    if (params.durationS > 0) {
      this.#endTimer = setTimeout(() => {
        this.stop()
        this.#end(null)
      }, params.durationS * 1000)
    }
  }

  sample(): { values: (number | null)[]; totals: Record<string, number | string | null> } {
    const sample = this.#stopped ? undefined : this.#meter.sample()
    const stats = this.#finalStats ?? this.udp.getPacketStats()
    const values = sample ? RECEIVE_SERIES.map((spec) => sample[spec.key as keyof typeof sample] as number | null) : RECEIVE_SERIES.map(() => null)
    return {
      values,
      totals: {
        port: this.port,
        received: stats.nPacketsReceived,
        delivered: stats.nPacketsDelivered,
        bytes: stats.nBytesReceived,
        dropped: ReceiveMeter.dropped(stats),
        droppedByKernel: stats.nKernelDrops,
        droppedByRing: stats.nRecvRingOverflow,
        ratePps: sample?.ratePps ?? 0,
        p99DeliveryNs: stats.nPacketsDelivered > 0 ? stats.p99DeliveryLatencyNs : null,
      },
    }
  }

  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#endTimer)
    this.udp.stop()
    this.#finalStats = this.udp.getPacketStats()
    this.udp.closeSocket()
    this.#end(null)
  }
}

/** Addresses a receiver may listen on: IP literals only. */
function checkAddress(address: string): string {
  const bare = address.split('%')[0]!
  if (isIP(bare) === 0) throw new FormError(`address: '${address}' is not an IP address (127.0.0.1, 0.0.0.0, ::1, ::)`)
  return address
}

export const receiverJobKind: JobKind<ReceiverParams> = {
  kind: 'receiver',
  title: 'Receiver',
  description: 'Listens on an address and port and counts what arrives: rate, drops, inter-arrival times, delivery latency.',
  series: RECEIVE_SERIES,
  fields(limits: PanelLimits): FieldSpec[] {
    return [
      { name: 'address', label: 'address', type: 'text', default: '127.0.0.1', help: 'IP address to listen on: 127.0.0.1, 0.0.0.0 (all), ::1, ::' },
      { name: 'port', label: 'port', type: 'number', default: 0, min: 0, max: 65_535, step: 1, help: '0: any free port; below 1024 refused' },
      { name: 'durationS', label: 'duration', type: 'number', default: 0, min: 0, max: limits.maxDurationS, step: 1, unit: 's', help: '0: until stopped' },
      { name: 'timestamping', label: 'timestamping', type: 'select', default: 'software', options: ['software', 'none'], help: 'kernel receive stamps, or none' },
    ]
  },
  parse(values) {
    const port = values.port as number
    if (port > 0 && port < 1024) throw new FormError('port: ports below 1024 are refused from the panel')
    return { address: checkAddress(values.address as string), port, durationS: values.durationS as number, timestamping: values.timestamping as string }
  },
  start(params) {
    return new ReceiverJob(params)
  },
}
