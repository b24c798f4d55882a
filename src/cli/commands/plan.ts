/**
 * `runflow plan <file>` and `runflow apply <file> --dry-run` (SPEC §2): what `apply` would do,
 * step by step — reuse, re-attach, submit, hold as unknown — against the API it would run
 * at, with the exact request bodies. One code path for both: the planner `apply` runs, with
 * what the state database holds, seen from that API (engine/prior-runs.ts).
 *
 * A plan only reads: the state database is opened read-only (never created, never locked,
 * never upgraded in place), and a missing one means nothing to reuse.
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { describeOrigin, EMBEDDED_EMULATOR_ORIGIN } from "../../api/origin.js";
import { apiOriginFor } from "../../app/api-target.js";
import { heldBecause, priorStateAt, unfinishedElsewhere } from "../../engine/prior-runs.js";
import { RunComfyClient } from "../../api/client.js";
import { readApiToken } from "../../api/env.js";
import { estimateLines, estimateToJson } from "../../cost/estimate.js";
import { microsFromUsd } from "../../cost/money.js";
import { readPrices, requestEstimates, type PriceSource } from "../../engine/prices.js";
import { loadModelRegistry } from "../../models/registry.js";
import { planEstimate, planModelUse } from "../../plan/estimate.js";
import { emptyPriorState, planRun, type Plan } from "../../plan/index.js";
import { planSummaryLines, planToJson } from "../../render/plan.js";
import { openStateStore } from "../../app/open-store.js";
import { isPostgresLocation, resolveStateLocation } from "../../store/location.js";
import type { StateStore } from "../../store/port.js";
import { checkWorkflow } from "../../workflow/index.js";
import { parseVarOverrides } from "../../workflow/var-overrides.js";
import {
  collectRepeatable,
  commandOutput,
  DEFAULT_STATE_PATH,
  globalOptions,
  processOutput,
  type Output,
} from "../context.js";
import { planEmulatorVars } from "../emulator-media-host.js";
import { diagnosticLines, diagnosticToJson, WorkflowRejectedError } from "./validate.js";

export interface PlanCommandOptions {
  /** `--var NAME=VALUE`, as given. */
  var?: string[] | undefined;
  /** `--only JOB[/STEP]`, as given. */
  only?: string[] | undefined;
  fresh?: boolean | undefined;
  json?: boolean | undefined;
  /** Plan against the in-process emulator `apply --emulator` starts. */
  emulator?: boolean | undefined;
  /** Extra model schema folders (`--models`). */
  models?: string[] | undefined;
  /** The state database (`--state`); relative to the current folder. */
  state?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** The run id templates see as `run.id` (default: `plan-` and the time). */
  runId?: string | undefined;
  /** Now, in ms since the epoch (default: the clock). */
  now?: number | undefined;
}

/** The state database, read-only, or undefined when there is none yet. */
async function openForPlanning(statePath: string): Promise<StateStore | undefined> {
  if (!isPostgresLocation(statePath) && !existsSync(statePath)) return undefined;
  return openStateStore(statePath, { readonly: true, neverWrite: true });
}

/**
 * Where a plan reads prices: the API it plans against when a token is set; the in-process
 * emulator's own prices for `--emulator` (it starts with its defaults); otherwise none, and
 * the prices recorded from that API before are used.
 */
function priceSource(apiOrigin: string, env: NodeJS.ProcessEnv): PriceSource | undefined {
  if (apiOrigin === EMBEDDED_EMULATOR_ORIGIN) {
    return async (model) => {
      // Loaded only here: no other plan needs the emulator's code.
      const { DEFAULT_CONFIG } = await import("../../emulator/config.js");
      const { priceOf } = await import("../../emulator/prices.js");
      const price = priceOf(DEFAULT_CONFIG, model);
      return price && { modelId: model, micros: microsFromUsd(price.usd) ?? 0, unit: price.unit };
    };
  }
  const token = readApiToken(env);
  if (token === undefined) return undefined;
  const baseUrl = env.RUNCOMFY_BASE_URL?.trim();
  const client = new RunComfyClient({ token, ...(baseUrl ? { baseUrl } : {}), retry: { attempts: 2 } });
  return (model) => client.price(model, { signal: AbortSignal.timeout(PRICE_TIMEOUT_MS) });
}

/** A plan does not wait long for a price: without one it says unknown. */
const PRICE_TIMEOUT_MS = 10_000;

/** Notes under the headline: the API it plans against, and requests left at another. */
function contextLines(plan: Plan, notes: readonly string[]): string[] {
  return [`against ${describeOrigin(plan.apiOrigin)}`, ...notes.map((note) => `note: ${note}`)];
}

/** Per held step, why: what `apply` would record as its error. */
function heldLines(plan: Plan): string[] {
  const lines: string[] = [];
  for (const step of plan.steps) {
    if (step.decision === "unknown" && step.unfinished && step.unfinished.kind !== "reattach")
      lines.push(`  ${step.address}: ${heldBecause(step.unfinished)}`);
  }
  return lines.length > 0 ? ["held as unknown (not sent):", ...lines] : [];
}

/**
 * Loads, plans and prints what `apply` would do. Throws WorkflowRejectedError (exit 2) after
 * printing the diagnostics when the workflow is invalid.
 */
export async function runPlanCommand(
  file: string,
  options: PlanCommandOptions,
  output: Output = processOutput,
): Promise<Plan> {
  const env = options.env ?? process.env;
  // `--emulator` sets the media host the emulator serves, under the user's own `--var`s.
  const presetVars = options.emulator ? planEmulatorVars(file, options.var) : {};
  const vars = { ...presetVars, ...parseVarOverrides(options.var) };
  const apiOrigin = options.emulator ? EMBEDDED_EMULATOR_ORIGIN : apiOriginFor({ env });
  const registry = loadModelRegistry({ dirs: options.models ?? [] });
  const check = await checkWorkflow(file, { registry, vars, env });
  if (!check.workflow) {
    if (options.json) {
      const report = { ok: false, diagnostics: check.diagnostics.map((d) => diagnosticToJson(d, file)) };
      output.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      for (const diagnostic of check.diagnostics) output.stderr(`${diagnosticLines(diagnostic, file)}\n`);
    }
    throw new WorkflowRejectedError(file, check.diagnostics.length);
  }
  const workflow = check.workflow;
  const store = await openForPlanning(
    resolveStateLocation(process.cwd(), options.state ?? DEFAULT_STATE_PATH),
  );
  try {
    const now = options.now ?? Date.now();
    // The planner is synchronous: it reads earlier runs through the store's lookup.
    const prior = store && (await store.history.priorRuns(workflow.name));
    const plan = planRun(
      workflow,
      prior ? priorStateAt(prior, apiOrigin, { fresh: options.fresh }) : emptyPriorState,
      {
        runId: options.runId ?? `plan-${new Date(now).toISOString().replace(/[-:]/g, "").slice(0, 15)}`,
        now,
        fresh: options.fresh === true,
        only: options.only ?? [],
        apiOrigin,
      },
    );
    const notes = prior ? unfinishedElsewhere(prior, workflow.name, apiOrigin) : [];
    const models = [...planModelUse(plan).keys()];
    const source = priceSource(apiOrigin, env);
    const read = await readPrices(models, {
      apiOrigin,
      source,
      // Read only: a plan records nothing, not even the prices it read.
      store: store && { pricesAt: (origin: string) => store.history.pricesAt(origin) },
      now,
    });
    notes.push(...read.notes);
    const learned = new Map(
      await Promise.all(
        models.map(async (model) => [model, await store?.history.learnedCost(model, apiOrigin)] as const),
      ),
    );
    const perRequest = requestEstimates(
      models,
      read.prices,
      (model) => learned.get(model),
      workflow.budget.assume,
      source ? undefined : "no price recorded from this API (set RUNCOMFY_API_TOKEN to read it)",
    );
    const estimate = planEstimate(plan, perRequest);
    if (options.json) {
      const withNotes: Plan & { notes?: string[]; estimate: unknown } = {
        ...plan,
        estimate: estimateToJson(estimate),
        ...(notes.length > 0 ? { notes } : {}),
      };
      output.stdout(`${planToJson(withNotes)}\n`);
    } else {
      const [headline = "", ...rest] = planSummaryLines(plan);
      const lines = [headline, ...contextLines(plan, notes), ...estimateLines(estimate), ...heldLines(plan)];
      output.stdout(`${[...lines, ...rest].join("\n")}\n`);
    }
    return plan;
  } finally {
    await store?.close();
  }
}

/** Its arguments, options and action, on the command commands/index.ts declares (name, description). */
export function define(command: Command): void {
  command
    .argument("<file>", "the workflow YAML file")
    .option("--var <name=value>", "override a var of the workflow (repeatable)", collectRepeatable)
    .option(
      "--only <job[/step]>",
      "only this job or step, and what it depends on (repeatable)",
      collectRepeatable,
    )
    .option("--fresh", "reuse nothing from earlier runs")
    .option("--emulator", "plan against the in-process emulator `apply --emulator` runs at")
    .action(async function (
      this: Command,
      file: string,
      local: { var?: string[]; only?: string[]; fresh?: boolean; emulator?: boolean },
    ) {
      const globals = globalOptions(this);
      await runPlanCommand(
        file,
        {
          var: local.var,
          only: local.only,
          fresh: local.fresh,
          emulator: local.emulator,
          json: globals.json,
          models: globals.models,
          state: globals.state,
        },
        commandOutput(this),
      );
    });
}
