/**
 * The `apply` use case (SPEC §2, §4–§5): validate the workflow and preflight its static
 * media (exit 2 before anything is submitted), take the workflow's lock (exit 3), plan with
 * what earlier runs left (reuse), record the run, execute it, record how it ended.
 *
 * The flow only: every effect comes from its ports (use-case-ports.ts), which the
 * composition root (src/app/) builds. Everything from the lock on is locked-run.ts, which
 * `retry` shares.
 */
import path from "node:path";
import { UsageError, WorkflowInvalidError } from "../errors.js";
import type { ModelRegistry } from "../models/registry.js";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import type { ModelPriceAnswer } from "../api/answers.js";
import { planInstances, planModelCounts, planTotals, planWorkflow } from "../plan/plan.js";
import type { StateStore } from "../store/port.js";
import { checkWorkflow, type StaticMediaInput, type Workflow } from "../workflow/index.js";
import type { EngineApi } from "./deps.js";
import { preflightMedia } from "./preflight.js";
import { priorStateAt } from "./prior-runs.js";
import { DEFAULT_STATE_PATH } from "./state-path.js";
import type { LockedOutcome } from "./locked-run.js";
import { closeStore, openStoreAt } from "./store-session.js";
import type { ApiTarget, Placed, RunPorts } from "./use-case-ports.js";

export type { ApiTarget };

export interface ApplyRequest {
  /** The workflow file as the user named it. */
  file: string;
  /** Relative paths (the file, the state database) start here. Default process.cwd(). */
  cwd?: string | undefined;
  /** The state database (`--state`); default state/runflow.db. */
  statePath?: string | undefined;
  vars?: Readonly<Record<string, string>> | undefined;
  only?: readonly string[] | undefined;
  fresh?: boolean | undefined;
  concurrency?: number | undefined;
  download?: boolean | undefined;
  wait?: boolean | undefined;
  /** Extra model schema folders (`--models`). */
  models?: readonly string[] | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Run against this API instead of the environment's (`--emulator`). */
  api?: ApiTarget | undefined;
  /** `--max-cost`, in micro-dollars: overrides the workflow's `budget.max_cost`. */
  maxCostMicros?: number | undefined;
}

export interface ApplyOutcome extends LockedOutcome {
  /** Where the state store is: the absolute path of the database (or the URL given). */
  statePath: string;
}

export { DEFAULT_STATE_PATH };

/**
 * What to do about a media host that gave no answer: the var that names it and what to pass
 * instead. Under `--emulator` (`emulatorUrl`), also that the emulator serves only its own
 * test media — it cannot stand in for a host on the internet.
 */
export function unreachableMediaHint(
  origin: string,
  vars: Readonly<Record<string, unknown>>,
  emulatorUrl: string | undefined,
): string {
  const names = Object.entries(vars)
    .filter(
      ([, value]) => typeof value === "string" && URL.canParse(value) && new URL(value).origin === origin,
    )
    .map(([name]) => name);
  const [name] = names;
  const where =
    name === undefined
      ? `${origin} gave no answer: check the URLs on it and this machine's network`
      : `${origin} (vars.${name}) gave no answer: pass --var ${name}=URL of a host this machine can reach`;
  if (emulatorUrl === undefined) return where;
  return (
    `${where}. The emulator serves only its test media, ${emulatorUrl}/media/image.png?w=W&h=H and /media/video.mp4` +
    (name === undefined ? "" : ` (--var ${name}=${emulatorUrl} when the paths are those)`)
  );
}

/** Loads and validates the workflow: exit 2 before anything runs. */
async function loadValid(
  file: string,
  request: Placed<ApplyRequest>,
  registry: ModelRegistry,
): Promise<{ workflow: Workflow; media: readonly StaticMediaInput[] }> {
  const check = await checkWorkflow(file, {
    registry,
    vars: request.vars,
    env: request.env,
    collectMedia: true,
  });
  if (!check.workflow) throw new WorkflowInvalidError(check.diagnostics);
  return { workflow: check.workflow, media: check.media };
}

/** Preflights the workflow's static media: exit 2 (WorkflowInvalidError) before anything is submitted. */
async function preflightChecked(
  workflow: Workflow,
  media: readonly StaticMediaInput[],
  request: Placed<ApplyRequest>,
  registry: ModelRegistry,
  ports: RunPorts,
): Promise<void> {
  const vars = workflow.vars;
  const preflight = await preflightMedia(media, registry, {
    transport: ports.probe,
    unreachableHint: (origin) => unreachableMediaHint(origin, vars, request.api?.baseUrl),
  });
  if (preflight.length > 0) {
    throw new WorkflowInvalidError(preflight, {
      hint: "fix the media (or the URLs) above; nothing was submitted",
    });
  }
}

/**
 * The prices of the models the run will use, asked of the API at once (a read, never a
 * submission), so their round trip overlaps the preflight's instead of following the lock
 * and the plan. Undefined when that cannot be asked yet (no token, a base URL runflow
 * refuses, an unknown `--only` job): the run then meets that error, or asks, where it
 * always did. A rejection waits for the run's price reading, which says what went wrong.
 */
function askPricesEarly(
  workflow: Workflow,
  request: Placed<ApplyRequest>,
  ports: RunPorts,
): ReadonlyMap<string, Promise<ModelPriceAnswer | undefined>> | undefined {
  if (ports.cluster) return undefined;
  let models: string[];
  let price: NonNullable<EngineApi["price"]> | undefined;
  try {
    ports.api.origin();
    models = Object.keys(planModelCounts(workflow, request.only ?? []));
    const api = ports.api.client({ poll: planWorkflow(workflow).poll });
    price = api.price?.bind(api);
  } catch {
    return undefined;
  }
  if (!price) return undefined;
  const signal = ports.control?.submitSignal;
  const asked = new Map<string, Promise<ModelPriceAnswer | undefined>>();
  for (const model of models) {
    const answer = price(model, signal ? { signal } : {});
    // Handled by the run's price reading; until then (or when the preflight refuses the
    // workflow) a failure must not count as unhandled.
    answer.catch(() => undefined);
    asked.set(model, answer);
  }
  return asked;
}

/**
 * The job instances the workflow's latest run left unfinished (undefined when there are
 * none): a resumed apply plans them first, so its first requests go out before the
 * thousands of steps it only takes over are planned.
 */
async function unfinishedBefore(
  store: StateStore,
  workflowName: string,
): Promise<ReadonlySet<string> | undefined> {
  const latest = await store.runs.latest(workflowName);
  if (!latest) return undefined;
  const unfinished = await store.runs.unfinishedInstances(latest.id);
  return unfinished.size > 0 ? unfinished : undefined;
}

export async function applyWorkflow(request: Placed<ApplyRequest>, ports: RunPorts): Promise<ApplyOutcome> {
  const cwd = request.cwd;
  if (
    request.concurrency !== undefined &&
    !(Number.isInteger(request.concurrency) && request.concurrency >= 1)
  ) {
    throw new UsageError(`Expected \`--concurrency\` to be an integer ≥ 1, got \`${request.concurrency}\``);
  }
  const registry = ports.models();
  const valid = await loadValid(path.resolve(cwd, request.file), request, registry);
  // Held only until it is planned: with 100,000 items, the run should not keep them all.
  let toPlan: Workflow | undefined = valid.workflow;
  const workflowName = toPlan.name;
  const cacheTtlMs = toPlan.cache.ttlMs;
  const budget = {
    maxMicros: request.maxCostMicros ?? toPlan.budget.maxMicros,
    assume: toPlan.budget.assume,
  };

  // The preflight's probes wait on media hosts: meanwhile the prices are asked of the API
  // and the state store opens. Neither submits nor records anything; the preflight's
  // verdict still comes first (exit 2), and the lock (exit 3) after it, as before.
  const preflight = preflightChecked(toPlan, valid.media, request, registry, ports);
  preflight.catch(() => undefined);
  const earlyPrices = askPricesEarly(toPlan, request, ports);
  // The probes' requests go on their way before the store's opening (synchronous work, for
  // SQLite) takes the event loop, so that their answers travel meanwhile. Two turns: the
  // first ends this one; in the second the loop polls, sees the probes' new connections
  // open and writes their requests. After one turn only, they waited for the store.
  await setImmediatePromise();
  await setImmediatePromise();
  const opening = openStoreAt(ports.openStore, request.statePath, request);
  opening.catch(() => undefined);
  // The run's own code (the lock, recording, the executor) is loaded meanwhile too, not
  // before the first requests (docs/decisions.md "Start-up").
  const running = import("./locked-run.js");
  running.catch(() => undefined);
  // On a shared state, the queues are checked meanwhile as well (BullMQ loaded, its
  // connection made): a read, like the prices; its verdict is taken after the preflight's,
  // where the run checks them (locked-run.ts), before the lock.
  ports.cluster?.checkQueues().catch(() => undefined);
  try {
    await preflight;
  } catch (error) {
    await opening.then(({ store }) => closeStore(store, true)).catch(() => undefined);
    throw error;
  }
  const { store, path: statePath } = await opening;
  let failed = false;
  try {
    const { runLocked } = await running;
    const outcome = await runLocked(
      store,
      {
        kind: "apply",
        workflowName,
        file: request.file,
        wait: request.wait ?? false,
        options: {
          concurrency: request.concurrency,
          fresh: request.fresh ?? false,
          only: request.only ?? [],
          vars: request.vars ?? {},
          download: request.download ?? true,
          emulator: request.api !== undefined,
          cacheTtlMs,
          maxCostMicros: budget.maxMicros,
          // A retry of this run keeps to the same budget, with the same assumptions (retry.ts).
          ...(Object.keys(budget.assume).length > 0 ? { budgetAssume: budget.assume } : {}),
        },
        plan: async (lockedStore, runId, now, apiOrigin) => {
          const workflow = toPlan!;
          // Held by the stream only until it is planned: 100,000 items need not stay.
          toPlan = undefined;
          const options = { runId, now, fresh: request.fresh ?? false, only: request.only ?? [] };
          const first = request.fresh ? undefined : await unfinishedBefore(lockedStore, workflow.name);
          // The planner is synchronous: it reads earlier runs through the store's lookup.
          const prior = await lockedStore.history.priorRuns(workflow.name);
          return {
            runId,
            createdAt: now,
            workflow: planWorkflow(workflow),
            totals: {
              ...planTotals(workflow, options.only),
              models: planModelCounts(workflow, options.only),
            },
            instances: planInstances(
              workflow,
              priorStateAt(prior, apiOrigin, { fresh: request.fresh, unfinished: false }),
              {
                ...options,
                later: first && ((instance: string) => !first.has(instance)),
              },
            ),
          };
        },
        execute: {
          concurrency: request.concurrency,
          fresh: request.fresh,
          download: request.download,
          cacheTtlMs,
        },
        registry,
        cost: budget,
        prices: earlyPrices,
      },
      ports,
    );
    return { ...outcome, statePath };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await closeStore(store, failed);
  }
}
