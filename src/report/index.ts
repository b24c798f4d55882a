export {
  buildRunReport,
  DISPLAY_GROUPS,
  REPORT_FORMAT_VERSION,
  type BuildReportOptions,
  type DisplayGroup,
  type FileCheck,
  type FailedStep,
  type JobReport,
  type JobStatus,
  type MediaRef,
  type RecordedFile,
  type ReportCounts,
  type RunReport,
  type StepReport,
} from "./model.js";
export { checkRecordedFile } from "./file-check.js";
export { renderReportJson } from "./render-json.js";
export { renderReportMarkdown } from "./render-markdown.js";
export { renderReportHtml, type HtmlReportOptions } from "./render-html.js";
export {
  makeThumbnails,
  runFfmpeg,
  THUMBNAIL_FOLDER,
  THUMBNAIL_WIDTH,
  type FfmpegRunner,
  type MediaPreview,
  type MediaPreviews,
  type ThumbnailOptions,
  type ThumbnailSummary,
} from "./thumbnails.js";
export { escapeHtml, escapeMarkdown } from "./escape.js";
export { mediaKindOf, type MediaKind } from "../models/media-kind.js";
export { relativeHref } from "./media.js";
export { defaultReportPath, formatFromFileName, REPORT_FORMATS, type ReportFormat } from "./report-path.js";
