/**
 * Preflight of the media a workflow names before the run (SPEC §4, `validate --preflight`
 * and `apply`): each static media URL probed once, a few at a time, every failure located at
 * the input field (or item) that names it. The only stage that touches the network.
 *
 * A host that gives no answer at all (unknown name, refused, silent) is reported once, with
 * how many of the workflow's URLs are on it, and its other URLs are not probed: thirty lines
 * of the same `ENOTFOUND` say less than one.
 */
import type { HttpTransport } from "../api/http.js";
import type { Diagnostic } from "../errors.js";
import { checkMediaInput } from "../api/media-probe.js";
import type { ModelRegistry } from "../models/registry.js";
import type { MediaFacts } from "../models/types.js";
import type { StaticMediaInput } from "../workflow/instance-checks.js";

export interface PreflightOptions {
  transport?: HttpTransport | undefined;
  parallel?: number;
  /** What to do about an origin that gave no answer (the caller knows which var names it). */
  unreachableHint?: ((origin: string) => string | undefined) | undefined;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Probes each static media URL once (a few at a time); every failure located at its input field. */
export async function preflightMedia(
  media: readonly StaticMediaInput[],
  registry: ModelRegistry,
  options: PreflightOptions = {},
): Promise<Diagnostic[]> {
  const diagnostics: Diagnostic[] = [];
  const cache = new Map<string, Promise<MediaFacts>>();
  /** Origins that gave no answer: the diagnostic said once, and how many more URLs are on it. */
  const silent = new Map<string, { diagnostic: Diagnostic; more: number }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < media.length) {
      const found = media[next++]!;
      const entry = registry.get(found.model);
      if (!entry) continue;
      const known = silent.get(originOf(found.url) ?? "");
      if (known) {
        known.more += 1;
        continue;
      }
      const probeOptions = options.transport ? { cache, transport: options.transport } : { cache };
      const issues = await checkMediaInput(entry, { [found.field]: found.url }, probeOptions);
      for (const issue of issues) {
        const origin = issue.unreachableOrigin;
        const same = origin === undefined ? undefined : silent.get(origin);
        if (same) {
          // Probed in parallel with the first failure on that host: counted with it.
          same.more += 1;
          continue;
        }
        const measured = issue.detail ? ` (measured: ${issue.detail})` : "";
        const message = issue.message.startsWith("input.")
          ? issue.message
          : `input.${found.field}: ${issue.message}${measured}`;
        const diagnostic: Diagnostic = {
          message: `${found.where}: ${message}`,
          location: found.location,
          path: found.path,
          hint:
            origin !== undefined
              ? (options.unreachableHint?.(origin) ??
                `${origin} gave no answer: check the URL and this machine's network`)
              : issue.kind === "media"
                ? `the medium at ${found.url} does not meet the model's rules`
                : undefined,
        };
        if (origin !== undefined) silent.set(origin, { diagnostic, more: 0 });
        diagnostics.push(diagnostic);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel ?? 8, media.length) }, worker));
  for (const [origin, { diagnostic, more }] of silent) {
    if (more > 0) diagnostic.message += ` (and ${more} more media URL${more === 1 ? "" : "s"} on ${origin})`;
  }
  return diagnostics;
}
