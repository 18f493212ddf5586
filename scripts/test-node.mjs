// npm run test:node: runs every __test__/*.test.mjs with node --test, one file at a time.
//
// `node --test __test__/` takes a directory only on Node 20 (Node 21+ reads its arguments as
// files or globs), and Node 20's --test does not expand globs: so this lists the files and
// passes them by name, which every Node from 20 on accepts. One file at a time, because tests
// in different files share the machine's two CPUs and time their threads.
//
//   node scripts/test-node.mjs [name ...] [-- node --test options]
//
// Names pick files by substring (`node scripts/test-node.mjs api netns`); options after `--`
// go to node --test (e.g. `-- --test-name-pattern=inlineSend`).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('../__test__/', import.meta.url))
const args = process.argv.slice(2)
const split = args.indexOf('--')
const names = split === -1 ? args : args.slice(0, split)
const options = split === -1 ? [] : args.slice(split + 1)

const files = readdirSync(dir)
  .filter((file) => file.endsWith('.test.mjs'))
  .filter((file) => names.length === 0 || names.some((name) => file.includes(name)))
  .sort()
  .map((file) => `${dir}${file}`)
if (files.length === 0) {
  console.error(`no test file in ${dir} matches ${names.join(', ')}`)
  process.exit(1)
}
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...options, ...files], { stdio: 'inherit' })
if (run.error) throw run.error
process.exit(run.status ?? 1)
