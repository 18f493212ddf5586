// The npm package: `npm pack` yields one tarball that, installed into an empty folder, works
// with require(), import and a TypeScript import on this platform (Linux x64 glibc).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const node = (args, cwd) => execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })

test('npm pack → npm install into an empty folder → require, import and TypeScript all work', () => {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-pack-'))
  try {
    const [{ filename, files }] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], root))
    const names = files.map((f) => f.path).sort()
    assert.deepEqual(names, ['README.md', 'index.d.ts', 'index.js', 'package.json', 'udpcom.linux-x64-gnu.node'])
    assert.ok(!names.some((n) => n.includes('target/') || n.includes('node_modules')))

    const app = join(dir, 'app')
    execFileSync('mkdir', [app])
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
    npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, filename)], app)
    assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.')), ['udpcom'])

    const script = `
      const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
      udp.initSocket(); udp.start()
      const port = udp.localPort
      udp.closeSocket()
      console.log(typeof UdpCom, port > 0)`
    assert.equal(node(['-e', `const { UdpCom } = require('udpcom');${script}`], app).trim(), 'function true')
    assert.equal(
      node(['--input-type=module', '-e', `import { UdpCom } from 'udpcom';${script}`], app).trim(),
      'function true',
    )

    writeFileSync(join(app, 'check.ts'), `
      import { UdpCom, type PacketStats } from 'udpcom'
      const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0 })
      const stats: PacketStats | null = null
      export { udp, stats }
    `)
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext',
        types: ['node'], typeRoots: [join(root, 'node_modules/@types')],
      },
      files: ['check.ts'],
    }))
    node([join(root, 'node_modules/typescript/bin/tsc'), '-p', app], app)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
