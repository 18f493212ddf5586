// Headless Chromium for the tests of reports and of the panel (Debian package `chromium`,
// driven by playwright-core). Every launch gets a fresh profile; the page's console errors,
// page errors and requests are recorded so that tests can say there were none.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const CHROMIUM = '/usr/bin/chromium'
/** Screenshots the tests keep (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../.tmp/', import.meta.url))

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing() {
  if (!existsSync(CHROMIUM)) return `needs ${CHROMIUM} (Debian package chromium; .ci/run installs it)`
  try {
    import.meta.resolve('playwright-core')
  } catch {
    return 'needs the playwright-core devDependency (npm ci)'
  }
  return undefined
}

/**
 * A browser with a fresh profile and one page. `problems` collects console errors and
 * uncaught page errors; `requests` every URL the page asked for. `close()` removes the profile.
 */
export async function openBrowser({ width = 1200, height = 900 } = {}) {
  const { chromium } = await import('playwright-core')
  const profile = mkdtempSync(join(tmpdir(), 'udpcom-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width, height },
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const problems = []
  const requests = []
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`)
  })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('request', (request) => requests.push(request.url()))
  return {
    context,
    page,
    problems,
    requests,
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Where a test keeps a screenshot: .tmp/<name>. */
export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, name)
}

/** Every canvas on the page (or under `selector`): its size and how many pixels are not blank. */
export function canvases(page, selector = 'body') {
  return page.evaluate((root) => {
    return [...document.querySelector(root).querySelectorAll('canvas')].map((canvas) => {
      const { width, height } = canvas
      const data = canvas.getContext('2d').getImageData(0, 0, width, height).data
      let drawn = 0
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn++
      return { width, height, drawn, kind: canvas.closest('figure')?.dataset.kind ?? null }
    })
  }, selector)
}

/** Opens `file` in Chromium: the plots drawn, no errors, no request but the file; keeps a screenshot. */
export async function checkReportInBrowser(t, file, screenshot, expectedPlots) {
  const browser = await openBrowser()
  try {
    const { page, problems, requests } = browser
    await page.goto(pathToFileURL(file).href)
    await page.waitForSelector('table.findings')
    const drawn = await canvases(page)
    t.diagnostic(`plots: ${drawn.map((c) => `${c.kind} ${c.width}x${c.height} (${c.drawn} px)`).join(', ')}`)
    assert.deepEqual(drawn.map((c) => c.kind), expectedPlots)
    for (const canvas of drawn) {
      assert.ok(canvas.width > 0 && canvas.height > 0, `${canvas.kind}: a canvas of ${canvas.width}x${canvas.height}`)
      assert.ok(canvas.drawn > 1000, `${canvas.kind}: something is drawn (${canvas.drawn} pixels)`)
    }
    assert.ok((await page.locator('table.findings tbody tr').count()) > 0, "the doctor's findings are there")
    assert.deepEqual(problems, [])
    assert.deepEqual(requests, [pathToFileURL(file).href], 'no request beyond the file: it works offline')
    await page.screenshot({ path: artifact(screenshot), fullPage: true })
  } finally {
    await browser.close()
  }
}
