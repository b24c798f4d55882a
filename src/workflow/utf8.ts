/**
 * Workflow and items files are UTF-8 text. Decoding other bytes "leniently" turns a
 * Latin-1 `café` into `caf�` and submits that (billed); such a file is refused instead,
 * at the line and column of the first byte that is not UTF-8.
 */
import { Buffer, isUtf8 } from "node:buffer";
import type { Diagnostic } from "../errors.js";

const REPLACEMENT = "\uFFFD";

/** Where the first byte that is not UTF-8 is: 1-based line and column (in characters), and the byte. */
function firstInvalidByte(bytes: Uint8Array): { line: number; column: number; byte: number } {
  let lineStart = 0;
  for (let line = 1; ; line++) {
    const newline = bytes.indexOf(0x0a, lineStart);
    const end = newline < 0 ? bytes.length : newline;
    const lineBytes = bytes.subarray(lineStart, end);
    if (!isUtf8(lineBytes)) {
      // The lenient decoding of the valid prefix is exact; the first replacement is the bad byte.
      const decoded = Buffer.from(lineBytes).toString("utf8");
      const index = Math.max(0, decoded.indexOf(REPLACEMENT));
      const prefixBytes = Buffer.byteLength(decoded.slice(0, index), "utf8");
      return { line, column: index + 1, byte: lineBytes[prefixBytes] ?? lineBytes[0] ?? 0 };
    }
    if (newline < 0) return { line, column: 1, byte: 0 };
    lineStart = newline + 1;
  }
}

/**
 * The text of `bytes`, or a diagnostic at the first byte that is not UTF-8. A UTF-8 byte
 * order mark stays in the text (the YAML and CSV readers skip it).
 */
export function decodeUtf8(
  bytes: Uint8Array,
  file: string,
  what: string,
): { text: string } | { diagnostic: Diagnostic } {
  if (isUtf8(bytes)) return { text: Buffer.from(bytes).toString("utf8") };
  const { line, column, byte } = firstInvalidByte(bytes);
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  return {
    diagnostic: {
      message: `${what} is not UTF-8 text: line ${line} has the byte 0x${hex}, which UTF-8 does not allow there`,
      location: { file, line, column },
      hint: "save the file as UTF-8 (spreadsheets offer “CSV UTF-8”); in Latin-1 or Windows-1252, `é` is the single byte 0xE9, which would become `�`",
    },
  };
}
