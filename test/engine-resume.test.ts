import path from "node:path";
import { describe, expect, test } from "vitest";
import { RunComfyClient } from "../src/api/client.js";
import { apiOriginOf } from "../src/api/origin.js";
import { cancelRun } from "../src/app/index.js";
import { EventBus } from "../src/engine/events.js";
import { RunControl } from "../src/engine/run-control.js";
import { beginRun } from "../src/engine/run-lifecycle.js";
import { loadModelRegistry } from "../src/models/registry.js";
import { emptyPriorState, planRun, type Plan } from "../src/plan/index.js";
import { sqliteStateStoreOf, type SqliteStore } from "../src/store/index.js";
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

/**
 * Leaves the state a process killed mid-run leaves: a run still `running`, with an attempt
 * per first step — submitted and recorded, or (`recorded: false`) sent with no id on record.
 */
async function deadRun(
  dir: string,
  file: string,
  store: SqliteStore,
  client: RunComfyClient | undefined,
  apiUrl: string,
): Promise<Plan> {
  const workflow = await loadWorkflow(path.join(dir, file), { registry: loadModelRegistry(), env: {} });
  const plan = planRun(workflow, emptyPriorState, { runId: "dead-run", now: Date.now() });
  await beginRun({ store: sqliteStateStoreOf(store), events: new EventBus(), clock: systemClock }, plan, {
    kind: "apply",
    file,
    options: {},
    concurrency: 4,
    apiOrigin: apiOriginOf(apiUrl),
  });
  for (const step of plan.steps) {
    if (step.decision !== "submit") continue;
    const key = { runId: plan.runId, address: step.address, attempt: 1 };
    store.startAttempt({
      ...key,
      workflowName: plan.workflow.name,
      fingerprint: step.fingerprint!,
      startedAt: Date.now(),
    });
    if (!client) continue;
    const answer = await client.submit(step.model!, step.body!);
    if (answer.kind !== "submitted") throw new Error("the emulator did not take the submission");
    store.recordRequestId(key, answer.requestId, Date.now());
  }
  return plan;
}

/** The items with their requests held in progress until the test releases them. */
function held(list: { id: string; prompt: string }[]): { id: string; prompt: string }[] {
  return list.map((item) => ({ ...item, prompt: `${item.prompt} [emulator:hold]` }));
}

describe("resume", () => {
  test("re-attaches to requests an earlier run recorded: polls and collects them, submits nothing again", async () => {
    const api = await emulator({ duration: 200 });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(3), mediaBase: api.url }) });
    const store = openStore(dir);
    await deadRun(
      dir,
      "chain.yaml",
      store,
      new RunComfyClient({ baseUrl: api.url, token: TEST_TOKEN }),
      api.url,
    );
    expect(api.submissions().total).toBe(3);

    const resumed = await apply(dir, "chain.yaml", api);
    expect(resumed.exitCode).toBe(0);
    expect(resumed.counts).toEqual({ succeeded: 6 });
    // Only the restyles were submitted now.
    expect(api.submissions().total).toBe(6);
    const attempts = store.getAttempts(resumed.runId).filter((a) => a.address.endsWith("/animate"));
    expect(attempts.map((a) => [a.reattachedFromRun, a.state])).toEqual([
      ["dead-run", "succeeded"],
      ["dead-run", "succeeded"],
      ["dead-run", "succeeded"],
    ]);
    const notices = resumed.events
      .filter((e) => e.event === "notice")
      .map((e) => (e.event === "notice" ? e.message : ""));
    expect(notices.filter((m) => m.includes("re-attached to request"))).toHaveLength(3);
  });

  test("a step whose earlier submission has no recorded id is `unknown`, unless resubmitting is asked for", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(2), mediaBase: api.url }) });
    const store = openStore(dir);
    await deadRun(dir, "chain.yaml", store, undefined, api.url);

    const resumed = await apply(dir, "chain.yaml", api);
    expect(resumed.exitCode).toBe(1);
    expect(resumed.counts).toEqual({ unknown: 2, blocked: 2 });
    expect(api.submissions().total).toBe(0);
    expect(resumed.steps.find((e) => e.state === "unknown")?.error).toContain(
      "an earlier submission (run dead-run, attempt 1) may have been created and billed",
    );

    const again = await apply(dir, "chain.yaml", api);
    expect(again.counts).toEqual({ unknown: 2, blocked: 2 });
    expect(api.submissions().total).toBe(0);
  });

  test("an interrupted run leaves running requests recorded, and the next apply collects them", async () => {
    // Held in progress until released: still running when the run stops, however slow the machine.
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: held(items(2)), mediaBase: api.url }) });
    const control = new RunControl();
    const events = new EventBus();
    events.subscribe((event) => {
      if (event.event === "step" && event.state === "in_progress") control.stop("interrupted");
    });
    const first = await apply(dir, "chain.yaml", api, {}, { control, events });
    expect(first.exitCode).toBe(130);
    expect(first.status).toBe("interrupted");
    expect(api.submissions().total).toBe(2);
    expect(api.release()).toBe(2);

    const second = await apply(dir, "chain.yaml", api);
    expect(second.exitCode).toBe(0);
    expect(api.submissions().total).toBe(4);
    expect(api.submissions().byBody.every((group) => group.count === 1)).toBe(true);
  });
});

describe("cancel", () => {
  test("a live apply asked to cancel stops submitting, cancels its queued requests and collects the running one", async () => {
    // One slot, held: the first request runs until the three queued behind it are cancelled.
    const api = await emulator({ capacity: 1 });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: held(items(4)), mediaBase: api.url }) });
    let cancelling: Promise<unknown> | undefined;
    let cancelledSteps = 0;
    const events = new EventBus();
    events.subscribe((event) => {
      if (event.event === "step" && event.state === "cancelled" && ++cancelledSteps === 3) api.release();
      if (
        event.event === "step" &&
        event.state === "in_queue" &&
        event.queuePosition !== undefined &&
        !cancelling
      ) {
        cancelling = cancelRun({ run: event.runId, cwd: dir, env: {} });
      }
    });
    const result = await apply(dir, "chain.yaml", api, {}, { events, lockTiming: { heartbeatMs: 20 } });
    const cancelOutcome = await cancelling;
    expect(cancelOutcome).toMatchObject({ live: true, finalStatus: "cancelled" });
    expect(result.status).toBe("cancelled");
    expect(result.exitCode).toBe(1);
    // Three animates cancelled while queued, and the restyle that became ready after the
    // cancel was never submitted; the restyles of the cancelled ones are blocked.
    expect(result.counts).toEqual({ succeeded: 1, cancelled: 4, blocked: 3 });
    expect(api.state().requests.cancelled).toBe(3);
    expect(api.submissions().byModel).toEqual({ "minimax/Hailuo Video 01 Live": 4 });
  });

  test("with no live process, cancel cancels the run's queued requests at the API directly", async () => {
    const api = await emulator({ capacity: 1 });
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: held(items(3)), mediaBase: api.url }) });
    const store = openStore(dir);
    const client = new RunComfyClient({ baseUrl: api.url, token: TEST_TOKEN });
    await deadRun(dir, "chain.yaml", store, client, api.url);

    const outcome = await cancelRun({ cwd: dir, env: {} }, { api: client });
    expect(outcome).toMatchObject({ runId: "dead-run", live: false, finalStatus: "cancelled" });
    expect(outcome.cancelled).toEqual(["clip/item-2/animate", "clip/item-3/animate"]);
    expect(outcome.running).toEqual(["clip/item-1/animate"]);
    expect(api.state().requests).toMatchObject({ cancelled: 2, in_progress: 1 });
    expect(store.getRun("dead-run")?.status).toBe("cancelled");
    expect(store.getStep("dead-run", "clip/item-2/animate")?.state).toBe("cancelled");
  });
});
