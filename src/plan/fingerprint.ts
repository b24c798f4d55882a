/**
 * Step fingerprints (SPEC §5): a hash of what decides a step's result. Two steps with the
 * same fingerprint would be sent the same request, so one's success can stand for the other.
 */
import { canonicalJson, sha256Hex } from "../util/canonical.js";

/** A model step: its model and its exact request body (defaults filled in; key order does not matter). */
export function fingerprintModelStep(model: string, body: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ kind: "model", model, input: body }));
}

/**
 * A run step: its argument vector, its extra environment, and the sha256 of each input file
 * it reads (path → hash; computed by the engine right before it runs).
 */
export function fingerprintRunStep(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  inputFileHashes: Readonly<Record<string, string>>,
): string {
  return sha256Hex(canonicalJson({ kind: "run", argv, env, files: inputFileHashes }));
}
