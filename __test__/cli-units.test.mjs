// The command line's units (lib/cli/units.ts): every parser on good and bad text, and the
// formatters (lib/format.ts) the status lines use. Pure functions, no sockets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const units = { ...require('../dist/cli/units.js'), ...require('../dist/format.js') }
const { UsageError } = require('../dist/cli/errors.js')

const fails = (fn, pattern) => assert.throws(fn, (error) => error instanceof UsageError && pattern.test(error.message))

test('counts take SI suffixes and must be whole', () => {
  assert.equal(units.parseCount('1000', '--count'), 1000)
  assert.equal(units.parseCount('10k', '--count'), 10_000)
  assert.equal(units.parseCount('1.5M', '--count'), 1_500_000)
  assert.equal(units.parseCount('1.1k', '--count'), 1100)
  assert.equal(units.parseCount('2G', '--count'), 2e9)
  assert.equal(units.parseCount('1e3', '--count'), 1000)
  assert.equal(units.parseCount('0', '--count'), 0)
  fails(() => units.parseCount('1.5', '--count'), /^--count '1.5' must be a whole number of packets$/)
  fails(() => units.parseCount('ten', '--count'), /^--count 'ten' is not a count \(for example 1000, 10k, 1.5M\)$/)
  fails(() => units.parseCount('10m', '--count'), /is not a count/)
  fails(() => units.parseCount('-5', '--count'), /is not a count/)
  fails(() => units.parseCount('', '--count'), /is not a count/)
  fails(() => units.parseCount('1e400', '--count'), /is not a count/)
})

test('rates in packets and bits per second', () => {
  assert.equal(units.parseRate('10k', '--rate'), 10_000)
  assert.equal(units.parseRate('10kpps', '--rate'), 10_000)
  assert.equal(units.parseRate('0.5', '--rate'), 0.5)
  assert.equal(units.parseRate('1M', '--rate'), 1e6)
  fails(() => units.parseRate('0', '--rate'), /must be above 0/)
  fails(() => units.parseRate('fast', '--rate'), /is not a packet rate/)
  assert.equal(units.parseBitRate('100M', '--bitrate'), 1e8)
  assert.equal(units.parseBitRate('100Mbit/s', '--bitrate'), 1e8)
  assert.equal(units.parseBitRate('1Gbps', '--bitrate'), 1e9)
  assert.equal(units.parseBitRate('64kb', '--bitrate'), 64_000)
  fails(() => units.parseBitRate('1T', '--bitrate'), /is not a bit rate/)
})

test('sizes in bytes, SI and binary', () => {
  assert.equal(units.parseBytes('64', '--size'), 64)
  assert.equal(units.parseBytes('1k', '--size'), 1000)
  assert.equal(units.parseBytes('1Ki', '--size'), 1024)
  assert.equal(units.parseBytes('1KiB', '--size'), 1024)
  assert.equal(units.parseBytes('64Mi', '--size'), 64 * 2 ** 20)
  fails(() => units.parseBytes('0.5', '--size'), /whole number of bytes/)
  fails(() => units.parseBytes('1ki', '--size'), /is not a size/)
})

test('durations in ns, from ns to hours; a bare number is seconds', () => {
  const cases = {
    '10s': 10e9,
    '500ms': 500e6,
    '1.5us': 1500,
    '1.5µs': 1500,
    '250ns': 250,
    '2m': 120e9,
    '2min': 120e9,
    '1h': 3600e9,
    '10': 10e9,
    '0.25': 250e6,
    '.5s': 500e6,
  }
  for (const [text, ns] of Object.entries(cases)) assert.equal(units.parseDuration(text, '--duration'), ns, text)
  fails(() => units.parseDuration('0.5ns', '--duration'), /whole number of nanoseconds/)
  fails(() => units.parseDuration('10x', '--duration'), /^--duration '10x' is not a duration \(for example 10s, 500ms, 1.5us\)$/)
  fails(() => units.parseDuration('1e20h', '--duration'), /whole number of nanoseconds/)
})

test('integers in a range', () => {
  assert.equal(units.parseInteger('80', '--priority', 1, 99), 80)
  fails(() => units.parseInteger('100', '--priority', 1, 99), /^--priority '100' must be a whole number from 1 to 99$/)
  fails(() => units.parseInteger('8.5', '--priority', 1, 99), /whole number/)
  fails(() => units.parseInteger('0x10', '--priority', 1, 99), /whole number/)
})

test('formatters: three significant digits, the unit a person reads', () => {
  assert.equal(units.formatSi(999), '999')
  assert.equal(units.formatWithUnit(999.9, 'pps'), '1.00 kpps', 'rounding up to the next prefix')
  assert.equal(units.formatSi(999_999), '1.00M')
  assert.equal(units.formatNs(999_600), '1.00 ms')
  assert.equal(units.formatNs(999.6), '1.00 µs')
  assert.equal(units.formatSi(12_345), '12.3k')
  assert.equal(units.formatSi(4_560_000), '4.56M')
  assert.equal(units.formatWithUnit(10_000, 'pps'), '10.0 kpps')
  assert.equal(units.formatWithUnit(500, 'bit/s'), '500 bit/s')
  assert.equal(units.formatWithUnit(8_192_000, 'bit/s'), '8.19 Mbit/s')
  assert.equal(units.formatNs(850), '850 ns')
  assert.equal(units.formatNs(12_345), '12.3 µs')
  assert.equal(units.formatNs(4_560_000), '4.56 ms')
  assert.equal(units.formatNs(1.2e9), '1.20 s')
  assert.equal(units.formatCount(1_234_567), '1,234,567')
})
