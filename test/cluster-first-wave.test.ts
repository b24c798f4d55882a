/**
 * What a cluster's wave of steps costs PostgreSQL on its way to the first submissions
 * (issue 12's makespan, docs/decisions.md "Several machines: the cluster's benchmarks and
 * speed"): counted by PostgreSQL itself (pg_stat_statements on a server of this file's own),
 * not timed.
 * - The apply hands a slice's ready steps to the queue as one bulk add (one statement),
 *   not one add (a round trip and a commit) each.
 * - A process's takes of request slots asked for in one turn go as one call (one round trip,
 *   one turn of the account's lock, one commit), with the same caps as one by one.
 * - Prior-runs fetches asked for while one is still queued (a worker asks for every delivery)
 *   share it: one fetch for the wave, not one each in the writer's queue ahead of the claims.
 *   A fetch already started is not shared: a later call sees what committed after it began.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { AccountSlots } from "../src/cluster/account-slots.js";
import { ClusterDispatcher } from "../src/cluster/cluster-dispatcher.js";
import { SlotNotices } from "../src/cluster/slot-notices.js";
import { queueBackend } from "../src/cluster/queue-backend.js";
import { RunControl } from "../src/engine/run-control.js";
import type { PlannedStep } from "../src/plan/types.js";
import { openPostgresStateStore, SUCCEEDED_SQL } from "../src/store/postgres-state-store.js";
import { deferred } from "./helpers/deferred.js";
import { modelStep, newRun } from "./store-helpers.js";
import {
  createDatabase,
  query,
  skipWithoutPostgres,
  startPostgres,
  type PostgresServer,
} from "./helpers/postgres.js";

const skip = skipWithoutPostgres("cluster first wave");

let server: PostgresServer | undefined;

beforeAll(async () => {
  if (skip) return;
  // A server of its own: statements are counted by pg_stat_statements, loaded at its start.
  server = await startPostgres({ settings: { shared_preload_libraries: "pg_stat_statements" } });
}, 60_000);
afterAll(() => server?.stop());

/** A fresh database whose statements are counted from now on. */
async function countedDatabase(): Promise<string> {
  const url = await createDatabase(server!.url);
  await query(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  return url;
}

/** How many times statements whose text contains `fragment` ran in the database at `url`. */
async function callsOf(url: string, fragment: string): Promise<number> {
  const rows = await query<{ calls: string | null }>(
    url,
    `SELECT sum(s.calls)::text AS calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
     WHERE d.datname = current_database() AND s.query LIKE '%' || $1 || '%' AND s.query NOT LIKE '%pg_stat_statements%'
       AND s.query NOT ILIKE '%CREATE %'`,
    [fragment],
  );
  return Number(rows[0]?.calls ?? 0);
}

const ORIGIN = "https://api.example";
const CAT = "teaser/cat/animate";
/** The run and the step these tests store: the store helpers' with this file's names. */
const waveRun = (id: string) => newRun({ id, workflowName: "wave", plan: null, options: {}, pid: 4242 });
const waveStep = (address: string) => modelStep(address, { model: "m", fingerprint: "fp-cat" });

describe.skipIf(skip)("a cluster's first wave on PostgreSQL", () => {
  it("hands 30 ready steps to the queue in one bulk add, every one of them queued", async () => {
    const url = await countedDatabase();
    const store = await openPostgresStateStore(url, { secrets: [] });
    const queues = queueBackend(url);
    const control = new RunControl();
    const dispatcher = new ClusterDispatcher(
      { runId: "run-wave", concurrency: 20, limits: {}, processConcurrency: 1 },
      { queues, store, control },
    );
    const probe = queues.openQueue("runflow-model-steps") as unknown as {
      getJobCounts(...states: string[]): Promise<Record<string, number>>;
      close(): Promise<void>;
    };
    try {
      for (let i = 1; i <= 30; i++) dispatcher.enqueue("model", `shot[s${i}].clip`);
      const steps = (address: string) => ({ address, kind: "model" }) as PlannedStep;
      // As the run's execution does: every ready step started in one turn, none awaited here
      // (each resolves when its step ends).
      dispatcher.dispatch(
        (ready) => void dispatcher.execute(steps(ready.address), ready.lane, () => undefined),
      );
      await expect
        .poll(async () => (await probe.getJobCounts("waiting")).waiting, { timeout: 10_000 })
        .toBe(30);
      // BullMQ's statements (postgres/sql-scripts.js: add_jobs_bulk.sql, add_job.sql).
      expect(await callsOf(url, "FROM add_jobs_bulk($1")).toBe(1);
      expect(await callsOf(url, "SELECT add_job(")).toBe(0);
    } finally {
      control.stop("interrupted");
      await dispatcher.close();
      await probe.close();
      await store.close();
    }
  }, 60_000);

  it("takes the slots a wave asks for in one call, holding the concurrency and the per-model limit", async () => {
    const url = await countedDatabase();
    const store = await openPostgresStateStore(url, { secrets: [] });
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    const notices = new SlotNotices(() => new pg.Client({ connectionString: url }));
    const release = deferred();
    try {
      const now = Date.now();
      await store.workers.beat({ name: "w1", host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
      const slots = new AccountSlots({
        pool,
        notices,
        account: "https://api.example#0123456789abcdef",
        worker: "w1",
        concurrency: 5,
        limits: { [CAT]: 2 },
        // Refused takes wait for a notice (none comes here), not for a timer.
        safetyPollMs: 3_600_000,
      });
      await notices.listen();
      const taken: string[] = [];
      const refused: string[] = [];
      const everyTakeAnswered = deferred();
      const answered = () => taken.length + refused.length === 8 && everyTakeAnswered.resolve();
      // Four of the limited model, then four of another, all asked for in one turn.
      const models = [CAT, CAT, CAT, CAT, "other/model", "other/model", "other/model", "other/model"];
      const held = models.map((model) =>
        slots.run(
          model,
          async () => {
            taken.push(model);
            answered();
            await release.promise;
          },
          (reason) => {
            refused.push(reason.kind);
            answered();
          },
        ),
      );
      await everyTakeAnswered.promise;
      expect(await callsOf(url, "FROM runflow_take_slots(")).toBe(1);
      expect(await callsOf(url, "FROM runflow_take_slot(")).toBe(0);
      expect(taken).toEqual([CAT, CAT, "other/model", "other/model", "other/model"]);
      expect(refused.sort()).toEqual(["concurrency", "limit", "limit"]);
      const rows = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM request_slots");
      expect(rows[0]!.n).toBe(5);
      // Released: the refused ones hear of it and take their slots in turn.
      release.resolve();
      await Promise.all(held);
      expect(taken).toHaveLength(8);
    } finally {
      release.resolve();
      await notices.close();
      await pool.end();
      await store.close();
    }
  }, 60_000);

  it("reads a wave's steps and their attempts in one query each; a read asked for after this process's own write sees it", async () => {
    const url = await countedDatabase();
    const worker = await openPostgresStateStore(url, { secrets: [] });
    try {
      const addresses = Array.from({ length: 20 }, (_, i) => `shot/s${i + 1}/clip`);
      await worker.runs.create(waveRun("run-a"));
      await worker.steps.insert(
        "run-a",
        addresses.map((address) => waveStep(address)),
        1_000,
      );
      await worker.attempts.start(
        {
          runId: "run-a",
          address: "shot/s2/clip",
          attempt: 1,
          workflowName: "wave",
          fingerprint: "fp",
          startedAt: 2_000,
        },
        { updatedAt: 2_000, state: "submitting", attempt: 1 },
      );
      // A wave's deliveries, behind a write of the worker's own.
      const written = worker.workers.beat({
        name: "w1",
        host: "h",
        pid: 1,
        startedAt: 0,
        seenAt: 0,
        doing: [],
      });
      const [steps, attempts] = await Promise.all([
        Promise.all([...addresses, "shot/nope/clip"].map((address) => worker.steps.get("run-a", address))),
        Promise.all(addresses.map((address) => worker.attempts.list("run-a", address))),
      ]);
      await written;
      expect(await callsOf(url, "FROM steps WHERE run_id = $1 AND address = ANY($2)")).toBe(1);
      expect(await callsOf(url, "a.address = ANY($2)")).toBe(1);
      expect(steps.map((step) => step?.address)).toEqual([...addresses, undefined]);
      expect(steps[1]?.state).toBe("submitting");
      expect(attempts.map((list) => list.length)).toEqual(
        addresses.map((address) => (address === "shot/s2/clip" ? 1 : 0)),
      );

      // A read asked for before a write of this process, and one after it: the later one sees it.
      const before = worker.steps.get("run-a", "shot/s1/clip");
      const beforeRun = worker.runs.get("run-a");
      const update = worker.steps.update("run-a", "shot/s1/clip", { updatedAt: 3_000, state: "waiting" });
      const cancel = worker.runs.requestCancel("run-a", 3_000);
      const after = worker.steps.get("run-a", "shot/s1/clip");
      const afterRun = worker.runs.get("run-a");
      await Promise.all([before, beforeRun, update, cancel]);
      expect((await after)?.state).toBe("waiting");
      expect((await afterRun)?.cancelRequestedAt).toBe(3_000);
    } finally {
      await worker.close();
    }
  }, 60_000);

  it("shares a queued prior-runs fetch among the calls made meanwhile, but not one already started", async () => {
    const url = await countedDatabase();
    const worker = await openPostgresStateStore(url, { secrets: [] });
    const other = await openPostgresStateStore(url, { secrets: [] });
    const fragment = "DISTINCT ON (s.fingerprint, r.api_origin)";
    expect(SUCCEEDED_SQL).toContain(fragment);
    try {
      await other.runs.create(waveRun("run-a"));
      await other.steps.insert("run-a", [waveStep(CAT)], 1_000);
      // A wave's deliveries: 20 asks in one turn, behind a write of the worker's own.
      const written = worker.workers.beat({
        name: "w1",
        host: "h",
        pid: 1,
        startedAt: 0,
        seenAt: 0,
        doing: [],
      });
      const lookups = await Promise.all(Array.from({ length: 20 }, () => worker.history.priorRuns("wave")));
      await written;
      expect(await callsOf(url, fragment)).toBe(1);
      expect(new Set(lookups).size).toBe(1);

      // Another process's success, committed after that fetch began: a later ask sees it.
      await other.steps.update("run-a", CAT, {
        updatedAt: 2_000,
        state: "succeeded",
        finishedAt: 2_000,
        output: { video: "v" },
      });
      const later = await worker.history.priorRuns("wave");
      expect(await callsOf(url, fragment)).toBe(2);
      expect(later.findSucceeded("wave", "fp-cat", { apiOrigin: ORIGIN })).toBeDefined();
    } finally {
      await worker.close();
      await other.close();
    }
  }, 60_000);

  it("shares a queued read of the run (its cancel) and of a model's typical duration among a wave's deliveries, but not one already started", async () => {
    const url = await countedDatabase();
    const worker = await openPostgresStateStore(url, { secrets: [] });
    const other = await openPostgresStateStore(url, { secrets: [] });
    try {
      await other.runs.create(waveRun("run-a"));
      // The deliveries of a wave ask at once, behind a write of the worker's own.
      const written = worker.workers.beat({
        name: "w1",
        host: "h",
        pid: 1,
        startedAt: 0,
        seenAt: 0,
        doing: [],
      });
      const [runs, durations] = await Promise.all([
        Promise.all(Array.from({ length: 20 }, () => worker.runs.get("run-a"))),
        Promise.all(Array.from({ length: 20 }, () => worker.history.typicalDuration(CAT, ORIGIN))),
      ]);
      await written;
      expect(await callsOf(url, "SELECT * FROM runs WHERE id = $1")).toBe(1);
      expect(await callsOf(url, "SELECT a.server_ms FROM attempts")).toBe(1);
      expect(runs.every((run) => run?.id === "run-a" && run.cancelRequestedAt === undefined)).toBe(true);
      expect(durations).toEqual(Array.from({ length: 20 }, () => undefined));

      // Written by another process after those reads: a later ask reads again and sees it.
      await other.runs.requestCancel("run-a", 5_000);
      expect((await worker.runs.get("run-a"))?.cancelRequestedAt).toBe(5_000);
      expect(await callsOf(url, "SELECT * FROM runs WHERE id = $1")).toBe(2);
      // Another run, another read.
      expect(await worker.runs.get("run-b")).toBeUndefined();
      expect(await callsOf(url, "SELECT * FROM runs WHERE id = $1")).toBe(3);
    } finally {
      await worker.close();
      await other.close();
    }
  }, 60_000);
});
