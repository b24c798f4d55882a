import { createHash } from "node:crypto";
import { configure } from "safe-stable-stringify";

// Keys sorted, no whitespace: the same value always gives the same text, so it can be hashed.
const stableStringify = configure({ deterministic: true, bigint: false, circularValue: Error });

export function canonicalJson(value: unknown): string {
  return stableStringify(value) ?? "null";
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
