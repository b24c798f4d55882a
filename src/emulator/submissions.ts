/**
 * Accepted submissions per model and per identical body, so a test can assert "this body
 * was submitted exactly once" (the property that protects users from paying twice).
 */
import { canonicalJson, sha256Hex } from "../util/canonical.js";

export interface SubmissionGroup {
  modelId: string;
  /** sha256 (hex) of the canonical JSON (sorted keys, no whitespace) of the body as received. */
  bodySha256: string;
  count: number;
  requestIds: string[];
}

export interface SubmissionStats {
  total: number;
  byModel: Record<string, number>;
  byBody: SubmissionGroup[];
}

/** The hash `SubmissionStats.byBody` groups by, for callers that want to look up their own body. */
export function bodySha256(body: unknown): string {
  return sha256Hex(canonicalJson(body));
}

export class SubmissionTracker {
  private total = 0;
  private readonly byModel = new Map<string, number>();
  /** model id → body hash → group (nested, so no per-submission key string is kept). */
  private readonly byBody = new Map<string, Map<string, SubmissionGroup>>();

  get count(): number {
    return this.total;
  }

  record(modelId: string, body: unknown, requestId: string): void {
    this.total++;
    this.byModel.set(modelId, (this.byModel.get(modelId) ?? 0) + 1);
    const hash = bodySha256(body);
    let groups = this.byBody.get(modelId);
    if (!groups) {
      groups = new Map();
      this.byBody.set(modelId, groups);
    }
    const group = groups.get(hash);
    if (group) {
      group.count++;
      group.requestIds.push(requestId);
    } else {
      groups.set(hash, { modelId, bodySha256: hash, count: 1, requestIds: [requestId] });
    }
  }

  stats(): SubmissionStats {
    return {
      total: this.total,
      byModel: Object.fromEntries(this.byModel),
      byBody: [...this.byBody.values()].flatMap((groups) =>
        [...groups.values()].map((group) => ({ ...group, requestIds: [...group.requestIds] })),
      ),
    };
  }

  clear(): void {
    this.total = 0;
    this.byModel.clear();
    this.byBody.clear();
  }
}
