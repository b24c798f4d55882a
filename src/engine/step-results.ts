/**
 * The results of finished steps, as later steps' templates read them (`steps.ID.output`,
 * `.files`, `.request_id`, `.stdout`). Only results something depends on are kept, so a
 * run of 100,000 independent steps holds none.
 */
import type { Plan, PlannedStep } from "../plan/types.js";
import { runDate } from "../plan/plan.js";
import type { StepResultView, TemplateContext } from "../template/resolve.js";

export class StepResults {
  readonly #needed = new Set<string>();
  readonly #results = new Map<string, StepResultView>();
  readonly #plan: Pick<Plan, "runId" | "createdAt" | "workflow">;

  constructor(plan: Pick<Plan, "runId" | "createdAt" | "workflow">, steps: readonly PlannedStep[] = []) {
    this.#plan = plan;
    this.add(steps);
  }

  /** Notes which results these steps will read. */
  add(steps: readonly PlannedStep[]): void {
    for (const step of steps) for (const dependency of step.dependsOn) this.#needed.add(dependency);
  }

  record(address: string, result: StepResultView): void {
    if (this.#needed.has(address)) this.#results.set(address, result);
  }

  /**
   * The context a deferred step's input is resolved in. Everything but `steps` was resolved
   * when planning (the rest of the input holds escaped data), so only `steps` matters here;
   * the other roots are filled for completeness.
   */
  contextFor(step: PlannedStep): TemplateContext {
    const steps: Record<string, StepResultView> = {};
    const prefix = `${step.jobId}/${step.instanceKey}/`;
    for (const dependency of step.dependsOn) {
      const result = this.#results.get(dependency);
      if (result) steps[dependency.slice(prefix.length)] = result;
    }
    return {
      item: {},
      vars: {},
      workflow: { name: this.#plan.workflow.name },
      job: { id: step.jobId, key: step.instanceKey },
      run: { id: this.#plan.runId, date: runDate(this.#plan.createdAt) },
      env: {},
      steps,
    };
  }
}

/** A result as templates see it, leaving out what is absent. */
export function resultView(parts: {
  output?: Record<string, unknown> | undefined;
  files?: Record<string, string | string[]> | undefined;
  requestId?: string | undefined;
  stdout?: string | undefined;
}): StepResultView {
  const view: StepResultView = {};
  if (parts.output !== undefined) view.output = parts.output;
  if (parts.files !== undefined) view.files = parts.files;
  if (parts.requestId !== undefined) view.request_id = parts.requestId;
  if (parts.stdout !== undefined) view.stdout = parts.stdout;
  return view;
}
