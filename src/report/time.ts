/** Timestamps in reports: UTC, so a report reads the same wherever it is opened or generated. */
export function formatTimestamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}
