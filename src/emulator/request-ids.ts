/**
 * Request ids: random UUIDs, or, when the emulator runs with an injected random source, a
 * deterministic sequence that still looks like UUIDs.
 */
import { randomUUID } from "node:crypto";
import { sha256Hex } from "../util/canonical.js";

function uuidShaped(hex: string): string {
  const variant = ((parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function requestIdSource(deterministic: boolean): () => string {
  if (!deterministic) return () => randomUUID();
  // A counter, not the injected random: a test's constant random() must not make ids collide.
  let counter = 0;
  return () => uuidShaped(sha256Hex(`runflow-emulator-request:${++counter}`));
}
