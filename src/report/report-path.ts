import path from "node:path";
import { isPostgresLocation } from "../store/location.js";

export const REPORT_FORMATS = ["html", "md", "json"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** The format a file name asks for by its extension (`--out x.md`), if it names one. */
export function formatFromFileName(file: string): ReportFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".html" || ext === ".htm") return "html";
  if (ext === ".md" || ext === ".markdown") return "md";
  if (ext === ".json") return "json";
  return undefined;
}

/**
 * Where `report` writes without `--out`: `reports/RUN.EXT` beside the state — beside the
 * `state/` folder in the default layout (`state/runflow.db` → `reports/`), otherwise in the
 * database file's own folder. Reports are for people, so they stay out of the folder that
 * holds the database and its WAL files.
 */
export function defaultReportPath(statePath: string, runId: string, format: ReportFormat): string {
  const safeRunId = runId.replace(/[^A-Za-z0-9._-]/g, "_");
  // A PostgreSQL state has no folder: the report goes under the working folder.
  if (isPostgresLocation(statePath)) return path.join("reports", `${safeRunId}.${format}`);
  const stateDir = path.dirname(path.resolve(statePath));
  const base = path.basename(stateDir) === "state" ? path.dirname(stateDir) : stateDir;
  return path.join(base, "reports", `${safeRunId}.${format}`);
}
