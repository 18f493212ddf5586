// @ts-check
// The panel's page: forms drawn from the job kinds the server offers, a card per job with its
// totals and live plots (uPlot), fed by server-sent events. The page draws what it is sent and
// posts forms; udpcom runs in the server. It survives a server restart: the EventSource
// reconnects by itself, and on every (re)connection the page fetches the state again, starting
// afresh when the server is a new one.

const token = new URLSearchParams(location.search).get('token') ?? ''
const main = /** @type {HTMLElement} */ (document.getElementById('panel'))
const connection = /** @type {HTMLElement} */ (document.getElementById('connection'))

/** @type {PanelState | undefined} */
let state
/**
 * Per job: its data for the plots (column by column, x first), the plots and the totals cells.
 * @type {Map<string, { data: (number | null)[][], plots: { plot: import('uplot'), indexes: number[] }[], card: HTMLElement }>}
 */
const views = new Map()

/**
 * @param {string} path
 * @param {RequestInit} [init]
 */
async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { 'X-Udpcom-Token': token, 'Content-Type': 'application/json', ...(init.headers ?? {}) } })
  const body = await response.json()
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`)
  return body
}

/** @param {string} text @param {boolean} [offline] */
function setConnection(text, offline = false) {
  connection.textContent = text
  connection.className = offline ? 'status offline' : 'status'
  connection.dataset.state = offline ? 'offline' : 'live'
}

/** @param {JobKindInfo} kind */
function drawForm(kind) {
  const section = element('section')
  section.appendChild(element('h2', kind.title))
  section.appendChild(element('p', kind.description, 'meta'))
  const form = element('form')
  form.dataset.kind = kind.kind
  for (const field of kind.fields) {
    const label = element('label', `${field.label}${field.unit ? ` (${field.unit})` : ''}`)
    label.title = field.help
    /** @type {HTMLInputElement | HTMLSelectElement} */
    let input
    if (field.type === 'select') {
      input = element('select')
      for (const option of field.options ?? []) input.appendChild(element('option', option))
    } else {
      input = element('input')
      input.type = field.type
      if (field.min !== undefined) input.min = String(field.min)
      if (field.max !== undefined) input.max = String(field.max)
      if (field.step !== undefined) input.step = String(field.step)
    }
    input.name = field.name
    if (field.default !== undefined) input.value = String(field.default)
    label.appendChild(input)
    form.appendChild(label)
  }
  const button = element('button', `Start ${kind.title.toLowerCase()}`)
  button.type = 'submit'
  form.appendChild(button)
  const error = element('p', '', 'error')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    /** @type {Record<string, string | number>} */
    const params = {}
    for (const field of kind.fields) {
      const input = /** @type {HTMLInputElement} */ (form.elements.namedItem(field.name))
      params[field.name] = field.type === 'number' && input.value !== '' ? Number(input.value) : input.value
    }
    error.textContent = ''
    api('/api/jobs', { method: 'POST', body: JSON.stringify({ kind: kind.kind, params }) })
      .then((/** @type {JobInfo} */ job) => addJob(job))
      .catch((/** @type {Error} */ e) => {
        error.textContent = e.message
      })
  })
  section.appendChild(form)
  section.appendChild(error)
  return section
}

/** @param {string} kindName */
function kindOf(kindName) {
  return /** @type {JobKindInfo} */ (state?.kinds.find((k) => k.kind === kindName))
}

/**
 * The totals as a table row of label/value cells.
 * @param {HTMLElement} card
 * @param {Record<string, number | string | null>} totals
 */
function drawTotals(card, totals) {
  const table = /** @type {HTMLTableElement} */ (card.querySelector('table.totals'))
  for (const [key, value] of Object.entries(totals)) {
    let cell = /** @type {HTMLElement | null} */ (table.querySelector(`td[data-total="${key}"]`))
    if (!cell) {
      const row = table.insertRow()
      // 'droppedByKernel' → 'dropped by kernel', 'p99DeliveryNs' → 'p99 delivery'.
      row.appendChild(element('th', key.replace(/(Ns|Pps)$/, '').replace(/([A-Z])/g, ' $1').toLowerCase()))
      cell = element('td')
      cell.dataset.total = key
      row.appendChild(cell)
    }
    cell.dataset.value = value === null ? '' : String(value)
    const unit = /Ns$/.test(key) ? 'ns' : /Pps$/.test(key) ? 'pps' : key === 'bytes' ? 'bytes' : 'packets'
    cell.textContent = typeof value === 'number' ? (key === 'port' ? String(value) : formatValue(value, unit)) : (value ?? '–')
  }
}

/** @param {JobInfo} job */
function addJob(job) {
  if (views.has(job.id)) return
  const kind = kindOf(job.kind)
  const card = element('section', undefined, 'job')
  card.dataset.jobId = job.id
  const title = element('h2', `${job.id}: ${job.title}`)
  card.appendChild(title)
  const status = element('p', '', 'status job-state')
  card.appendChild(status)
  const stop = element('button', 'Stop')
  stop.dataset.action = 'stop'
  stop.addEventListener('click', () => {
    api(`/api/jobs/${job.id}/stop`, { method: 'POST', body: '{}' }).then(updateJobInfo, (/** @type {Error} */ e) => {
      status.textContent = e.message
    })
  })
  card.appendChild(stop)
  card.appendChild(element('table', undefined, 'totals jobs'))
  const grid = element('div', undefined, 'plots')
  card.appendChild(grid)
  const jobsArea = /** @type {HTMLElement} */ (document.getElementById('jobs'))
  jobsArea.prepend(card)
  /** @type {(number | null)[][]} */
  const data = [[...job.history.timeS], ...job.history.values.map((column) => [...column])]
  const plots = plotGroups(kind.series)
    .filter((group) => group.kind !== 'jitter')
    .map((group) => {
      const figure = element('figure', undefined, 'plot')
      figure.dataset.kind = group.kind
      grid.appendChild(figure)
      const columns = [/** @type {(number | null)[]} */ (data[0]), ...group.indexes.map((i) => /** @type {(number | null)[]} */ (data[i + 1]))]
      return { plot: timePlot(figure, group.kind, kind.series, group.indexes, columns), indexes: group.indexes }
    })
  views.set(job.id, { data, plots, card })
  updateJobInfo(job)
}

/** @param {{ id: string, state: string, error: string | null, totals: Record<string, number | string | null> }} job */
function updateJobInfo(job) {
  const view = views.get(job.id)
  if (!view) return
  view.card.dataset.state = job.state
  const status = /** @type {HTMLElement} */ (view.card.querySelector('.job-state'))
  status.textContent = job.state + (job.error ? `: ${job.error}` : '')
  const stop = /** @type {HTMLButtonElement} */ (view.card.querySelector('button[data-action="stop"]'))
  stop.disabled = job.state !== 'running'
  drawTotals(view.card, job.totals)
}

/** At most this many points per plot on the page. */
const MAX_POINTS = 1200

/** @param {PanelUpdate} update */
function applyUpdate(update) {
  if (state && update.serverId !== state.serverId) {
    void reload()
    return
  }
  for (const job of update.jobs) {
    const view = views.get(job.id)
    if (!view) continue
    for (const sample of job.samples) {
      view.data[0]?.push(sample.timeS)
      sample.values.forEach((v, i) => view.data[i + 1]?.push(v))
    }
    if (view.data[0] && view.data[0].length > MAX_POINTS) for (const column of view.data) column.splice(0, column.length - MAX_POINTS)
    if (job.samples.length > 0) {
      for (const { plot, indexes } of view.plots) {
        const columns = [/** @type {(number | null)[]} */ (view.data[0]), ...indexes.map((i) => /** @type {(number | null)[]} */ (view.data[i + 1]))]
        plot.setData(/** @type {import('uplot').AlignedData} */ (/** @type {unknown} */ (columns)))
      }
    }
    updateJobInfo(job)
  }
}

/** Fetches the state and draws everything anew (first load, and after the server restarted). */
async function reload() {
  const fresh = /** @type {PanelState} */ (await api('/api/state'))
  const restarted = state !== undefined && state.serverId !== fresh.serverId
  state = fresh
  main.replaceChildren()
  views.clear()
  if (restarted) main.appendChild(element('p', 'The server restarted: the jobs of its previous run ended with it.', 'note'))
  for (const kind of fresh.kinds) main.appendChild(drawForm(kind))
  const limits = fresh.limits
  main.appendChild(element('p', `Limits: ${limits.maxJobs} jobs at once, ${limits.maxDurationS} s each; streams up to ${limits.maxRatePps} pps, ${limits.maxSizeBytes} bytes, bursts of ${limits.maxBurst}.`, 'meta'))
  const jobsArea = element('div')
  jobsArea.id = 'jobs'
  main.appendChild(jobsArea)
  for (const job of [...fresh.jobs].reverse()) addJob(job)
  document.body.dataset.serverId = fresh.serverId
}

function connect() {
  const events = new EventSource(`/api/events?token=${encodeURIComponent(token)}`)
  events.addEventListener('hello', (event) => {
    const { serverId } = JSON.parse(/** @type {MessageEvent} */ (event).data)
    // (Re)connected: the state may have changed while the page was not listening.
    reload().then(
      () => setConnection(`live (server ${serverId.slice(0, 8)})`),
      (/** @type {Error} */ e) => setConnection(`error: ${e.message}`, true),
    )
  })
  events.addEventListener('update', (event) => applyUpdate(JSON.parse(/** @type {MessageEvent} */ (event).data)))
  events.addEventListener('error', () => setConnection('disconnected: reconnecting…', true))
}

connect()
