// Loads the native addon. The package is built for one platform (Linux x64, glibc); anywhere
// else the error says so instead of a generic "cannot find module".

import type * as Binding from '../native/binding'

const FILE = '../native/udpcom.linux-x64-gnu.node'

function load(): typeof Binding {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw Object.assign(
      new Error(`udpcom runs on Linux x64 (glibc); this is ${process.platform}-${process.arch}`),
      { code: 'ERR_UDPCOM_UNSUPPORTED_PLATFORM' },
    )
  }
  try {
    return require(FILE) as typeof Binding
  } catch (cause) {
    throw Object.assign(
      new Error(`udpcom could not load its native addon ${FILE} (run \`npm run build\` in a checkout): ${String(cause)}`, {
        cause,
      }),
      { code: 'ERR_UDPCOM_NATIVE_LOAD' },
    )
  }
}

export const { NativeUdpCom, probeWakeups: nativeProbeWakeups } = load()
