/**
 * `1,234,567`: an integer with its thousands grouped by commas, as `toLocaleString("en-US")`
 * writes it. Written out because the first `toLocaleString` of a process loads ICU's number
 * formats, 20–60 ms: more than the rest of `runflow status` (issue 14).
 */
export function groupDigits(n: number): string {
  const digits = String(Math.trunc(Math.abs(n)));
  return `${n < 0 && digits !== "0" ? "-" : ""}${digits.replace(/\B(?=(\d{3})+$)/g, ",")}`;
}
