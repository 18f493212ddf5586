// The npm package: `npm pack` yields one small tarball with only what it needs (the compiled
// JavaScript layer, its public declarations, the stripped addon, README), which, installed into
// an empty folder, sends and receives through require() and import, and type-checks from a
// CommonJS and from an ES module TypeScript program.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const tsc = join(root, 'node_modules/typescript/bin/tsc')

/** Runs node in `cwd`; returns stdout, and fails on a non-zero exit or anything on stderr. */
function node(args, cwd) {
  const run = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stderr, '', 'nothing on stderr (no warning either)')
  return run.stdout.trim()
}

// One packet through the installed package: an unconnected receiver and a sender connected to it.
const roundTrip = `
  const rx = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  rx.initSocket(); rx.start()
  const tx = new UdpCom('127.0.0.1', 0, '127.0.0.1', rx.localPort, { direction: 0 })
  tx.initSocket(); tx.start()
  tx.sendData(Buffer.from('through the tarball'))
  rx.receiveData(5_000_000_000n).then((packet) => {
    console.log(packet.data.toString(), packet.address, packet.port === tx.localPort)
    tx.closeSocket(); rx.closeSocket()
  })`

test('npm pack ships only the compiled layer, public types and a stripped addon; installed, it sends and receives from CJS, ESM and TypeScript', () => {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-pack-'))
  try {
    const [{ filename, files, size, unpackedSize }] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], root))
    const names = files.map((f) => f.path).sort()
    const dist = names.filter((n) => n.startsWith('dist/'))
    assert.deepEqual(names.filter((n) => !n.startsWith('dist/')), ['README.md', 'native/udpcom.linux-x64-gnu.node', 'package.json'])
    for (const name of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/udpcom.d.ts', 'dist/types.d.ts']) {
      assert.ok(dist.includes(name), `${name} is in the package`)
    }
    // Compiled JavaScript and the public declarations only (the package's, and those of
    // udpcom/panel with the report model it uses): no sources, tests, fixtures, maps.
    assert.deepEqual(dist.filter((n) => !/\.(js|mjs)$/.test(n) && !/^dist\/((index|udpcom|types|probe|stream|replay|capture)\.d\.m?ts|(panel|report)\/\w[\w-]*\.d\.ts)$/.test(n)), [])
    assert.ok(names.includes('dist/cli/main.js') && names.includes('dist/web/assets.js'), 'the udpcom command and its page assets are in the package')
    const addon = files.find((f) => f.path.endsWith('.node'))
    assert.ok(addon.size < 2 * 2 ** 20, `the addon is ${(addon.size / 2 ** 20).toFixed(1)} MB: is it stripped?`)
    assert.ok(size < 1.5 * 2 ** 20 && unpackedSize < 3 * 2 ** 20, `tarball ${size} B, unpacked ${unpackedSize} B`)

    for (const type of ['commonjs', 'module']) {
      const app = join(dir, `app-${type}`)
      mkdirSync(app)
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: `app-${type}`, private: true, type }))
      npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, filename)], app)
      assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.')), ['udpcom'])

      const expected = 'through the tarball 127.0.0.1 true'
      assert.equal(node(['--input-type=commonjs', '-e', `const { UdpCom } = require('udpcom');${roundTrip}`], app), expected)
      assert.equal(node(['--input-type=module', '-e', `import { UdpCom } from 'udpcom';${roundTrip}`], app), expected)
      // The udpcom command, as npx runs it (package.json bin), and for a utilityProcess (udpcom/cli).
      assert.equal(node(['-p', "require.resolve('udpcom/cli')"], app), join(app, 'node_modules/udpcom/dist/cli/main.js'))
      const bin = join(app, 'node_modules/.bin/udpcom')
      assert.match(execFileSync(bin, ['--version'], { cwd: app, encoding: 'utf8' }), /^udpcom \d+\.\d+\.\d+\n$/)
      const doctor = spawnSync(bin, ['doctor', '--no-probe', '--json'], { cwd: app, encoding: 'utf8' })
      assert.ok([0, 1].includes(doctor.status), doctor.stderr)
      assert.equal(JSON.parse(doctor.stdout.trim().split('\n').at(-1)).type, 'summary')

      // TypeScript: an import in a CommonJS package compiles against the require types, in an ES
      // module package against the import types.
      writeFileSync(join(app, 'check.ts'), `
        import { UdpCom, probeWakeups, type PacketStats, type ReceivedPacket, type WakeProbe } from 'udpcom'
        import { startPanel, type Panel, type PanelState } from 'udpcom/panel'
        export async function panel(): Promise<string> {
          const started: Panel = await startPanel({ port: 0 })
          const probe: WakeProbe = await probeWakeups({ durationNs: 0 })
          const state: PanelState | undefined = undefined
          void [probe, state]
          return started.url
        }
        export async function use(): Promise<void> {
          await using udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 2 })
          udp.initSocket()
          udp.start()
          const packet: ReceivedPacket | null = await udp.receiveData(1_000_000n)
          const family: 'IPv4' | 'IPv6' | undefined = packet?.family
          const stats: PacketStats = udp.getPacketStats()
          void [family, stats]
        }
        // @ts-expect-error: the native binding is not part of the public API
        import type { NativeUdpCom } from 'udpcom'
      `)
      writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022',
          lib: ['es2022', 'esnext.disposable'], types: ['node'], typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['check.ts'],
      }))
      const typed = spawnSync(process.execPath, [tsc, '-p', app], { cwd: app, encoding: 'utf8' })
      assert.equal(typed.status, 0, typed.stdout + typed.stderr)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
