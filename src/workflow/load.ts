/**
 * Loading a workflow file in stages (DESIGN practice 2), collecting every problem:
 * (a) YAML syntax, (b) structure against the JSON Schema, (c) normalization, (d) the named
 * semantic rules and `for_each` expansion, (e) each instance's model inputs. Only this
 * module makes a `Workflow`.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Diagnostic } from "../errors.js";
import { WorkflowInvalidError } from "../errors.js";
import type { ModelRegistry } from "../models/registry.js";
import { parseTemplateCached } from "../template/parse.js";
import { TOKEN_VARIABLES } from "../template/resolve.js";
import { DiagnosticSink, hasDiagnosticUnder } from "./diagnostics.js";
import { expandInstances, MAX_INSTANCES_PER_JOB, type ItemInput, type ItemsKind } from "./expand.js";
import { checkInstances, type StaticMediaInput } from "./instance-checks.js";
import { matrixItems, parseCsvItems, parseJsonlItems } from "./items.js";
import { fileStem, normalizeSteps, normalizeTopLevel } from "./normalize.js";
import { checkRules } from "./rules.js";
import { parseWorkflowSource, type SourceMap } from "./source.js";
import { checkStructure } from "./structure.js";
import { decodeUtf8 } from "./utf8.js";
import type { Job, JobFile, Workflow, WorkflowFile } from "./types.js";
import { isRecord, jobsOf, templateSites } from "./view.js";

export interface LoadWorkflowOptions {
  registry: ModelRegistry;
  /** `--var NAME=VALUE` overrides of the file's `vars`. */
  vars?: Readonly<Record<string, string>> | undefined;
  /** The environment templates read as `env.NAME` (default: process.env). The token variables are never read. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Collect every static media URL with its location (for `validate --preflight`). */
  collectMedia?: boolean | undefined;
}

export interface WorkflowCheck {
  /** The resolved workflow; undefined when there is any diagnostic. */
  workflow: Workflow | undefined;
  /** Every problem, sorted by file and position. */
  diagnostics: Diagnostic[];
  /** Static media URLs (only with `collectMedia`). */
  media: StaticMediaInput[];
}

interface ItemsResult {
  kind: ItemsKind;
  items: ItemInput[];
}

async function readItems(
  job: JobFile,
  jobId: string,
  displayFile: string,
  dir: string,
  source: SourceMap,
  sink: DiagnosticSink,
): Promise<ItemsResult | undefined> {
  const forEach = job.for_each;
  if (forEach === undefined) return { kind: "single", items: [] };
  const forEachPath = ["jobs", jobId, "for_each"];
  if (typeof forEach === "string") {
    const file = path.resolve(dir, forEach);
    const shownFile = path.join(path.dirname(displayFile), forEach);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      sink.add({
        message:
          code === "ENOENT"
            ? `jobs.${jobId}.for_each: items file ${JSON.stringify(forEach)} not found (looked for ${file})`
            : `jobs.${jobId}.for_each: cannot read items file ${JSON.stringify(forEach)}: ${(error as Error).message}`,
        location: source.locate(forEachPath),
        path: `jobs.${jobId}.for_each`,
        hint: "a for_each path is relative to the workflow file's folder",
      });
      return undefined;
    }
    const decoded = decodeUtf8(bytes, shownFile, `items file ${JSON.stringify(forEach)}`);
    if ("diagnostic" in decoded) {
      sink.add({ ...decoded.diagnostic, path: `jobs.${jobId}.for_each` });
      return undefined;
    }
    const text = decoded.text;
    const read = forEach.toLowerCase().endsWith(".jsonl")
      ? parseJsonlItems(text, shownFile)
      : parseCsvItems(text, shownFile);
    for (const diagnostic of read.diagnostics) sink.add({ ...diagnostic, path: `jobs.${jobId}.for_each` });
    if (read.diagnostics.length > 0) return undefined;
    return { kind: forEach.toLowerCase().endsWith(".jsonl") ? "jsonl" : "csv", items: read.items };
  }
  if (Array.isArray(forEach)) {
    return {
      kind: "list",
      items: forEach.map((item, index) => ({ item, origin: source.locate([...forEachPath, index]) })),
    };
  }
  const matrix = forEach.matrix ?? {};
  const combinations = Object.values(matrix).reduce((product, values) => product * values.length, 1);
  if (combinations > MAX_INSTANCES_PER_JOB) {
    sink.add({
      message: `jobs.${jobId}.for_each: the matrix has ${combinations} combinations; at most ${MAX_INSTANCES_PER_JOB} are allowed`,
      location: source.locate([...forEachPath, "matrix"]),
      path: `jobs.${jobId}.for_each.matrix`,
    });
    return undefined;
  }
  return { kind: "matrix", items: matrixItems(matrix).map((item) => ({ item, origin: undefined })) };
}

/** The environment variables the templates read, minus the token: all a Workflow keeps of the environment. */
function envRead(data: unknown, env: NodeJS.ProcessEnv): Record<string, string> {
  const read: Record<string, string> = {};
  for (const site of templateSites(data)) {
    let parts;
    try {
      parts = parseTemplateCached(site.text).parts;
    } catch {
      continue;
    }
    for (const part of parts) {
      const name = part.ref?.root === "env" ? part.ref.path[0] : undefined;
      if (typeof name !== "string" || TOKEN_VARIABLES.includes(name)) continue;
      const value = env[name];
      if (value !== undefined) read[name] = value;
    }
  }
  return read;
}

async function readWorkflowText(file: string): Promise<{ text: string } | { diagnostic: Diagnostic }> {
  try {
    return decodeUtf8(await readFile(file), file, "the workflow file");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : (error as Error).message;
    return {
      diagnostic: {
        message: `cannot read workflow file ${file}: ${reason}`,
        hint: "pass the path of a workflow YAML file",
      },
    };
  }
}

/**
 * Runs every stage and returns all problems at once; a Workflow only when there are none.
 * `file` is shown in messages as given (relative paths stay relative).
 */
export async function checkWorkflow(file: string, options: LoadWorkflowOptions): Promise<WorkflowCheck> {
  const media: StaticMediaInput[] = [];
  const read = await readWorkflowText(file);
  if ("diagnostic" in read) return { workflow: undefined, diagnostics: [read.diagnostic], media };

  // (a) syntax
  const parsed = parseWorkflowSource(read.text, file);
  if (parsed.data === undefined) return { workflow: undefined, diagnostics: parsed.diagnostics, media };
  const { data, source } = parsed;
  const sink = new DiagnosticSink();

  // (b) structure, and (d) the rules, which tolerate a document that failed (b)
  const structural = checkStructure(data, source);
  sink.addAll(structural);
  if (!isRecord(data)) return { workflow: undefined, diagnostics: sink.list(), media };
  const written = data as WorkflowFile;
  const env = options.env ?? process.env;
  const overrides = options.vars ?? {};
  const vars: Record<string, unknown> = { ...(isRecord(written.vars) ? written.vars : {}), ...overrides };
  const findings = checkRules({
    data,
    source,
    registry: options.registry,
    vars,
    varOverrides: overrides,
    env,
  });
  sink.addAll(findings);

  // (c) normalization, then expansion and (e) instance checks for every job still sound
  const absolute = path.resolve(file);
  const dir = path.dirname(absolute);
  const settings = normalizeTopLevel(written, fileStem(file));
  const templateEnv = envRead(data, env);
  const context = { vars, workflow: { name: settings.name }, env: templateEnv };
  // Later stages skip what is already known to be broken: a job whose shape failed the
  // schema, a for_each or key a rule refused, and (inside instance checks) any template a
  // rule refused. The rest is still checked, so one run reports problems of every stage.
  const topLevelSound =
    !["name", "vars", "outputs"].some((key) => hasDiagnosticUnder(structural, key)) &&
    !hasDiagnosticUnder(findings, "outputs");
  const jobs: Job[] = [];
  for (const view of jobsOf(data)) {
    const jobPath = `jobs.${view.id}`;
    if (
      hasDiagnosticUnder(structural, jobPath) ||
      hasDiagnosticUnder(findings, `${jobPath}.for_each`) ||
      hasDiagnosticUnder(findings, `${jobPath}.key`)
    ) {
      continue;
    }
    const jobFile = view.raw as JobFile;
    const items = await readItems(jobFile, view.id, file, dir, source, sink);
    if (!items) continue;
    const expanded = expandInstances({
      jobId: view.id,
      kind: items.kind,
      items: items.items,
      keyTemplate: jobFile.key,
      jobLocation: source.locate(["jobs", view.id, jobFile.for_each === undefined ? "steps" : "for_each"]),
      context,
    });
    for (const diagnostic of expanded.diagnostics) {
      sink.addGrouped(`${view.id}\u0000key\u0000${diagnostic.hint ?? ""}`, diagnostic);
    }
    if (expanded.diagnostics.length > 0) continue;
    const job: Job = {
      id: view.id,
      steps: normalizeSteps(jobFile, settings, options.registry),
      instances: expanded.instances,
    };
    jobs.push(job);
    if (!topLevelSound) continue;
    checkInstances({
      job,
      kind: items.kind,
      stepIndex: new Map(view.steps.map((step) => [step.id ?? "", step.index])),
      context,
      outputs: settings.outputs,
      source,
      sink,
      refused: (docPath) => hasDiagnosticUnder(findings, docPath),
      onMedia: options.collectMedia ? (found) => media.push(found) : undefined,
    });
  }

  const diagnostics = sink.list();
  if (diagnostics.length > 0) return { workflow: undefined, diagnostics, media };
  const workflow: Workflow = {
    version: 1,
    name: settings.name,
    file: absolute,
    dir,
    concurrency: settings.concurrency,
    limits: settings.limits,
    defaults: { retry: settings.retry, timeoutMs: settings.timeoutMs, poll: settings.poll },
    vars,
    env: templateEnv,
    outputs: settings.outputs,
    cache: { ttlMs: settings.cacheTtlMs },
    budget: settings.budget,
    jobs,
  };
  return { workflow, diagnostics, media };
}

/**
 * Loads, validates and expands a workflow file. Throws WorkflowInvalidError (exit 2) with
 * every diagnostic when anything is wrong; nothing is submitted before this succeeds.
 */
export async function loadWorkflow(file: string, options: LoadWorkflowOptions): Promise<Workflow> {
  const check = await checkWorkflow(file, options);
  if (!check.workflow) throw new WorkflowInvalidError(check.diagnostics);
  return check.workflow;
}
