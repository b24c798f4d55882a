/**
 * A defensive view of a parsed document for the semantic rules: the jobs and steps that are
 * well-formed enough to reason about, and every place a template may be written. Works on a
 * document that failed the schema, so all problems can be reported in one pass.
 */
import type { PathSegment } from "../template/parse.js";
import { forEachTemplateString } from "../template/resolve.js";

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export interface StepView {
  index: number;
  /** The step's `id` when it is text. */
  id: string | undefined;
  kind: "model" | "run" | undefined;
  raw: Record<string, unknown>;
  /** `["jobs", JOB, "steps", index]`. */
  path: PathSegment[];
}

export interface JobView {
  id: string;
  raw: Record<string, unknown>;
  steps: StepView[];
}

export function jobsOf(data: unknown): JobView[] {
  if (!isRecord(data) || !isRecord(data.jobs)) return [];
  const jobs: JobView[] = [];
  for (const [id, raw] of Object.entries(data.jobs)) {
    if (!isRecord(raw)) continue;
    const steps: StepView[] = [];
    if (Array.isArray(raw.steps)) {
      raw.steps.forEach((step: unknown, index) => {
        if (!isRecord(step)) return;
        // A step with both `model` and `run` is neither: the schema reports it, the rules skip it.
        const isRun = "run" in step;
        const isModel = "model" in step || "input" in step;
        const kind = isRun && !isModel ? "run" : isModel && !isRun ? "model" : undefined;
        steps.push({
          index,
          id: typeof step.id === "string" ? step.id : undefined,
          kind,
          raw: step,
          path: ["jobs", id, "steps", index],
        });
      });
    }
    jobs.push({ id, raw, steps });
  }
  return jobs;
}

/** Where a template is written decides what it may read. */
export type TemplateScope = "outputs" | "key" | "step";

export interface TemplateSite {
  text: string;
  /** Path of the string inside the document. */
  path: PathSegment[];
  scope: TemplateScope;
  job: JobView | undefined;
  step: StepView | undefined;
}

/** Every string that may hold a template, with its scope. */
export function templateSites(data: unknown): TemplateSite[] {
  const sites: TemplateSite[] = [];
  if (!isRecord(data)) return sites;
  if (typeof data.outputs === "string") {
    sites.push({ text: data.outputs, path: ["outputs"], scope: "outputs", job: undefined, step: undefined });
  }
  for (const job of jobsOf(data)) {
    if (typeof job.raw.key === "string") {
      sites.push({ text: job.raw.key, path: ["jobs", job.id, "key"], scope: "key", job, step: undefined });
    }
    for (const step of job.steps) {
      for (const field of ["input", "run", "cwd", "env", "outputs"] as const) {
        forEachTemplateString(step.raw[field], (text, at) => {
          sites.push({ text, path: [...step.path, field, ...at], scope: "step", job, step });
        });
      }
    }
  }
  return sites;
}

/** Strings where a template is NOT expanded: one written there is a mistake worth reporting. */
export function literalSites(data: unknown): { text: string; path: PathSegment[]; what: string }[] {
  const sites: { text: string; path: PathSegment[]; what: string }[] = [];
  if (!isRecord(data)) return sites;
  const add = (value: unknown, path: PathSegment[], what: string): void =>
    forEachTemplateString(value, (text, at) => sites.push({ text, path: [...path, ...at], what }));
  add(data.name, ["name"], "`name`");
  add(data.vars, ["vars"], "`vars` (values are taken literally)");
  for (const job of jobsOf(data)) {
    add(job.raw.for_each, ["jobs", job.id, "for_each"], "`for_each`");
    for (const step of job.steps) {
      add(step.raw.model, [...step.path, "model"], "`model`");
      add(step.raw.needs, [...step.path, "needs"], "`needs`");
    }
  }
  return sites;
}
