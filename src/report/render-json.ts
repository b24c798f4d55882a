import type { RunReport } from "./model.js";

/** The report as one JSON document (`report --format json`); undefined fields are left out. */
export function renderReportJson(report: RunReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
