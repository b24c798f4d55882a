/**
 * A request slot belongs to its step's request, not to the worker that took it
 * (src/cluster/account-slots.ts, SPEC §10): the slot table of a real PostgreSQL state, the
 * attempts written through the store, the clock injected (a worker is dead when its
 * heartbeat is older than WORKER_DEAD_AFTER_MS; a slot's `held_until` is its taking plus the
 * step's timeout). Each case asks a live worker for a slot at a model limit of 1 while a
 * dead worker's slot holds it. A step's request refused while a dead worker's request awaits
 * its takeover does not wait in its worker's place: it gives way (GiveWayToTakeover), so the
 * re-attaching delivery can be handed out.
 */
import pg from "pg";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { AccountSlots, GiveWayToTakeover, TAKEOVER_GRACE_MS } from "../src/cluster/account-slots.js";
import { WORKER_DEAD_AFTER_MS } from "../src/engine/worker-run.js";
import { openPostgresStateStore, type PostgresStateStore } from "../src/store/postgres-state-store.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";
import { deferred } from "./helpers/deferred.js";
import { modelStep, newRun } from "./store-helpers.js";

const skip = skipWithoutPostgres("request slots of a dead worker");

const MODEL = "minimax/Hailuo Video 01 Live";
const RUN = "run-1";
const HELD = "clip/item-1/animate";
const OTHER = "clip/item-2/animate";
const TIMEOUT_MS = 60_000;

describe.skipIf(skip)("a dead worker's request slot", () => {
  const database = databasePerTest();
  let store: PostgresStateStore;
  let pool: pg.Pool;
  let now = 1_000_000;
  /** Ends the dead worker's task (its process is this one: the row must outlive the test). */
  let release = deferred();

  beforeEach(async () => {
    release = deferred();
    store = await openPostgresStateStore(database.url, { secrets: [] });
    pool = new pg.Pool({ connectionString: database.url });
    await store.runs.create(newRun({ id: RUN }));
    await store.steps.insert(RUN, [modelStep(HELD), modelStep(OTHER)], now);
  });
  afterEach(async () => {
    release.resolve();
    await pool.end();
    await store.close();
  });

  function slotsOf(worker: string): AccountSlots {
    return new AccountSlots({
      pool,
      account: "acct",
      worker,
      concurrency: 10,
      limits: { [MODEL]: 1 },
      now: () => now,
    });
  }

  /** The dead worker took the slot for HELD and claimed its attempt; then it stopped beating. */
  async function deadWorkerHolds(): Promise<void> {
    await store.workers.beat({ name: "dead", host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
    const taken = deferred();
    void slotsOf("dead")
      .forStep({ runId: RUN, address: HELD, timeoutMs: TIMEOUT_MS })
      .run(MODEL, async () => {
        await store.attempts.claim(
          {
            runId: RUN,
            address: HELD,
            attempt: 1,
            workflowName: "teasers",
            fingerprint: "fp",
            startedAt: now,
          },
          { updatedAt: now, state: "submitting", attempt: 1 },
          "dead",
        );
        taken.resolve();
        await release.promise;
      });
    await taken.promise;
    now += WORKER_DEAD_AFTER_MS + 1_000;
    await store.workers.beat({ name: "live", host: "h", pid: 2, startedAt: now, seenAt: now, doing: [] });
  }

  /**
   * Asks `live` for a slot for `address`: the slot rows it then sees, "refused" (it had to wait
   * in its place), or "gave way" (its delivery goes back to the queue for a re-attachment).
   */
  async function ask(address: string): Promise<string> {
    const stop = new AbortController();
    const slots = new AccountSlots({
      pool,
      account: "acct",
      worker: "live",
      concurrency: 10,
      limits: { [MODEL]: 1 },
      now: () => now,
      stopSignal: stop.signal,
    });
    let refused = false;
    const ids = await slots
      .forStep({ runId: RUN, address, timeoutMs: TIMEOUT_MS })
      .run(
        MODEL,
        async () => (refused ? [] : await rows()),
        () => {
          refused = true;
          stop.abort();
        },
      )
      .catch((error: unknown) => {
        if (error instanceof GiveWayToTakeover) return "gave way" as const;
        throw error;
      });
    if (ids === "gave way") return ids;
    return refused ? "refused" : ids.map((row) => `${row.worker}:${row.address}`).join(",");
  }

  async function rows(): Promise<{ worker: string; address: string }[]> {
    return (
      await pool.query<{ worker: string; address: string }>(
        "SELECT worker, address FROM request_slots ORDER BY id",
      )
    ).rows;
  }

  test("is kept while its attempt may run: a new request gives its place to the re-attachment; the step's next worker takes the slot over at once", async () => {
    await deadWorkerHolds();
    expect(await ask(OTHER)).toBe("gave way");
    expect(await ask(HELD)).toBe(`live:${HELD}`);
  });

  test("held by a live worker makes a new request wait in its place (no re-attachment to give way to)", async () => {
    await deadWorkerHolds();
    // The same slot, its worker alive again (a heartbeat late, not a death).
    await store.workers.beat({ name: "dead", host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
    expect(await ask(OTHER)).toBe("refused");
  });

  test("comes back when no worker re-attached to its step within the grace after the death (the re-attachment may be stuck behind the waiters)", async () => {
    await deadWorkerHolds();
    expect(await ask(OTHER)).toBe("gave way");
    now += TAKEOVER_GRACE_MS;
    await store.workers.beat({ name: "live", host: "h", pid: 2, startedAt: now, seenAt: now, doing: [] });
    expect(await ask(OTHER)).toBe(`live:${OTHER}`);
  });

  test("of an attempt judged unknown is kept until the step's timeout since it was taken, then freed", async () => {
    await deadWorkerHolds();
    const key = { runId: RUN, address: HELD, attempt: 1 };
    await store.attempts.abandon(key, "may have been created", now, { updatedAt: now, state: "unknown" });
    expect(await ask(OTHER)).toBe("refused");
    // The grace for a re-attachment does not free it: nobody will re-attach to an unknown request.
    now += TAKEOVER_GRACE_MS;
    await store.workers.beat({ name: "live", host: "h", pid: 2, startedAt: now, seenAt: now, doing: [] });
    expect(await ask(OTHER)).toBe("refused");
    now += TIMEOUT_MS;
    await store.workers.beat({ name: "live", host: "h", pid: 2, startedAt: now, seenAt: now, doing: [] });
    expect(await ask(OTHER)).toBe(`live:${OTHER}`);
  });

  test("is freed once its attempt ended", async () => {
    await deadWorkerHolds();
    await store.attempts.update(
      { runId: RUN, address: HELD, attempt: 1 },
      { state: "failed", finishedAt: now },
    );
    expect(await ask(OTHER)).toBe(`live:${OTHER}`);
  });
});

describe.skipIf(skip)("a request slot of a worker that stops", () => {
  const database = databasePerTest();

  test("stays with a request still running when its step is handed back; a new request gives way; the re-attaching worker takes it over", async () => {
    const store = await openPostgresStateStore(database.url, { secrets: [] });
    const pool = new pg.Pool({ connectionString: database.url });
    try {
      const now = 1_000_000;
      await store.runs.create(newRun({ id: RUN }));
      await store.steps.insert(RUN, [modelStep(HELD), modelStep(OTHER)], now);
      for (const name of ["stopping", "live"])
        await store.workers.beat({ name, host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
      const slots = (worker: string, stopSignal?: AbortSignal) =>
        new AccountSlots({
          pool,
          account: "acct",
          worker,
          concurrency: 10,
          limits: { [MODEL]: 1 },
          now: () => now,
          stopSignal,
        });
      // The stopping worker's request is in progress at the API when it is told to stop.
      const stop = new AbortController();
      await slots("stopping", stop.signal)
        .forStep({ runId: RUN, address: HELD, timeoutMs: TIMEOUT_MS })
        .run(MODEL, async () => {
          const key = { runId: RUN, address: HELD, attempt: 1 };
          await store.attempts.claim(
            { ...key, workflowName: "teasers", fingerprint: "fp", startedAt: now },
            { updatedAt: now, state: "submitting", attempt: 1 },
            "stopping",
          );
          await store.attempts.recordRequestId(key, "req-1", now, { updatedAt: now, state: "in_progress" });
          stop.abort();
        });
      await store.workers.leave("stopping");
      const rows = async () =>
        (await pool.query<{ worker: string; address: string }>("SELECT worker, address FROM request_slots"))
          .rows;
      expect(await rows()).toEqual([{ worker: "stopping", address: HELD }]);

      // A new request of the model gives its place to the re-attachment (it would otherwise
      // wait in it, perhaps in every live worker's place, until the step's timeout); the
      // worker that re-attaches gets the slot at once.
      // (A wait ends the ask at once: it would be the failure.)
      const waited = new AbortController();
      const asked = slots("live", waited.signal)
        .forStep({ runId: RUN, address: OTHER, timeoutMs: TIMEOUT_MS })
        .run(
          MODEL,
          () => Promise.resolve("waited"),
          () => waited.abort(),
        );
      await expect(asked).rejects.toBeInstanceOf(GiveWayToTakeover);
      const held = await slots("live")
        .forStep({ runId: RUN, address: HELD, timeoutMs: TIMEOUT_MS })
        .run(MODEL, () => rows());
      expect(held).toEqual([{ worker: "live", address: HELD }]);
    } finally {
      await pool.end();
      await store.close();
    }
  });
});
