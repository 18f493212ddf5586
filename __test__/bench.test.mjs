// The benchmark (npm run bench) is not a test; this only shows that it works: every section
// runs in its short smoke mode (seconds, not minutes) and the one table comes out complete.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const bench = fileURLToPath(new URL('../benchmark/index.mjs', import.meta.url))

test('npm run bench works: the smoke run prints one table with every section', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-bench-'))
  try {
    const json = join(dir, 'results.json')
    const { code, stdout, stderr } = await runNode([bench, '--smoke', '--json', json], { timeoutMs: 180_000 })
    assert.equal(code, 0, stderr)
    const tableLines = stdout.split('\n').filter((line) => line.startsWith('| '))
    assert.match(tableLines[0], /\| # \| Measurement \| udpcom \| node:dgram \|/)
    const sections = new Set(tableLines.slice(1).map((line) => line.split(' | ')[0].slice(2)))
    assert.deepEqual([...sections].sort(), ['1', '2', '3', '4', '5', '6', '7'])
    const results = JSON.parse(readFileSync(json, 'utf8'))
    assert.equal(results.smoke, true)
    assert.equal(results.rows.length, tableLines.length - 1)
    for (const row of results.rows) {
      assert.ok(!/n\/a/.test(`${row.udpcom} ${row.dgram}`), `a figure is missing: ${JSON.stringify(row)}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
