// The ES module entry point: the same objects as the CommonJS one (index.ts), so that a
// program importing udpcom and a library requiring it share one class.

import udpcom from './index.js'

export const { UdpCom, probeWakeups } = udpcom
export type * from './index.js'
