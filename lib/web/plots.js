// @ts-check
// The plots of reports and of the live panel, drawn with uPlot: time series by plot kind
// (rate, lateness, jitter, loss) and histograms on log-log axes. Loaded as a plain script after
// uPlot and the formatters (`udpcomFormat`); its functions are globals of the page.

/** Plot titles and y-axis units, by kind. */
const PLOT_TITLES = {
  rate: 'Rate',
  lateness: 'Lateness and latency over time',
  jitter: 'Inter-arrival jitter',
  loss: 'Loss and reorder over time',
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2']

/**
 * A value in its unit, as people read it.
 * @param {number | null | undefined} value
 * @param {Unit} unit
 */
function formatValue(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  switch (unit) {
    case 'ns':
      return udpcomFormat.formatNs(value)
    case 'pps':
      return udpcomFormat.formatWithUnit(value, 'pps')
    case 'bit/s':
      return udpcomFormat.formatWithUnit(value, 'bit/s')
    case 'bytes':
      return udpcomFormat.formatWithUnit(value, 'B')
    case 's':
      return `${value.toFixed(1)} s`
    case 'ratio':
      return `${(value * 100).toFixed(2)}%`
    default:
      return Number.isInteger(value) ? udpcomFormat.formatCount(value) : udpcomFormat.formatSi(value)
  }
}

/** The width of a plot: its container's (a cell of the .plots grid). */
/** @param {HTMLElement} container */
function plotWidth(container) {
  return Math.max(320, Math.min(1100, container.clientWidth || 540))
}

/**
 * Groups series by plot kind, in the order of PLOT_TITLES.
 * @param {SeriesSpec[]} series
 * @returns {{ kind: PlotKind, indexes: number[] }[]}
 */
function plotGroups(series) {
  /** @type {PlotKind[]} */
  const kinds = ['rate', 'lateness', 'jitter', 'loss']
  return kinds
    .map((kind) => ({ kind, indexes: series.map((s, i) => (s.plot === kind ? i : -1)).filter((i) => i >= 0) }))
    .filter((group) => group.indexes.length > 0)
}

/**
 * A time plot of the series `indexes` of `series` (one kind, hence one unit per axis); x is
 * seconds since the start. Returns the uPlot instance (setData appends for the live panel).
 * @param {HTMLElement} container
 * @param {PlotKind} kind
 * @param {SeriesSpec[]} series
 * @param {number[]} indexes
 * @param {(number | null)[][]} data  [timeS, ...values of the chosen series]
 */
function timePlot(container, kind, series, indexes, data) {
  const chosen = indexes.map((i) => /** @type {SeriesSpec} */ (series[i]))
  const unit = chosen[0]?.unit ?? 'packets'
  /** @type {import('uplot').Options} */
  const options = {
    title: PLOT_TITLES[kind],
    width: plotWidth(container),
    height: 240,
    scales: { x: { time: false } },
    axes: [
      { label: 'seconds', values: (_u, splits) => splits.map((v) => `${v}`) },
      { size: 80, values: (_u, splits) => splits.map((v) => formatValue(v, unit)) },
    ],
    series: [
      { label: 's', value: (_u, v) => (v === null ? '–' : v.toFixed(1)) },
      ...chosen.map((spec, i) => ({
        label: spec.label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        points: { show: false },
        /** @type {(u: import('uplot'), v: number | null) => string} */
        value: (_u, v) => formatValue(v, spec.unit),
        ...(kind === 'loss' ? { fill: `${COLORS[i % COLORS.length]}33`, paths: uPlot.paths.stepped?.({ align: 1 }) } : {}),
      })),
    ],
  }
  return new uPlot(options, /** @type {import('uplot').AlignedData} */ (/** @type {unknown} */ (data)), container)
}

/**
 * A histogram on log-log axes: x the bucket bounds (ns, doubling or finer), y the counts (empty
 * buckets left out: a log axis has no 0).
 * @param {HTMLElement} container
 * @param {Histogram} histogram
 */
function histogramPlot(container, histogram) {
  const counts = histogram.counts.map((c) => (c > 0 ? c : null))
  /** @type {import('uplot').Options} */
  const options = {
    title: histogram.label,
    width: plotWidth(container),
    height: 240,
    scales: { x: { time: false, distr: 3, log: 2 }, y: { distr: 3, log: 10 } },
    axes: [
      { label: 'ns (log)', values: (_u, splits) => splits.map((v) => (v === null ? '' : udpcomFormat.formatNs(v))) },
      { label: 'count (log)', size: 70, values: (_u, splits) => splits.map((v) => (v === null ? '' : udpcomFormat.formatSi(v))) },
    ],
    series: [
      { label: 'up to', value: (_u, v) => (v === null ? '–' : udpcomFormat.formatNs(v)) },
      {
        label: 'count',
        stroke: COLORS[0],
        fill: `${COLORS[0]}44`,
        width: 1.5,
        paths: uPlot.paths.stepped?.({ align: -1 }),
        points: { show: false },
      },
    ],
  }
  return new uPlot(options, [histogram.upToNs, counts], container)
}

/**
 * An element with text (never HTML: everything shown comes from data).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [text]
 * @param {string} [className]
 * @returns {HTMLElementTagNameMap[K]}
 */
function element(tag, text, className) {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = text
  if (className !== undefined) node.className = className
  return node
}

/**
 * The doctor's findings as a table: level, what, detail, fix.
 * @param {Finding[]} findings
 */
function findingsTable(findings) {
  const table = element('table', undefined, 'findings')
  const head = table.createTHead().insertRow()
  for (const title of ['', 'check', 'finding', 'fix']) head.appendChild(element('th', title))
  const body = table.createTBody()
  for (const finding of findings) {
    const row = body.insertRow()
    row.className = `level-${finding.level}`
    row.appendChild(element('td', finding.level, 'level'))
    row.appendChild(element('td', finding.title))
    row.appendChild(element('td', finding.detail))
    const fix = element('td')
    if (finding.fix) fix.appendChild(element('code', finding.fix))
    row.appendChild(fix)
  }
  return table
}
