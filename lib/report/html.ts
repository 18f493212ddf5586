// A report as one HTML file: the data as JSON in the page, uPlot and the page scripts inlined
// (dist/web/assets.js), and a Content-Security-Policy that forbids every network request, so the
// file shows the same offline, from a mail attachment or a CI artifact.

import * as assets from '../web/assets'
import type { ReportData } from './model'

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
}

/** Text that is safe inside an HTML element. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** Nothing from the network: inline scripts and styles only, images from data: URLs. */
export const OFFLINE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

/** The stylesheets both pages inline: uPlot's and ours. */
export const PAGE_STYLES = `<style>${assets.uplotCss}</style>\n<style>${assets.styleCss}</style>`

/** The scripts a page inlines: uPlot, the formatters, the plots, then the page's own script. */
export function pageScripts(pageJs: string): string {
  return [assets.uplotJs, assets.formatJs, assets.plotsJs, pageJs].map((js) => `<script>${js}</script>`).join('\n')
}

/** The HTML page of `data`. */
export function renderReport(data: ReportData): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${OFFLINE_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="udpcom (uPlot ${escapeHtml(assets.uplotVersion)})">
<title>${escapeHtml(data.title)}</title>
${PAGE_STYLES}
</head>
<body>
<main id="report"></main>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
${pageScripts(assets.reportJs)}
</body>
</html>
`
}
