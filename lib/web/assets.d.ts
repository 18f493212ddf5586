// The strings scripts/build-web.mjs bundles into dist/web/assets.js (see there).

/** Version of the bundled uPlot. */
export const uplotVersion: string
/** uPlot's IIFE build (defines the page global `uPlot`), with its licence notice. */
export const uplotJs: string
export const uplotCss: string
/** The stylesheet of reports and the panel (lib/web/style.css). */
export const styleCss: string
/** lib/format.ts, compiled, as the page global `udpcomFormat`. */
export const formatJs: string
/** lib/web/plots.js: the plots, shared by both pages. */
export const plotsJs: string
/** lib/web/report.js: draws a report from its embedded data. */
export const reportJs: string
/** lib/web/panel.js: the live panel. */
export const panelJs: string
