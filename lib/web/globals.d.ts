// What the page scripts find on the page: uPlot (its IIFE build defines the global `uPlot`,
// declared by its own types), the
// formatters of lib/format.ts (bundled as `udpcomFormat`), and the functions of plots.js.
/// <reference types="uplot" />
declare const udpcomFormat: typeof import('../format')

type ReportData = import('../report/model').ReportData
type SeriesSpec = import('../report/model').SeriesSpec
type Histogram = import('../report/model').Histogram
type Finding = import('../report/model').Finding
type PlotKind = import('../report/model').PlotKind
type Unit = import('../report/model').Unit
type PanelState = import('../panel/protocol').PanelState
type PanelUpdate = import('../panel/protocol').PanelUpdate
type JobKindInfo = import('../panel/protocol').JobKindInfo
type FieldSpec = import('../panel/protocol').FieldSpec
type JobInfo = import('../panel/protocol').JobInfo
