// The panel, for embedding (an Electron main process or utilityProcess, any Node program):
// `const panel = await startPanel({ port: 0 }); window.loadURL(panel.url)`.

export { startPanel, MAX_BODY_BYTES, MAX_EVENT_STREAMS, SAMPLE_EVERY_MS, type Panel, type PanelOptions } from './server'
export { DEFAULT_LIMITS, FormError, JobRegistry, parseFields, type JobKind, type RunningJob } from './jobs'
export { receiverJobKind, ReceiverJob, type ReceiverParams } from './receiver-job'
export { parseDestination, STREAM_SERIES, streamJobKind, StreamJob, type StreamParams } from './stream-job'
export { allowedHosts, checkRequest, isLoopback, newToken } from './security'
export type * from './protocol'
