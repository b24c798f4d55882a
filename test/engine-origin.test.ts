/**
 * A request left running at one billing API, and a run through another base URL (a proxy of
 * the same account, a staging host…): SPEC §5, never pay twice. The emulator on loopback
 * stands in for both, under two origin names that are not emulators (ApiTarget.origin).
 */
import path from "node:path";
import { describe, expect, test } from "vitest";
import { RunComfyClient } from "../src/api/client.js";
import { EventBus } from "../src/engine/events.js";
import { priorStateAt } from "../src/engine/prior-runs.js";
import { beginRun } from "../src/engine/run-lifecycle.js";
import { sqliteStateStoreOf } from "../src/store/index.js";
import { loadModelRegistry } from "../src/models/registry.js";
import { emptyPriorState, planRun } from "../src/plan/index.js";
import { systemClock } from "../src/util/clock.js";
import { loadWorkflow } from "../src/workflow/index.js";
import {
  apply,
  chainWorkflow,
  emulator,
  items,
  openStore,
  tempDir,
  TEST_TOKEN,
  writeFiles,
} from "./engine-harness.js";

const ONE = "https://one.example";
const TWO = "https://two.example";

describe("a request left at another billing API", () => {
  test("holds its step as unknown (nothing polled there, nothing paid twice) until an apply at that API collects it", async () => {
    const api = await emulator({ duration: 200 });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(1), mediaBase: api.url }) });
    const store = openStore(dir);

    // A run at ONE died with its first request submitted and recorded.
    const workflow = await loadWorkflow(path.join(dir, "chain.yaml"), {
      registry: loadModelRegistry(),
      env: {},
    });
    const plan = planRun(workflow, emptyPriorState, { runId: "dead-run", now: Date.now() });
    await beginRun({ store: sqliteStateStoreOf(store), events: new EventBus(), clock: systemClock }, plan, {
      kind: "apply",
      file: "chain.yaml",
      options: {},
      concurrency: 4,
      apiOrigin: ONE,
    });
    const animate = plan.steps.find((step) => step.decision === "submit")!;
    const key = { runId: "dead-run", address: animate.address, attempt: 1 };
    store.startAttempt({
      ...key,
      workflowName: "chain",
      fingerprint: animate.fingerprint!,
      startedAt: Date.now(),
    });
    const answer = await new RunComfyClient({ baseUrl: api.url, token: TEST_TOKEN }).submit(
      animate.model!,
      animate.body!,
    );
    if (answer.kind !== "submitted") throw new Error("the emulator did not take the submission");
    store.recordRequestId(key, answer.requestId, Date.now());

    // The plan a run at TWO makes says what it does.
    const planned = planRun(workflow, priorStateAt(store, TWO), { runId: "preview", now: Date.now() });
    expect(planned.counts).toMatchObject({ submit: 0, unknown: 1, deferred: 1 });

    const atTwo = await apply(dir, "chain.yaml", api, {
      api: { baseUrl: api.url, token: TEST_TOKEN, origin: TWO },
    });
    expect(atTwo.exitCode).toBe(1);
    expect(atTwo.counts).toEqual({ unknown: 1, blocked: 1 });
    expect(api.submissions().total).toBe(1);
    expect(
      api.requestLog().filter((call) => call.endpoint === "status" || call.endpoint === "result"),
    ).toEqual([]);
    expect(store.getStep(atTwo.runId, animate.address)?.error).toBe(
      `request ${answer.requestId} of run dead-run, made at ${ONE}, may still be running there; it is not sent here, ` +
        "which could pay twice: apply against that API to collect it (`runflow retry --resubmit-unknown` sends it here)",
    );
    const notices = atTwo.events.flatMap((event) => (event.event === "notice" ? [event.message] : []));
    expect(notices).toContain(
      `run dead-run has 1 request made at ${ONE} still unfinished; this run does not collect them ` +
        "(their steps are held as unknown here rather than paid for twice); apply against that API to collect them",
    );

    const atOne = await apply(dir, "chain.yaml", api, {
      api: { baseUrl: api.url, token: TEST_TOKEN, origin: ONE },
    });
    expect(atOne.exitCode).toBe(0);
    expect(atOne.counts).toEqual({ succeeded: 2 });
    expect(store.getAttempts(atOne.runId, animate.address)[0]?.reattachedFromRun).toBe("dead-run");
    expect(api.submissions().byBody.map((group) => group.count)).toEqual([1, 1]);
    // The dead run's work is done: it says by whom.
    expect(store.getRun("dead-run")?.finishedByRun).toBe(atOne.runId);
  });
});
