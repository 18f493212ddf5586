// Numbers as people read them, in what the command line, the doctor, reports and the panel
// print: three significant digits, SI prefixes, times in the unit that fits.

/** The SI prefix of a value and the value scaled to it: 12345 → [12.3, 'k']. */
function siParts(value: number): [string, string] {
  const abs = Math.abs(value)
  for (const [scale, prefix] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    // 999.99 rounds to 1000 at three digits: that is 1.00k, not 1.00e+3.
    if (Number(abs.toPrecision(3)) >= scale) return [(value / scale).toPrecision(3), prefix]
  }
  return [Number.isInteger(value) ? String(value) : value.toPrecision(3), '']
}

/** `999`, `12.3k`, `4.56M`, `7.89G`: three significant digits. */
export function formatSi(value: number): string {
  return siParts(value).join('')
}

/** A value with an SI-prefixed unit: (10000, 'pps') → `10.0 kpps`, (500, 'bit/s') → `500 bit/s`. */
export function formatWithUnit(value: number, unit: string): string {
  const [digits, prefix] = siParts(value)
  return `${digits} ${prefix}${unit}`
}

/** A duration in ns as people read it: `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`. */
export function formatNs(ns: number): string {
  // As shown, three digits: 999,600 ns is 1.00 ms, not 1.00e+3 µs.
  const abs = Number(Math.abs(ns).toPrecision(3))
  if (abs < 1e3) return `${Math.round(ns)} ns`
  if (abs < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`
  if (abs < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`
  return `${(ns / 1e9).toPrecision(3)} s`
}

/** `12,345`. */
export const formatCount = (count: number): string => count.toLocaleString('en-US')

/** `10.0 kpps`. */
export const formatPps = (pps: number): string => formatWithUnit(pps, 'pps')

/** `8.19 Mbit/s`. */
export const formatBitRate = (bitsPerSecond: number): string => formatWithUnit(bitsPerSecond, 'bit/s')
