// @ts-check
// Draws a report from the ReportData embedded in the page (<script id="report-data">): the
// header, notes, the summary table, the histograms and a time plot per kind, the doctor's findings.

/** @param {ReportData} report */
function drawReport(report) {
  const main = /** @type {HTMLElement} */ (document.getElementById('report'))
  document.title = report.title
  main.appendChild(element('h1', report.title))
  const meta = element('p', `${report.command} — ${report.host} — ${report.startedAt} to ${report.endedAt}`, 'meta')
  main.appendChild(meta)
  for (const note of report.notes) main.appendChild(element('p', note, 'note'))

  main.appendChild(element('h2', 'Summary'))
  const table = element('table', undefined, 'summary')
  const body = table.createTBody()
  for (const row of report.summary) {
    const tr = body.insertRow()
    if (row.problem) tr.className = 'problem'
    tr.appendChild(element('th', row.label))
    tr.appendChild(element('td', typeof row.value === 'number' ? formatValue(row.value, row.unit ?? 'packets') : row.value))
  }
  main.appendChild(table)

  const { series } = report
  const groups = plotGroups(series.series)
  if (groups.length > 0 || report.histograms.length > 0) main.appendChild(element('h2', 'Plots'))
  const plots = element('div', undefined, 'plots')
  main.appendChild(plots)
  for (const histogram of report.histograms) {
    const figure = element('figure', undefined, 'plot')
    figure.dataset.kind = `histogram-${histogram.key}`
    plots.appendChild(figure)
    if (histogram.counts.length === 0) {
      figure.appendChild(element('p', `${histogram.label}: no values`, 'note'))
    } else {
      histogramPlot(figure, histogram)
    }
    figure.appendChild(element('figcaption', histogram.description))
  }
  for (const group of groups) {
    const figure = element('figure', undefined, 'plot')
    figure.dataset.kind = group.kind
    plots.appendChild(figure)
    timePlot(figure, group.kind, series.series, group.indexes, [series.timeS, ...group.indexes.map((i) => /** @type {(number | null)[]} */ (series.values[i]))])
    const caption = element('figcaption')
    for (const i of group.indexes) {
      const spec = /** @type {SeriesSpec} */ (series.series[i])
      caption.appendChild(element('span', `${spec.label}: ${spec.description} `))
    }
    figure.appendChild(caption)
  }

  main.appendChild(element('h2', 'This machine (udpcom doctor)'))
  main.appendChild(findingsTable(report.findings))
}

drawReport(JSON.parse(/** @type {HTMLElement} */ (document.getElementById('report-data')).textContent ?? '{}'))
