/**
 * Stage (e): each instance's templates resolved with its item, and each model input checked
 * against the model's schema, before anything is submitted. A value read from an earlier
 * step is unknown until run time: its field is deferred (checked right before submission).
 *
 * Cost matters here (100,000 rows): inputs that do not read the item are checked once per
 * step, identical resolved inputs are checked once, and the ajv validators are compiled once.
 */
import type { Diagnostic, SourceLocation } from "../errors.js";
import type { InputIssue } from "../models/types.js";
import { mediaUrlFieldsOf } from "../models/media-rules.js";
import { validateModelInput } from "../models/validate-input.js";
import { setOwn } from "../template/data.js";
import type { PathSegment } from "../template/parse.js";
import {
  readsRoots,
  resolveKnown,
  TemplateResolutionError,
  type TemplateContext,
  type ValueGuard,
} from "../template/resolve.js";
import { pathValueGuard, UnsafePathValueError } from "../template/path-values.js";
import { SAME_PROBLEM_LIMIT, type DiagnosticSink } from "./diagnostics.js";
import { describeItem, type ItemsKind } from "./expand.js";
import type { SourceMap } from "./source.js";
import { formatDocPath } from "./source.js";
import type { Job, JobInstance, ModelStep } from "./types.js";

/**
 * `run.id` and `run.date` are known only when a run starts; validation resolves them to
 * stand-ins of the same shape, so a length limit is checked with a realistic value.
 */
export const PLACEHOLDER_RUN = { id: "20000101-000000-0000", date: "2000-01-01" } as const;

/** A media URL known before the run, and where it was written (for `--preflight`). */
export interface StaticMediaInput {
  url: string;
  model: string;
  field: string;
  location: SourceLocation;
  /** Document path of the input field, e.g. `jobs.teaser.steps[0].input.image_url`. */
  path: string;
  /** The step and instance, for messages: `jobs.teaser.steps[0] (animate), instance teaser/cat`. */
  where: string;
}

export interface InstanceCheckInput {
  job: Job;
  kind: ItemsKind;
  /** Declared index of each step (messages name `steps[N]`; `job.steps` is in dependency order). */
  stepIndex: ReadonlyMap<string, number>;
  context: Pick<TemplateContext, "vars" | "workflow" | "env">;
  /** The workflow's `outputs` template. */
  outputs: string;
  source: SourceMap;
  sink: DiagnosticSink;
  /** Whether a rule already refused what is at this document path: it is not checked again. */
  refused: (docPath: string) => boolean;
  /** Receives every static media URL once per (model, field, url); undefined: not collected. */
  onMedia?: ((media: StaticMediaInput) => void) | undefined;
}

const PER_INSTANCE_ROOTS = ["item", "job"];

/** Issues about which fields are written, not about their values: never specific to one instance. */
const WRITTEN_KINDS = new Set(["unknown_field", "required"]);

/** One context per job, moved from instance to instance: 100,000 rows must not mean 100,000 contexts. */
class InstanceContext {
  readonly context: TemplateContext;

  constructor(input: InstanceCheckInput) {
    this.context = {
      ...input.context,
      item: {},
      job: { id: input.job.id, key: "" },
      run: PLACEHOLDER_RUN,
      steps: {},
    };
  }

  at(instance: JobInstance): TemplateContext {
    this.context.item = instance.item;
    this.context.job.key = instance.key;
    return this.context;
  }
}

interface CheckedField {
  field: string;
  value: unknown;
  path: PathSegment[];
  /** It reads the item: a problem belongs to the instance's row, not only to the workflow text. */
  perInstance: boolean;
}

/** Validation results by resolved input, bounded: most 100,000-row batches have few repeats worth keeping. */
class IssueCache {
  readonly #map = new Map<string, InputIssue[]>();

  get(key: string, compute: () => InputIssue[]): InputIssue[] {
    let issues = this.#map.get(key);
    if (!issues) {
      issues = compute();
      if (this.#map.size >= 10_000) this.#map.clear();
      this.#map.set(key, issues);
    }
    return issues;
  }
}

/**
 * Template values missing in some instances. Missing in every instance, it is the template
 * that is wrong: one message at the template. Missing in some, it is those items: a few
 * messages at the items, then a count.
 */
class MissingValues {
  readonly #byTemplate = new Map<string, { count: number; listed: Diagnostic[]; everywhere: Diagnostic }>();

  record(key: string, atItem: () => Diagnostic, atTemplate: () => Diagnostic): void {
    let entry = this.#byTemplate.get(key);
    if (!entry) {
      entry = { count: 0, listed: [], everywhere: atTemplate() };
      this.#byTemplate.set(key, entry);
    }
    entry.count++;
    if (entry.listed.length < SAME_PROBLEM_LIMIT) entry.listed.push(atItem());
  }

  report(sink: DiagnosticSink, instances: number): void {
    for (const { count, listed, everywhere } of this.#byTemplate.values()) {
      if (count === instances) sink.add(everywhere);
      else sink.addTally(listed, count);
    }
  }
}

function checkModelStep(input: InstanceCheckInput, step: ModelStep): void {
  const { job, source, sink } = input;
  const stepPath: PathSegment[] = ["jobs", job.id, "steps", input.stepIndex.get(step.id) ?? 0];
  const stepLabel = `${formatDocPath(stepPath)} (${step.id})`;
  const deferred = new Set(step.deferredFields);
  const fields: CheckedField[] = [];
  for (const [field, value] of Object.entries(step.input)) {
    const path = [...stepPath, "input", field];
    // Refused by a rule: not resolved, and not reported missing either.
    if (input.refused(formatDocPath(path))) deferred.add(field);
    if (deferred.has(field)) continue;
    fields.push({ field, value, path, perInstance: readsRoots(value, PER_INSTANCE_ROOTS) });
  }
  const perInstance = fields.some((field) => field.perInstance);
  const instances = perInstance ? job.instances : job.instances.slice(0, 1);
  const mediaFields = new Set(mediaUrlFieldsOf(step.entry));
  const cache = new IssueCache();
  const seenMedia = new Set<string>();
  const reportedOnce = new Set<string>();
  const contexts = new InstanceContext(input);
  const missing = new MissingValues();

  instances.forEach((instance, index) => {
    const context = contexts.at(instance);
    // Built only when there is something to say: most instances have no problem.
    const instanceLabel = (): string =>
      perInstance
        ? `, instance ${job.id}/${instance.key} (${describeItem(input.kind, index, instance.origin)})`
        : "";
    const resolved: Record<string, unknown> = {};
    let resolvable = true;
    for (const field of fields) {
      try {
        setOwn(resolved, field.field, resolveKnown(field.value, context).value);
      } catch (error) {
        if (!(error instanceof TemplateResolutionError)) throw error;
        resolvable = false;
        const path = formatDocPath(field.path);
        missing.record(
          `${field.field}\u0000${error.template}`,
          () => ({
            message: `${stepLabel}${instanceLabel()}: input.${field.field}: ${error.message}`,
            location: instance.origin ?? source.locate(field.path),
            path,
          }),
          () => ({
            message: `${stepLabel}: input.${field.field}: ${error.message}${instances.length > 1 ? ` (in all ${instances.length} instances)` : ""}`,
            location: source.locate(field.path),
            path,
          }),
        );
      }
    }
    if (!resolvable) return;

    const issues = cache.get(
      JSON.stringify(resolved),
      () => validateModelInput(step.entry, resolved, { deferred }).issues,
    );
    const failed = new Set<string>();
    for (const issue of issues) {
      if (issue.field) failed.add(issue.field);
      const field = fields.find((candidate) => candidate.field === issue.field);
      const fieldPath = field?.path ?? [...stepPath, "input"];
      if (field?.perInstance && !WRITTEN_KINDS.has(issue.kind)) {
        sink.addGrouped(`${job.id}\u0000${step.id}\u0000${issue.field ?? ""}\u0000${issue.kind}`, {
          message: `${stepLabel}${instanceLabel()}: ${issue.message}`,
          location: instance.origin ?? source.locate(fieldPath),
          path: formatDocPath(fieldPath),
        });
        continue;
      }
      // A problem of the workflow text itself: the same for every instance, so said once.
      const id = `${issue.field ?? ""}\u0000${issue.kind}\u0000${issue.message}`;
      if (reportedOnce.has(id)) continue;
      reportedOnce.add(id);
      sink.add({
        message: `${stepLabel}: ${issue.message}`,
        location: source.locate(fieldPath, issue.kind === "unknown_field" ? "key" : "value"),
        path: formatDocPath(fieldPath),
      });
    }

    if (!input.onMedia) return;
    for (const field of fields) {
      const url = resolved[field.field];
      if (!mediaFields.has(field.field) || typeof url !== "string" || failed.has(field.field)) continue;
      const id = `${field.field}\u0000${url}`;
      if (seenMedia.has(id)) continue;
      seenMedia.add(id);
      input.onMedia({
        url,
        model: step.model,
        field: field.field,
        location: field.perInstance && instance.origin ? instance.origin : source.locate(field.path),
        path: formatDocPath(field.path),
        where: `${stepLabel}${instanceLabel()}`,
      });
    }
  });
  missing.report(sink, instances.length);
}

/** Templates outside model inputs that read the item (run argv, cwd, env, outputs): resolvable for every instance. */
function checkOtherTemplates(input: InstanceCheckInput): void {
  const { job, source, sink } = input;
  const sites: { value: unknown; path: PathSegment[]; guard: ValueGuard | undefined }[] = [];
  const add = (value: unknown, path: PathSegment[], isPath: boolean): void => {
    if (readsRoots(value, PER_INSTANCE_ROOTS) && !input.refused(formatDocPath(path)))
      sites.push({ value, path, guard: isPath ? pathValueGuard : undefined });
  };
  add(input.outputs, ["outputs"], true);
  for (const step of job.steps) {
    if (step.kind !== "run") continue;
    const stepPath: PathSegment[] = ["jobs", job.id, "steps", input.stepIndex.get(step.id) ?? 0];
    const fields = { run: step.run, cwd: step.cwd, env: step.env, outputs: step.outputs };
    for (const [name, value] of Object.entries(fields)) {
      add(value, [...stepPath, name], name === "cwd" || name === "outputs");
    }
  }
  if (sites.length === 0) return;
  const contexts = new InstanceContext(input);
  const missing = new MissingValues();
  job.instances.forEach((instance, index) => {
    const context = contexts.at(instance);
    for (const site of sites) {
      try {
        resolveKnown(site.value, context, site.guard);
      } catch (error) {
        if (!(error instanceof TemplateResolutionError)) throw error;
        const where = formatDocPath(site.path);
        if (error instanceof UnsafePathValueError) {
          // The item's data is at fault, not the template: said at the item, however many.
          sink.addGrouped(`${job.id}\u0000${where}\u0000unsafe-path`, {
            message: `${where}, instance ${job.id}/${instance.key} (${describeItem(input.kind, index, instance.origin)}): ${error.message}`,
            location: instance.origin ?? source.locate(site.path),
            path: where,
            hint: "paths may read item data that names a folder or file (`cats/tabby`), never one that climbs out (`..`, `/abs`)",
          });
          continue;
        }
        missing.record(
          `${where}\u0000${error.template}`,
          () => ({
            message: `${where}, instance ${job.id}/${instance.key} (${describeItem(input.kind, index, instance.origin)}): ${error.message}`,
            location: instance.origin ?? source.locate(site.path),
            path: where,
          }),
          () => ({
            message: `${where}: ${error.message}${job.instances.length > 1 ? ` (in all ${job.instances.length} instances)` : ""}`,
            location: source.locate(site.path),
            path: where,
          }),
        );
      }
    }
  });
  missing.report(sink, job.instances.length);
}

/** Resolves and checks every instance of one job; problems go to `input.sink`. */
export function checkInstances(input: InstanceCheckInput): void {
  for (const step of input.job.steps) if (step.kind === "model") checkModelStep(input, step);
  checkOtherTemplates(input);
}
