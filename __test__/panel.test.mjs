// The panel (lib/panel/): who it obeys (token, Host, Origin, Sec-Fetch-Site: 403 otherwise),
// what a form may ask for (limits, body size and type), and in headless Chromium: a receiver
// started from the form, datagrams sent to it (node:dgram), the live numbers moving and
// matching the instance's getPacketStats(), stopped; a foreign page in the same browser cannot
// start a job; the page survives a server restart. Then `udpcom panel` itself.
// UDPCOM_DOCS_SCREENSHOTS=1 also writes docs/panel.png.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import http from 'node:http'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startNode, until } from './helpers.mjs'
import { artifact, browserMissing, canvases, openBrowser } from './browser.mjs'

const require = createRequire(import.meta.url)
const { startPanel, checkRequest, allowedHosts, parseFields, receiverJobKind, streamJobKind, DEFAULT_LIMITS } = require('../dist/panel/index.js')
const root = fileURLToPath(new URL('..', import.meta.url))

/** One HTTP request with exactly these headers; resolves with { status, headers, body }. */
function request(port, { method = 'GET', path = '/', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (response) => {
      let text = ''
      response.on('data', (chunk) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: text }))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')))
    if (body !== undefined) req.write(body)
    req.end()
  })
}

test('checkRequest: the Host must name the panel, the Origin be its own, the token be right', () => {
  const hosts = allowedHosts('127.0.0.1', 8080)
  assert.deepEqual([...hosts].sort(), ['127.0.0.1:8080', '[::1]:8080', 'localhost:8080'])
  const token = 'a'.repeat(32)
  const url = (query = `?token=${token}`) => new URL(`/api/state${query}`, 'http://x')
  const verdict = (headers, u = url()) => checkRequest(u, headers, hosts, token)
  assert.deepEqual(verdict({ host: '127.0.0.1:8080' }), { ok: true })
  assert.deepEqual(verdict({ host: 'LOCALHOST:8080', origin: 'http://localhost:8080', 'sec-fetch-site': 'same-origin' }), { ok: true })
  assert.deepEqual(verdict({ host: '127.0.0.1:8080', 'x-udpcom-token': token }, url('')), { ok: true })
  assert.deepEqual(verdict({ host: '127.0.0.1:8080', authorization: `Bearer ${token}` }, url('')), { ok: true })
  assert.match(verdict({ host: 'evil.example:8080' }).reason, /Host 'evil.example:8080' is not this panel/)
  assert.match(verdict({}).reason, /Host '' is not this panel/)
  assert.match(verdict({ host: '127.0.0.1:8081' }).reason, /not this panel/)
  assert.match(verdict({ host: '127.0.0.1:8080', origin: 'http://evil.example' }).reason, /Origin 'http:\/\/evil.example'/)
  assert.match(verdict({ host: '127.0.0.1:8080', origin: 'null' }).reason, /Origin 'null'/)
  assert.match(verdict({ host: '127.0.0.1:8080', origin: 'http://localhost:3000' }).reason, /Origin/)
  assert.match(verdict({ host: '127.0.0.1:8080', 'sec-fetch-site': 'cross-site' }).reason, /cross-site/)
  assert.match(verdict({ host: '127.0.0.1:8080' }, url('')).reason, /no token/)
  assert.match(verdict({ host: '127.0.0.1:8080' }, url('?token=wrong')).reason, /wrong token/)
  assert.match(verdict({ host: '127.0.0.1:8080' }, url(`?token=${token}x`)).reason, /wrong token/)
  // Listening on every address: the machine's own addresses name it too, nothing else does.
  const wildcard = allowedHosts('0.0.0.0', 8080, ['lab1.example'])
  assert.ok(wildcard.has('lab1.example:8080'))
  assert.ok(!wildcard.has('evil.example:8080'))
})

test('parseFields: numbers in range, selects from their options, defaults, unknown fields refused', () => {
  const fields = receiverJobKind.fields(DEFAULT_LIMITS)
  assert.deepEqual(parseFields(fields, {}), { address: '127.0.0.1', port: 0, durationS: 0, timestamping: 'software' })
  assert.deepEqual(parseFields(fields, { port: '5000', durationS: 10 }), { address: '127.0.0.1', port: 5000, durationS: 10, timestamping: 'software' })
  assert.throws(() => parseFields(fields, { port: 70_000 }), /port: 70000 is outside 0..65535/)
  assert.throws(() => parseFields(fields, { port: 1.5 }), /port: a whole number is needed/)
  assert.throws(() => parseFields(fields, { port: 'many' }), /port: 'many' is not a number/)
  assert.throws(() => parseFields(fields, { durationS: 3601 }), /duration: 3601 is outside 0..3600 s/)
  assert.throws(() => parseFields(fields, { timestamping: 'hardware' }), /timestamping: 'hardware' is not one of software, none/)
  assert.throws(() => parseFields(fields, { address: 'x'.repeat(201) }), /at most 200 characters/)
  assert.throws(() => parseFields(fields, { rate: 5 }), /unknown field 'rate'/)
  assert.throws(() => parseFields(fields, [1]), /a JSON object/)
  assert.throws(() => receiverJobKind.parse({ address: '127.0.0.1', port: 80, durationS: 0, timestamping: 'none' }), /below 1024/)
  assert.throws(() => receiverJobKind.parse({ address: 'example.com', port: 0, durationS: 0, timestamping: 'none' }), /not an IP address/)
  // The stream's form: its limits from PanelLimits, a destination always needed, a stream that always ends.
  const stream = streamJobKind.fields(DEFAULT_LIMITS)
  assert.deepEqual(parseFields(stream, { destination: '127.0.0.1:5000' }), { destination: '127.0.0.1:5000', ratePps: 1000, size: 64, burst: 1, durationS: 10, header: 'udpcom', priority: 0, cpu: -1 })
  assert.throws(() => parseFields(stream, {}), /destination: a value is needed/)
  assert.throws(() => parseFields(stream, { destination: 'x:1', ratePps: 100_001 }), /rate: 100001 is outside 1..100000 pps/)
  assert.throws(() => parseFields(stream, { destination: 'x:1', size: 1473 }), /size: 1473 is outside 0..1472 bytes/)
  assert.throws(() => parseFields(stream, { destination: 'x:1', burst: 65 }), /burst: 65 is outside 1..64 packets/)
  assert.throws(() => parseFields(stream, { destination: 'x:1', durationS: 0 }), /duration: 0 is outside 1..3600 s/)
  assert.throws(() => parseFields(stream, { destination: 'x:1', header: 'rtp' }), /header: 'rtp' is not one of udpcom, iperf2, none/)
  assert.deepEqual(streamJobKind.fields({ ...DEFAULT_LIMITS, maxRatePps: 500 }).find((f) => f.name === 'ratePps').max, 500)
  const streamParams = (destination) => streamJobKind.parse({ ...parseFields(stream, { destination }) })
  assert.equal(streamParams('[::1]:5000').destination, '[::1]:5000')
  for (const bad of ['example.com:5000', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:5000']) assert.throws(() => streamParams(bad), /destination: .* is not HOST:PORT/, bad)
})

test('the server refuses without the token, for a foreign Host or Origin (403), and checks bodies and limits', async () => {
  const panel = await startPanel({ port: 0, limits: { maxJobs: 2, maxRatePps: 1000 } })
  try {
    const { port, token } = panel
    const host = `127.0.0.1:${port}`
    const ok = await request(port, { path: `/?token=${token}`, headers: { host } })
    assert.equal(ok.status, 200)
    assert.match(ok.headers['content-type'], /^text\/html/)
    assert.match(ok.headers['content-security-policy'], /default-src 'none'.*connect-src 'self'/)
    assert.equal(ok.headers['referrer-policy'], 'no-referrer')
    assert.equal(ok.headers['x-frame-options'], 'DENY')
    assert.match(panel.url, new RegExp(`^http://127\\.0\\.0\\.1:${port}/\\?token=[A-Za-z0-9_-]{32}$`))

    for (const [what, path, headers] of [
      ['no token', '/', { host }],
      ['no token (API)', '/api/state', { host }],
      ['no token (events)', '/api/events', { host }],
      ['a wrong token', '/?token=nope', { host }],
      ['a foreign Host (DNS rebinding)', `/?token=${token}`, { host: `attacker.example:${port}` }],
      ['a foreign Origin', `/api/state?token=${token}`, { host, origin: 'http://attacker.example' }],
      ['a cross-site fetch', `/api/state?token=${token}`, { host, 'sec-fetch-site': 'cross-site' }],
    ]) {
      const refused = await request(port, { path, headers })
      assert.equal(refused.status, 403, what)
      assert.ok(JSON.parse(refused.body).error, what)
    }
    // Without a Host header Node's own server refuses an HTTP/1.1 request (400) before the panel sees it.
    assert.equal((await request(port, { path: `/?token=${token}` })).status, 400)
    const post = (body, headers = {}) =>
      request(port, { method: 'POST', path: '/api/jobs', headers: { host, 'x-udpcom-token': token, 'content-type': 'application/json', ...headers }, body })
    // A foreign Origin cannot start a job even with the token (a page that stole it can't either).
    assert.equal((await post(JSON.stringify({ kind: 'receiver', params: {} }), { origin: 'http://attacker.example' })).status, 403)
    assert.equal(panel.jobs.list().length, 0)
    assert.equal((await post('{}', { 'content-type': 'text/plain' })).status, 415)
    assert.equal((await post('x'.repeat(17 * 1024))).status, 413)
    assert.equal((await post('{not json')).status, 400)
    const tooLong = await post(JSON.stringify({ kind: 'receiver', params: { durationS: 100_000 } }))
    assert.equal(tooLong.status, 400)
    assert.match(JSON.parse(tooLong.body).error, /duration: 100000 is outside 0..3600 s/)
    // A stream's form within the limits (maxRatePps 1000 here), refused with 400 and the reason otherwise.
    for (const [params, reason] of [
      [{}, /destination: a value is needed/],
      [{ destination: '127.0.0.1:9', ratePps: 1001 }, /rate: 1001 is outside 1..1000 pps/],
      [{ destination: '127.0.0.1:9', size: 9000 }, /size: 9000 is outside 0..1472 bytes/],
      [{ destination: '127.0.0.1:9', burst: 1000 }, /burst: 1000 is outside 1..64 packets/],
      [{ destination: '127.0.0.1:9', durationS: 7200 }, /duration: 7200 is outside 1..3600 s/],
      [{ destination: 'attacker.example:9' }, /is not HOST:PORT with an IP address/],
      [{ destination: '127.0.0.1:9', size: 8 }, /options.size.*must be >= \d+ with header 'udpcom'/],
    ]) {
      const refused = await post(JSON.stringify({ kind: 'stream', params }))
      assert.equal(refused.status, 400, JSON.stringify(params))
      assert.match(JSON.parse(refused.body).error, reason)
    }
    assert.equal(panel.jobs.list().length, 0)
    assert.equal((await post(JSON.stringify({ kind: 'receiver', params: { port: 80 } }))).status, 400)
    // A port in use is the form's problem: 400 with the coded error.
    const holder = dgram.createSocket('udp4')
    await new Promise((resolve) => holder.bind(0, '127.0.0.1', resolve))
    const inUse = await post(JSON.stringify({ kind: 'receiver', params: { port: holder.address().port } }))
    holder.close()
    assert.equal(inUse.status, 400)
    assert.equal(JSON.parse(inUse.body).code, 'EADDRINUSE')
    // At most maxJobs at once.
    assert.equal((await post(JSON.stringify({ kind: 'receiver', params: {} }))).status, 201)
    assert.equal((await post(JSON.stringify({ kind: 'receiver', params: {} }))).status, 201)
    const third = await post(JSON.stringify({ kind: 'receiver', params: {} }))
    assert.equal(third.status, 400)
    assert.match(JSON.parse(third.body).error, /at most 2 jobs run at once/)
    const stopped = await request(port, { method: 'POST', path: '/api/jobs/1/stop', headers: { host, 'x-udpcom-token': token, 'content-type': 'application/json' }, body: '{}' })
    assert.equal(JSON.parse(stopped.body).state, 'stopped')
    assert.equal((await post(JSON.stringify({ kind: 'receiver', params: {} }))).status, 201, 'room again once one stopped')
    assert.equal((await request(port, { path: `/nothing?token=${token}`, headers: { host } })).status, 404)
  } finally {
    await panel.close()
  }
})

test('in Chromium: a receiver from the form, live numbers matching getPacketStats, stop; a foreign page cannot start one; a server restart', async (t) => {
  const missing = browserMissing()
  if (missing) return t.skip(missing)
  let panel = await startPanel({ port: 0 })
  const { port, token } = panel
  // Another site on this machine, open in the same browser, trying to start a job.
  const foreign = http.createServer((_, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html' })
    response.end(`<script>
      for (const body of [JSON.stringify({ kind: 'receiver', params: {} })]) {
        fetch('http://127.0.0.1:${port}/api/jobs?token=guess', { method: 'POST', mode: 'no-cors', body, headers: { 'Content-Type': 'text/plain' } }).catch(() => {})
        fetch('http://127.0.0.1:${port}/api/jobs?token=${token}', { method: 'POST', mode: 'no-cors', body }).catch(() => {})
      }
      document.title = 'tried'
    </script>`)
  })
  await new Promise((resolve) => foreign.listen(0, '127.0.0.1', resolve))
  const browser = await openBrowser({ width: 1100, height: 900 })
  const sender = dgram.createSocket('udp4')
  try {
    const { page, problems } = browser
    const total = async (key) => Number(await page.getAttribute(`section.job td[data-total="${key}"]`, 'data-value'))
    await page.goto(panel.url)
    await page.waitForSelector('#connection[data-state="live"]')
    await page.click('form[data-kind="receiver"] button[type="submit"]')
    await page.waitForSelector('section.job[data-state="running"] td[data-total="port"]')
    const receiverPort = await total('port')
    const [info] = panel.jobs.list()
    const job = panel.jobs.job(info.id)
    assert.equal(job.port, receiverPort)

    // 3,000 datagrams over about 3 s; the page's count moves while they flow.
    const seen = []
    for (let i = 0; i < 3000; i += 30) {
      await Promise.all(Array.from({ length: 30 }, () => new Promise((resolve) => sender.send(Buffer.alloc(100), receiverPort, '127.0.0.1', resolve))))
      await new Promise((resolve) => setTimeout(resolve, 30))
      if (i % 600 === 0) {
        const shown = await total('received')
        const actual = job.udp.getPacketStats().nPacketsReceived
        seen.push(shown)
        // The page is at most a few updates (250 ms each) behind the instance.
        assert.ok(shown <= actual && actual - shown <= 1000, `page ${shown}, instance ${actual}`)
      }
    }
    assert.ok(seen.at(-1) > seen[0], `the live number moved: ${seen}`)
    await page.waitForFunction(() => document.querySelector('section.job td[data-total="received"]')?.dataset.value === '3000', null, { timeout: 10_000 })
    const stats = job.udp.getPacketStats()
    assert.equal(stats.nPacketsReceived, 3000)
    assert.equal(await total('delivered'), stats.nPacketsDelivered)
    assert.equal(await total('bytes'), 300_000)
    assert.equal(await total('dropped'), 0)
    const plots = await canvases(page, 'section.job')
    assert.deepEqual(plots.map((p) => p.kind), ['rate', 'lateness', 'loss'])
    for (const plot of plots) assert.ok(plot.width > 0 && plot.height > 0 && plot.drawn > 500, JSON.stringify(plot))
    await page.screenshot({ path: artifact('panel.png'), fullPage: true })

    await page.click('section.job button[data-action="stop"]')
    await page.waitForSelector('section.job[data-state="stopped"] button[data-action="stop"][disabled]')
    assert.equal(panel.jobs.list()[0].state, 'stopped')
    assert.throws(() => job.udp.getPacketStats(), { code: 'ERR_UDPCOM_STATE' }, 'the instance is closed')

    // The foreign page: its requests are refused, no job starts.
    const other = await browser.context.newPage()
    await other.goto(`http://127.0.0.1:${foreign.address().port}/`)
    await other.waitForFunction(() => document.title === 'tried')
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(panel.jobs.list().length, 1, 'no job started by another site')
    await other.close()

    // A restart on the same port with the same token: the page reconnects and starts afresh.
    const firstServer = await page.getAttribute('body', 'data-server-id')
    await panel.close()
    await page.waitForSelector('#connection[data-state="offline"]', { timeout: 10_000 })
    panel = await startPanel({ port, token })
    await page.waitForFunction((old) => document.body.dataset.serverId !== old && document.querySelector('#connection')?.dataset.state === 'live', firstServer, { timeout: 15_000 })
    assert.match(await page.textContent('main'), /The server restarted/)
    assert.equal(await page.$$eval('section.job', (cards) => cards.length), 0)
    await page.click('form[data-kind="receiver"] button[type="submit"]')
    await page.waitForSelector('section.job[data-state="running"]')
    assert.equal(panel.jobs.running(), 1)
    // The reconnection's EventSource errors are the browser's own console messages; nothing else.
    assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|net::ERR|Failed to load resource/.test(p)), [])
  } finally {
    sender.close()
    await browser.close()
    await panel.close()
    foreign.close()
  }
})

test('in Chromium: a stream from the form into a receiver from the form, live numbers matching the stream and the receiver, stop', async (t) => {
  const missing = browserMissing()
  if (missing) return t.skip(missing)
  const panel = await startPanel({ port: 0 })
  const browser = await openBrowser({ width: 1100, height: 1000 })
  try {
    const { page, problems } = browser
    const total = async (id, key) => Number(await page.getAttribute(`section.job[data-job-id="${id}"] td[data-total="${key}"]`, 'data-value'))
    await page.goto(panel.url)
    await page.waitForSelector('#connection[data-state="live"]')
    // The form carries the limits the server enforces.
    assert.equal(await page.getAttribute('form[data-kind="stream"] input[name="ratePps"]', 'max'), String(DEFAULT_LIMITS.maxRatePps))
    await page.click('form[data-kind="receiver"] button[type="submit"]')
    await page.waitForSelector('section.job[data-job-id="1"][data-state="running"] td[data-total="port"]')
    const receiver = panel.jobs.job('1')
    await page.fill('form[data-kind="stream"] input[name="destination"]', `127.0.0.1:${receiver.port}`)
    await page.fill('form[data-kind="stream"] input[name="ratePps"]', '2000')
    await page.fill('form[data-kind="stream"] input[name="burst"]', '4')
    await page.fill('form[data-kind="stream"] input[name="durationS"]', '30')
    await page.click('form[data-kind="stream"] button[type="submit"]')
    await page.waitForSelector('section.job[data-job-id="2"][data-state="running"] td[data-total="sent"]')
    const job = panel.jobs.job('2')
    assert.match(await page.textContent('section.job[data-job-id="2"] h2'), /stream to 127\.0\.0\.1:\d+, 2000 pps × 64 bytes/)

    // The page's numbers move, a few updates (250 ms each) behind the stream's own statistics.
    const seen = []
    for (let i = 0; i < 4; i++) {
      await page.waitForFunction((last) => Number(document.querySelector('section.job[data-job-id="2"] td[data-total="sent"]')?.dataset.value) > last, seen.at(-1) ?? 0, { timeout: 5000 })
      const shown = await total('2', 'sent')
      const actual = job.stream.stats().sent
      seen.push(shown)
      assert.ok(shown <= actual && actual - shown <= 2000, `page ${shown}, stream ${actual}`)
      const received = await total('1', 'received')
      assert.ok(received <= actual && actual - received <= 2000, `receiver's page ${received}, stream ${actual}`)
    }
    assert.ok(seen.at(-1) > seen[0], `the live number moved: ${seen}`)
    await page.waitForFunction(() => Number(document.querySelector('section.job[data-job-id="2"] td[data-total="ratePps"]')?.dataset.value) > 1000, null, { timeout: 5000 })
    const rate = await total('2', 'ratePps')
    assert.ok(rate > 1000 && rate < 3000, `rate shown ${rate} pps for 2000 pps`)
    const plots = await canvases(page, 'section.job[data-job-id="2"]')
    assert.deepEqual(plots.map((p) => p.kind), ['rate', 'lateness', 'loss'])
    for (const plot of plots) assert.ok(plot.width > 0 && plot.drawn > 500, JSON.stringify(plot))
    if (process.env.UDPCOM_DOCS_SCREENSHOTS === '1') {
      // A few seconds more of plot for the README.
      await new Promise((resolve) => setTimeout(resolve, 5000))
      await page.screenshot({ path: join(root, 'docs/panel.png'), clip: { x: 0, y: 0, width: 1100, height: 1000 } })
    }
    await page.screenshot({ path: artifact('panel-stream.png'), fullPage: true })

    await page.click('section.job[data-job-id="2"] button[data-action="stop"]')
    await page.waitForSelector('section.job[data-job-id="2"][data-state="stopped"] button[data-action="stop"][disabled]')
    assert.throws(() => job.udp.getPacketStats(), { code: 'ERR_UDPCOM_STATE' }, 'the instance is closed')
    const sent = await total('2', 'sent')
    assert.equal(await page.getAttribute('section.job[data-job-id="2"] td[data-total="state"]', 'data-value'), 'stopped')
    assert.ok(sent >= seen.at(-1))
    assert.equal(await total('2', 'errors'), 0)
    // Everything the stream sent reached the receiver (or was counted as dropped by its kernel).
    await page.waitForFunction((n) => {
      const value = (key) => Number(document.querySelector(`section.job[data-job-id="1"] td[data-total="${key}"]`)?.dataset.value)
      return value('received') + value('droppedByKernel') === n
    }, sent, { timeout: 10_000 })
    assert.equal(await total('1', 'bytes'), (await total('1', 'received')) * 64)
    assert.deepEqual(problems, [])
  } finally {
    await browser.close()
    await panel.close()
  }
})

test('udpcom panel: prints the URL, warns beyond localhost, stops on Ctrl-C', async () => {
  const main = join(root, 'dist/cli/main.js')
  const run = startNode([main, 'panel', '--port', '0', '--json'])
  const { url, port } = JSON.parse(await run.waitFor(/"type":"listening"/))
  const token = new URL(url).searchParams.get('token')
  assert.equal((await request(port, { path: `/api/state?token=${token}`, headers: { host: `127.0.0.1:${port}` } })).status, 200)
  assert.equal((await request(port, { path: '/api/state', headers: { host: `127.0.0.1:${port}` } })).status, 403)
  run.kill('SIGINT')
  const done = await run.exited
  assert.equal(done.code, 0, done.stderr)
  assert.match(done.stdout, /"type":"stopped"/)
  assert.equal(done.stderr, '')

  const wide = startNode([main, 'panel', '--port', '0', '--host', '0.0.0.0'], { env: { UDPCOM_PANEL_TOKEN: 'kept-across-restarts-123' } })
  const line = await wide.waitFor(/open http/)
  assert.match(line, /token=kept-across-restarts-123$/)
  await until(() => wide.output().stderr.includes('warning'), 5000, 'the warning')
  assert.match(wide.output().stderr, /^udpcom: warning: the panel listens on 0\.0\.0\.0: .*ssh -L/)
  wide.kill('SIGINT')
  assert.equal((await wide.exited).code, 0)

  const badToken = startNode([main, 'panel', '--port', '0'], { env: { UDPCOM_PANEL_TOKEN: 'short' } })
  const refused = await badToken.exited
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /UDPCOM_PANEL_TOKEN must be 16..128 characters/)
})
