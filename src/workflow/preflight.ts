/**
 * Preflight of the media a workflow names before the run (SPEC §4, `validate --preflight`
 * and `apply`): each static media URL probed once, a few at a time, every failure located at
 * the input field (or item) that names it. The only stage that touches the network.
 */
import type { HttpTransport } from "../api/http.js";
import type { Diagnostic } from "../errors.js";
import { checkMediaInput } from "../models/media-probe.js";
import type { ModelRegistry } from "../models/registry.js";
import type { MediaFacts } from "../models/types.js";
import type { StaticMediaInput } from "./instance-checks.js";

/** Probes each static media URL once (a few at a time); every failure located at its input field. */
export async function preflightMedia(
  media: readonly StaticMediaInput[],
  registry: ModelRegistry,
  options: { transport?: HttpTransport | undefined; parallel?: number } = {},
): Promise<Diagnostic[]> {
  const diagnostics: Diagnostic[] = [];
  const cache = new Map<string, Promise<MediaFacts>>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < media.length) {
      const found = media[next++]!;
      const entry = registry.get(found.model);
      if (!entry) continue;
      const probeOptions = options.transport ? { cache, transport: options.transport } : { cache };
      const issues = await checkMediaInput(entry, { [found.field]: found.url }, probeOptions);
      for (const issue of issues) {
        const measured = issue.detail ? ` (measured: ${issue.detail})` : "";
        const message = issue.message.startsWith("input.")
          ? issue.message
          : `input.${found.field}: ${issue.message}${measured}`;
        diagnostics.push({
          message: `${found.where}: ${message}`,
          location: found.location,
          path: found.path,
          hint:
            issue.kind === "media" ? `the medium at ${found.url} does not meet the model's rules` : undefined,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel ?? 8, media.length) }, worker));
  return diagnostics;
}
