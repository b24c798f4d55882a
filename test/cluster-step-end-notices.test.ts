/**
 * An apply learns that a worker's step ended when its write commits, not at its next periodic
 * read (src/cluster/step-end-notices.ts, cluster-dispatcher.ts; PostgreSQL migration 7): a
 * real PostgreSQL server, the apply's ClusterDispatcher reading the run only once an hour, and
 * another process's store writing the step's end.
 */
import pg from "pg";
import { afterEach, describe, expect, test } from "vitest";
import { ClusterDispatcher } from "../src/cluster/cluster-dispatcher.js";
import { queueBackend } from "../src/cluster/queue-backend.js";
import { STEP_ENDED_CHANNEL, StepEndNotices } from "../src/cluster/step-end-notices.js";
import { RunControl } from "../src/engine/run-control.js";
import { StepState, TERMINAL_STATES } from "../src/engine/states.js";
import type { PlannedStep } from "../src/plan/types.js";
import { openPostgresStateStore } from "../src/store/postgres-state-store.js";
import type { StateStore } from "../src/store/port.js";
import { databasePerTest, query, skipWithoutPostgres } from "./helpers/postgres.js";
import { modelStep, newRun } from "./store-helpers.js";

const skip = skipWithoutPostgres("step end notices");
const AN_HOUR = 3_600_000;
/** The runs and steps these tests store: the store helpers' with this file's names. */
const endsRun = (id: string) => newRun({ id, workflowName: "ends", plan: null, options: {}, pid: 4242 });
const shotStep = (address: string) => modelStep(address, { model: "m", fingerprint: "fp" });

describe.skipIf(skip)("a step's ending is announced to the apply that follows its run", () => {
  const database = databasePerTest();
  const toClose: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of toClose.splice(0).reverse()) await close().catch(() => undefined);
  });

  async function store(): Promise<StateStore> {
    const opened = await openPostgresStateStore(database.url, { secrets: [] });
    toClose.push(() => opened.close());
    return opened;
  }

  test("the apply's dispatcher settles a step another process ended without waiting for its next read", async () => {
    const apply = await store();
    const worker = await store();
    await apply.runs.create(endsRun("run-a"));
    await apply.steps.insert("run-a", [shotStep("shot/s1/clip"), shotStep("shot/s2/clip")], 1_000);
    const control = new RunControl();
    const endings = new StepEndNotices(() => new pg.Client({ connectionString: database.url }));
    const dispatcher = new ClusterDispatcher(
      { runId: "run-a", concurrency: 2, limits: {}, processConcurrency: 1 },
      { queues: queueBackend(database.url), store: apply, control, endings, followEveryMs: AN_HOUR },
    );
    toClose.push(() => dispatcher.close());
    toClose.push(() => Promise.resolve(control.stop("interrupted")));
    // Listening is set up as the dispatcher is made; once its session LISTENs, notices reach it.
    await expect
      .poll(
        async () =>
          (
            await query<{ n: number }>(
              database.url,
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND query = $1`,
              [`LISTEN ${STEP_ENDED_CHANNEL}`],
            )
          )[0]!.n,
        { timeout: 10_000 },
      )
      .toBe(1);
    const step = (address: string) => ({ address, kind: "model" }) as PlannedStep;
    const seen: string[] = [];
    const first = dispatcher.execute(step("shot/s1/clip"), "model", (observed) => seen.push(observed.state));
    const second = dispatcher.execute(step("shot/s2/clip"), "model", (observed) => seen.push(observed.state));

    // A worker's writes: one step failed, the other still in progress, then succeeded.
    await worker.steps.update("run-a", "shot/s1/clip", {
      updatedAt: 2_000,
      state: StepState.failed,
      finishedAt: 2_000,
      error: "refused",
    });
    expect(await first).toBe("failed");
    await worker.steps.update("run-a", "shot/s2/clip", { updatedAt: 2_100, state: StepState.in_progress });
    await worker.steps.update("run-a", "shot/s2/clip", {
      updatedAt: 2_200,
      state: StepState.succeeded,
      finishedAt: 2_200,
      output: { video: "v" },
    });
    expect(await second).toBe("succeeded");
    expect(seen).toContain("failed");
    expect(seen).toContain("succeeded");
  }, 30_000);

  test("every terminal state is announced once, with the run's id; a state on the way is not", async () => {
    const writer = await store();
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    toClose.push(() => listener.end());
    const heard: string[] = [];
    listener.on("notification", (message) => {
      if (message.channel === STEP_ENDED_CHANNEL) heard.push(message.payload ?? "");
    });
    await listener.query(`LISTEN ${STEP_ENDED_CHANNEL}`);
    const terminal = [...TERMINAL_STATES];
    await writer.runs.create(endsRun("run-t"));
    await writer.runs.create(endsRun("run-w"));
    await writer.steps.insert(
      "run-t",
      terminal.map((state) => shotStep(`shot/${state}/clip`)),
      1_000,
    );
    await writer.steps.insert("run-w", [shotStep("shot/w/clip")], 1_000);
    for (const state of terminal) {
      const address = `shot/${state}/clip`;
      await writer.steps.update("run-t", address, { updatedAt: 2_000, state: StepState.in_progress });
      await writer.steps.update("run-t", address, { updatedAt: 2_100, state, finishedAt: 2_100 });
      // Written again in the same state: not a new ending.
      await writer.steps.update("run-t", address, { updatedAt: 2_200, state, finishedAt: 2_100 });
    }
    // Notices arrive in commit order: once run-w's is heard, every earlier one was.
    await writer.steps.update("run-w", "shot/w/clip", { updatedAt: 3_000, state: StepState.succeeded });
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toBe("run-w");
    expect(heard).toEqual([...terminal.map(() => "run-t"), "run-w"]);
  }, 30_000);
});
