/**
 * Stage (d): the semantic rules, each named, each reporting every violation with its
 * location. They read a defensive view of the document, so they also run on a file that
 * failed the schema and the user sees all problems at once.
 */
import path from "node:path";
import type { Diagnostic } from "../errors.js";
import type { ModelEntry } from "../models/types.js";
import type { ModelRegistry } from "../models/registry.js";
import {
  parseTemplateCached,
  TemplateSyntaxError,
  type PathSegment,
  type TemplateRef,
} from "../template/parse.js";
import { STEP_RESULT_FIELDS, TEMPLATE_ROOTS, TOKEN_VARIABLES } from "../template/resolve.js";
import { formatDocPath, type SourceMap } from "./source.js";
import { LONGEST_WAIT_MS, parseDuration } from "../util/duration.js";
import { didYouMean } from "./structure.js";
import {
  isRecord,
  jobsOf,
  literalSites,
  templateSites,
  type JobView,
  type StepView,
  type TemplateSite,
} from "./view.js";

export interface RuleInput {
  data: unknown;
  source: SourceMap;
  registry: ModelRegistry;
  /** The file's `vars` with `--var` overrides applied. */
  vars: Record<string, unknown>;
  /** The `--var` overrides as given. */
  varOverrides: Readonly<Record<string, string>>;
  env: Readonly<Record<string, string | undefined>>;
}

export interface WorkflowRule {
  name: string;
  /** What the rule guarantees once it passes. */
  description: string;
  check(input: RuleInput, report: (diagnostic: Diagnostic) => void): void;
}

const list = (names: Iterable<string>): string => [...names].map((name) => `\`${name}\``).join(", ");

function at(
  input: RuleInput,
  docPath: PathSegment[],
  message: string,
  hint?: string,
  part?: "key",
): Diagnostic {
  return {
    message,
    location: input.source.locate(docPath, part),
    path: formatDocPath(docPath) || undefined,
    hint,
  };
}

/** Each parseable reference of a site, or the syntax error that stops it. */
function refsOf(site: { text: string }): TemplateRef[] | TemplateSyntaxError {
  try {
    return parseTemplateCached(site.text).parts.flatMap((part) => (part.ref ? [part.ref] : []));
  } catch (error) {
    if (error instanceof TemplateSyntaxError) return error;
    throw error;
  }
}

function forEachRef(input: RuleInput, visit: (ref: TemplateRef, site: TemplateSite) => void): void {
  for (const site of templateSites(input.data)) {
    const refs = refsOf(site);
    if (!(refs instanceof TemplateSyntaxError)) for (const ref of refs) visit(ref, site);
  }
}

const templateSyntax: WorkflowRule = {
  name: "template-syntax",
  description:
    "every `${{ … }}` is closed and holds a plain path; templates appear only where they are expanded",
  check(input, report) {
    for (const site of templateSites(input.data)) {
      const refs = refsOf(site);
      if (refs instanceof TemplateSyntaxError)
        report(at(input, site.path, `${formatDocPath(site.path)}: ${refs.message}`));
    }
    for (const site of literalSites(input.data)) {
      report(
        at(
          input,
          site.path,
          `${formatDocPath(site.path)}: templates are not expanded in ${site.what}`,
          "templates work in `outputs`, a job's `key`, and a step's `input`, `run`, `cwd`, `env` and `outputs`",
        ),
      );
    }
  },
};

/** What each scope may read: `key` names the instance, so it cannot read the key or the run. */
const ROOTS_BY_SCOPE: Record<TemplateSite["scope"], readonly string[]> = {
  outputs: ["item", "vars", "workflow", "job", "run", "env"],
  key: ["item", "vars", "workflow", "job", "env"],
  step: TEMPLATE_ROOTS,
};

const FIELDS_OF_ROOT: Record<string, readonly string[]> = {
  workflow: ["name"],
  job: ["id", "key"],
  run: ["id", "date"],
};

const templateRoots: WorkflowRule = {
  name: "template-roots",
  description:
    "templates read only `item`, `vars`, `workflow.name`, `job.id|key`, `run.id|date`, `env` and `steps`, where allowed",
  check(input, report) {
    forEachRef(input, (ref, site) => {
      const where = formatDocPath(site.path);
      const allowed = ROOTS_BY_SCOPE[site.scope];
      if (!(TEMPLATE_ROOTS as readonly string[]).includes(ref.root)) {
        const guess = didYouMean(ref.root, TEMPLATE_ROOTS);
        report(
          at(
            input,
            site.path,
            `${where}: ${ref.source} reads unknown root \`${ref.root}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
            `templates read ${list(TEMPLATE_ROOTS)}`,
          ),
        );
        return;
      }
      if (!allowed.includes(ref.root)) {
        report(
          at(
            input,
            site.path,
            `${where}: ${ref.source} cannot be used here; ${site.scope === "key" ? "a job's `key`" : "`outputs`"} may read ${list(allowed)}`,
          ),
        );
        return;
      }
      const fields = FIELDS_OF_ROOT[ref.root];
      if (!fields) return;
      const [field, ...deeper] = ref.path;
      if (site.scope === "key" && ref.root === "job" && field === "key") {
        report(
          at(input, site.path, `${where}: ${ref.source}: a job's \`key\` cannot read the key it defines`),
        );
      } else if (typeof field !== "string" || !fields.includes(field)) {
        report(
          at(
            input,
            site.path,
            `${where}: ${ref.source}: \`${ref.root}\` has ${list(fields.map((f) => `${ref.root}.${f}`))}`,
          ),
        );
      } else if (deeper.length > 0) {
        report(
          at(input, site.path, `${where}: ${ref.source}: \`${ref.root}.${field}\` is text; it has no fields`),
        );
      }
    });
  },
};

const tokenVariable: WorkflowRule = {
  name: "token-variable",
  description: "no template reads the API token",
  check(input, report) {
    forEachRef(input, (ref, site) => {
      const name = ref.path[0];
      if (ref.root === "env" && typeof name === "string" && TOKEN_VARIABLES.includes(name)) {
        report(
          at(
            input,
            site.path,
            `${formatDocPath(site.path)}: ${ref.source} reads the API token; the token is never readable in templates`,
            "runflow sends the token to the API itself; it must not appear in inputs, commands or files",
          ),
        );
      }
    });
  },
};

function walkValue(
  value: unknown,
  segments: readonly PathSegment[],
): { ok: true } | { ok: false; at: number; keys: string[] } {
  let current = value;
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    if (Array.isArray(current) && typeof segment === "number" && segment < current.length)
      current = current[segment];
    else if (isRecord(current) && Object.hasOwn(current, String(segment))) current = current[String(segment)];
    else return { ok: false, at: index, keys: isRecord(current) ? Object.keys(current) : [] };
  }
  return { ok: true };
}

const varsAndEnv: WorkflowRule = {
  name: "vars-and-env",
  description: "every `vars.X` is declared (or passed with --var) and every `env.X` is set",
  check(input, report) {
    forEachRef(input, (ref, site) => {
      const where = formatDocPath(site.path);
      if (ref.root === "vars") {
        const found = walkValue(input.vars, ref.path);
        if (found.ok) return;
        const missing = String(ref.path[found.at] ?? "");
        const guess = didYouMean(missing, found.keys);
        report(
          at(
            input,
            site.path,
            `${where}: ${ref.source}: ${found.at === 0 ? "vars has" : `\`vars.${ref.path.slice(0, found.at).join(".")}\` has`} no \`${missing}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
            found.at === 0 ? `declare it under \`vars:\`, or pass \`--var ${missing}=VALUE\`` : undefined,
          ),
        );
      } else if (ref.root === "env") {
        const name = ref.path[0];
        if (typeof name === "string" && TOKEN_VARIABLES.includes(name)) return; // token-variable reports it
        if (typeof name !== "string" || ref.path.length !== 1) {
          report(at(input, site.path, `${where}: ${ref.source}: read one variable, e.g. \`env.HOME\``));
        } else if (input.env[name] === undefined) {
          report(
            at(
              input,
              site.path,
              `${where}: ${ref.source}: the environment variable \`${name}\` is not set`,
              `set ${name} before running runflow`,
            ),
          );
        }
      }
    });
  },
};

const varOverrides: WorkflowRule = {
  name: "var-overrides",
  description: "every `--var NAME=…` names a var that is declared or read by a template",
  check(input, report) {
    const declared = isRecord(input.data) && isRecord(input.data.vars) ? Object.keys(input.data.vars) : [];
    const read = new Set<string>();
    forEachRef(input, (ref) => {
      if (ref.root === "vars" && typeof ref.path[0] === "string") read.add(ref.path[0]);
    });
    for (const name of Object.keys(input.varOverrides)) {
      if (declared.includes(name) || read.has(name)) continue;
      const guess = didYouMean(name, [...new Set([...declared, ...read])]);
      report({
        message: `--var ${name}: the workflow has no var \`${name}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
        location: input.source.locate(["vars"]),
        path: `--var ${name}`,
        hint: declared.length > 0 ? `its vars are ${list(declared)}` : "it declares no `vars:`",
      });
    }
  },
};

/**
 * The program a run step starts is the one thing of a command line no quoting makes safe:
 * an item field that names it (`"${{ item.prog }}"` → `/bin/sh`) lets whoever wrote the
 * items run anything. The workflow's author decides it — written out, or in `vars`, which
 * `--var` (also the user's own choice) may override. Its arguments may still be templates.
 */
const runProgram: WorkflowRule = {
  name: "run-program",
  description:
    "a run step's program (`run[0]`) is written in the workflow or taken from `vars`, never from items, steps or the environment",
  check(input, report) {
    for (const job of jobsOf(input.data)) {
      for (const step of job.steps) {
        if (step.kind !== "run" || !Array.isArray(step.raw.run)) continue;
        const program: unknown = step.raw.run[0];
        if (typeof program !== "string") continue;
        const refs = refsOf({ text: program });
        if (refs instanceof TemplateSyntaxError) continue; // template-syntax reports it
        const foreign = refs.find((ref) => ref.root !== "vars");
        if (!foreign) continue;
        report(
          at(
            input,
            [...step.path, "run", 0],
            `${formatDocPath(step.path)}.run[0]: the program to run cannot come from ${foreign.source}; it must be written in the workflow or read from \`vars\``,
            "write the program's name (e.g. `ffmpeg`), or put it in `vars` (`--var` may override it); the arguments after it may read items and steps",
          ),
        );
      }
    }
  },
};

const duplicateStepIds: WorkflowRule = {
  name: "duplicate-step-ids",
  description: "step ids are unique within a job",
  check(input, report) {
    for (const job of jobsOf(input.data)) {
      const first = new Map<string, StepView>();
      for (const step of job.steps) {
        if (step.id === undefined) continue;
        const earlier = first.get(step.id);
        if (earlier) {
          report(
            at(
              input,
              [...step.path, "id"],
              `${formatDocPath(step.path)}: step id \`${step.id}\` is already used by ${formatDocPath(earlier.path)}`,
              "step ids name outputs and addresses (JOB/KEY/STEP); give each step its own",
            ),
          );
        } else first.set(step.id, step);
      }
    }
  },
};

/** The names a model step's `output` may have: from its catalog entry when it lists them. */
function modelOutputNames(entry: ModelEntry | undefined): string[] | undefined {
  const output = entry?.output_schema?.output;
  if (!isRecord(output) || !isRecord(output.properties)) return undefined;
  return Object.keys(output.properties);
}

function stepsById(job: JobView): Map<string, StepView> {
  const byId = new Map<string, StepView>();
  for (const step of job.steps) if (step.id !== undefined && !byId.has(step.id)) byId.set(step.id, step);
  return byId;
}

function checkStepField(ref: TemplateRef, target: StepView, input: RuleInput): string | undefined {
  const [, field, name] = ref.path;
  const fields = STEP_RESULT_FIELDS as readonly string[];
  if (typeof field !== "string" || !fields.includes(field)) {
    const guess = typeof field === "string" ? didYouMean(field, fields) : undefined;
    return `steps have ${list(fields)}${guess ? ` (did you mean \`${guess}\`?)` : ""}`;
  }
  if (target.kind === "model" && field === "stdout")
    return `\`${target.id}\` is a model step; only run steps have \`stdout\``;
  if (target.kind === "run" && (field === "output" || field === "request_id")) {
    return `\`${target.id}\` is a run step; it has \`files\` and \`stdout\`, not \`${field}\``;
  }
  if (typeof name !== "string") return undefined;
  if (target.kind === "run" && field === "files") {
    const outputs = isRecord(target.raw.outputs) ? Object.keys(target.raw.outputs) : [];
    if (!outputs.includes(name)) {
      return outputs.length > 0
        ? `run step \`${target.id}\` declares no output \`${name}\` (its outputs: ${list(outputs)})`
        : `run step \`${target.id}\` declares no \`outputs:\``;
    }
  }
  if (target.kind === "model" && (field === "output" || field === "files")) {
    const model = typeof target.raw.model === "string" ? target.raw.model : undefined;
    const names = modelOutputNames(model === undefined ? undefined : input.registry.get(model));
    if (names && !names.includes(name)) {
      const guess = didYouMean(name, names);
      return `model \`${model}\` has no output \`${name}\`${guess ? ` (did you mean \`${guess}\`?)` : ` (its outputs: ${list(names)})`}`;
    }
  }
  return undefined;
}

const stepReferences: WorkflowRule = {
  name: "step-references",
  description: "`${{ steps.X… }}` and `needs` name steps of the same job, and read fields those steps have",
  check(input, report) {
    const jobs = jobsOf(input.data);
    const unknownStep = (job: JobView, id: string): string => {
      const elsewhere = jobs.find((other) => other !== job && other.steps.some((step) => step.id === id));
      if (elsewhere)
        return `step \`${id}\` is in job \`${elsewhere.id}\`; a step can only use steps of its own job`;
      const guess = didYouMean(id, [...stepsById(job).keys()]);
      return `job \`${job.id}\` has no step \`${id}\`${guess ? ` (did you mean \`${guess}\`?)` : ` (its steps: ${list(stepsById(job).keys())})`}`;
    };
    forEachRef(input, (ref, site) => {
      if (ref.root !== "steps" || site.scope !== "step" || !site.job) return;
      const where = formatDocPath(site.path);
      const id = ref.path[0];
      if (typeof id !== "string") {
        report(at(input, site.path, `${where}: ${ref.source}: name a step, e.g. \`steps.ID.output.video\``));
        return;
      }
      const target = stepsById(site.job).get(id);
      if (!target) {
        report(at(input, site.path, `${where}: ${ref.source}: ${unknownStep(site.job, id)}`));
        return;
      }
      const problem = checkStepField(ref, target, input);
      if (problem) report(at(input, site.path, `${where}: ${ref.source}: ${problem}`));
    });
    for (const job of jobs) {
      const byId = stepsById(job);
      for (const step of job.steps) {
        if (!Array.isArray(step.raw.needs)) continue;
        step.raw.needs.forEach((need: unknown, index) => {
          if (typeof need === "string" && !byId.has(need)) {
            report(
              at(
                input,
                [...step.path, "needs", index],
                `${formatDocPath(step.path)}.needs: ${unknownStep(job, need)}`,
              ),
            );
          }
        });
      }
    }
  },
};

/** The steps each step waits for: `needs` and template references to known steps of its job, in that order. */
export function stepDependencies(job: JobView): Map<string, string[]> {
  const byId = stepsById(job);
  const deps = new Map<string, string[]>();
  for (const step of job.steps) {
    if (step.id === undefined || deps.has(step.id)) continue;
    const found = new Set<string>();
    if (Array.isArray(step.raw.needs))
      for (const need of step.raw.needs) if (typeof need === "string") found.add(need);
    for (const field of ["input", "run", "cwd", "env", "outputs"]) {
      const site = step.raw[field];
      for (const text of stringsIn(site)) {
        let refs: TemplateRef[] = [];
        try {
          refs = parseTemplateCached(text).parts.flatMap((part) => (part.ref ? [part.ref] : []));
        } catch {
          continue;
        }
        for (const ref of refs)
          if (ref.root === "steps" && typeof ref.path[0] === "string") found.add(ref.path[0]);
      }
    }
    deps.set(
      step.id,
      [...found].filter((id) => byId.has(id)),
    );
  }
  return deps;
}

function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return value.includes("${{") ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (isRecord(value)) return Object.values(value).flatMap(stringsIn);
  return [];
}

/** Every cycle once, each as the path that closes it (`a → b → a`), starting at its first declared step. */
export function findCycles(
  order: readonly string[],
  deps: ReadonlyMap<string, readonly string[]>,
): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (id: string): void => {
    state.set(id, "open");
    stack.push(id);
    for (const next of deps.get(id) ?? []) {
      if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(id, "done");
  };
  for (const id of order) if (!state.has(id)) visit(id);
  return cycles;
}

const stepCycles: WorkflowRule = {
  name: "step-cycles",
  description: "the steps of a job form no cycle",
  check(input, report) {
    for (const job of jobsOf(input.data)) {
      const deps = stepDependencies(job);
      const byId = stepsById(job);
      for (const cycle of findCycles([...deps.keys()], deps)) {
        const first = byId.get(cycle[0]!)!;
        report(
          at(
            input,
            [...first.path, "id"],
            `jobs.${job.id}: the steps form a cycle: ${cycle.join(" → ")}`,
            "a step cannot wait, directly or through others, for itself; remove one of these references or `needs`",
          ),
        );
      }
    }
  },
};

const knownModels: WorkflowRule = {
  name: "known-models",
  description: "every model (of a step or in `limits`) has a schema runflow knows",
  check(input, report) {
    const hint =
      "to add a model, drop its catalog entry (a JSON file) into schemas/models/ or a --models folder, or run `runflow models pull --search NAME`";
    const describeUnknown = (model: string): string => {
      const suggestions = input.registry.suggest(model);
      return `no schema for model "${model}"${suggestions.length > 0 ? `; did you mean ${suggestions.map((s) => `"${s}"`).join(" or ")}?` : ""}`;
    };
    for (const job of jobsOf(input.data)) {
      for (const step of job.steps) {
        const model = step.raw.model;
        if (typeof model === "string" && model !== "" && !input.registry.get(model)) {
          report(
            at(
              input,
              [...step.path, "model"],
              `${formatDocPath(step.path)}.model: ${describeUnknown(model)}`,
              hint,
            ),
          );
        }
      }
    }
    const limits = isRecord(input.data) ? input.data.limits : undefined;
    if (isRecord(limits)) {
      for (const model of Object.keys(limits)) {
        if (!input.registry.get(model)) {
          report(at(input, ["limits", model], `limits: ${describeUnknown(model)}`, hint, "key"));
        }
      }
    }
  },
};

const forEachFiles: WorkflowRule = {
  name: "for-each-files",
  description: "a `for_each` path names a `.csv` or `.jsonl` file",
  check(input, report) {
    for (const job of jobsOf(input.data)) {
      const forEach = job.raw.for_each;
      if (typeof forEach !== "string" || forEach === "") continue;
      const extension = path.extname(forEach).toLowerCase();
      if (extension !== ".csv" && extension !== ".jsonl") {
        report(
          at(
            input,
            ["jobs", job.id, "for_each"],
            `jobs.${job.id}.for_each: ${JSON.stringify(forEach)} is neither a .csv nor a .jsonl file`,
            "items come from a CSV file with a header row, or a JSONL file with one JSON object per line",
          ),
        );
      }
    }
  },
};

const itemWithoutForEach: WorkflowRule = {
  name: "item-needs-for-each",
  description: "`item` is read only in jobs that have a `for_each`",
  check(input, report) {
    forEachRef(input, (ref, site) => {
      if (ref.root !== "item") return;
      const jobs = site.job ? [site.job] : jobsOf(input.data);
      const without = jobs.filter((job) => job.raw.for_each === undefined);
      if (without.length === 0) return;
      report(
        at(
          input,
          site.path,
          `${formatDocPath(site.path)}: ${ref.source}: job${without.length > 1 ? "s" : ""} ${list(without.map((job) => job.id))} ha${without.length > 1 ? "ve" : "s"} no \`for_each\`, so there is no \`item\``,
        ),
      );
    });
  },
};

const defaultName: WorkflowRule = {
  name: "default-name",
  description: "a workflow without `name` has a file name usable as one",
  check(input, report) {
    if (isRecord(input.data) && input.data.name !== undefined) return;
    const stem = path.basename(input.source.file).replace(/\.[^.]*$/, "");
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stem) || stem.length > 100) {
      report({
        message: `the workflow has no \`name\`, and its file name ${JSON.stringify(stem)} cannot be one (letters, digits, \`.\`, \`_\` and \`-\` only)`,
        location: { file: input.source.file, line: 1, column: 1 },
        hint: "add `name: my-batch` to the file",
      });
    }
  },
};

/** The durations runflow waits for with a timer (a cache's `ttl` is only compared with dates). */
function timedDurations(data: unknown): { path: PathSegment[]; value: unknown }[] {
  if (!isRecord(data)) return [];
  const found: { path: PathSegment[]; value: unknown }[] = [];
  const pick = (owner: unknown, ownerPath: PathSegment[], keys: string[]) => {
    if (!isRecord(owner)) return;
    for (const key of keys)
      if (owner[key] !== undefined) found.push({ path: [...ownerPath, key], value: owner[key] });
  };
  const retryOf = (owner: unknown, ownerPath: PathSegment[]) => {
    if (isRecord(owner)) pick(owner.retry, [...ownerPath, "retry"], ["backoff", "max_backoff"]);
  };
  pick(data.defaults, ["defaults"], ["timeout"]);
  if (isRecord(data.defaults)) pick(data.defaults.poll, ["defaults", "poll"], ["interval", "max_interval"]);
  retryOf(data.defaults, ["defaults"]);
  for (const job of jobsOf(data)) {
    for (const step of job.steps) {
      pick(step.raw, step.path, ["timeout"]);
      retryOf(step.raw, step.path);
    }
  }
  return found;
}

const waitsInRange: WorkflowRule = {
  name: "waits-in-range",
  description: "every timeout, poll interval and retry backoff fits a timer (at most 24 days)",
  check(input, report) {
    for (const { path: docPath, value } of timedDurations(input.data)) {
      if (typeof value !== "string" && typeof value !== "number") continue;
      const ms = parseDuration(value);
      // Not a duration at all: the schema reports it.
      if (ms === undefined || ms <= LONGEST_WAIT_MS) continue;
      report(
        at(
          input,
          docPath,
          `${formatDocPath(docPath)}: ${JSON.stringify(value)} is longer than runflow can wait: at most 24d`,
          "write a shorter duration, e.g. `24h`",
        ),
      );
    }
  },
};

/** The rules, in the order their findings are most useful. */
export const WORKFLOW_RULES: readonly WorkflowRule[] = [
  templateSyntax,
  templateRoots,
  tokenVariable,
  runProgram,
  varsAndEnv,
  varOverrides,
  duplicateStepIds,
  stepReferences,
  stepCycles,
  knownModels,
  forEachFiles,
  itemWithoutForEach,
  waitsInRange,
  defaultName,
];

export function checkRules(input: RuleInput, rules: readonly WorkflowRule[] = WORKFLOW_RULES): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const rule of rules) rule.check(input, (diagnostic) => diagnostics.push(diagnostic));
  return diagnostics;
}
