/**
 * Request slots freed across processes are heard, not polled for (src/cluster/slot-notices.ts,
 * account-slots.ts): a real PostgreSQL server, two AccountSlots on pools of their own (two
 * workers' worth), LISTEN/NOTIFY. The waiters' timer is set to an hour, so a request that gets
 * its slot within the test was woken by the notice.
 */
import pg from "pg";
import { afterEach, describe, expect, test } from "vitest";
import { AccountSlots } from "../src/cluster/account-slots.js";
import { SLOT_FREED_CHANNEL, SlotNotices } from "../src/cluster/slot-notices.js";
import { openPostgresStateStore } from "../src/store/postgres-state-store.js";
import type { StateStore } from "../src/store/port.js";
import type { WaitReason } from "../src/engine/events.js";
import { deferred } from "./helpers/deferred.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";

const skip = skipWithoutPostgres("request slot notices");
const ACCOUNT = "https://api.example#0123456789abcdef";
const HAILUO = "minimax/Hailuo Video 01 Live";
const FLUX = "black-forest-labs/flux";
const AN_HOUR = 3_600_000;

interface Caps {
  concurrency: number;
  limits?: Record<string, number>;
}

/**
 * A worker's share: its heartbeat (slots of a silent worker are taken back), pool, notices,
 * and its AccountSlots; everything it opens is closed by the test's `toClose`.
 */
async function openWorker(
  url: string,
  toClose: Array<() => Promise<unknown>>,
  name: string,
  caps: Caps,
): Promise<{ slots: AccountSlots; pool: pg.Pool }> {
  const store: StateStore = await openPostgresStateStore(url, { secrets: [] });
  toClose.push(() => store.close());
  const now = Date.now();
  await store.workers.beat({ name, host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  toClose.push(() => pool.end());
  const notices = new SlotNotices(() => new pg.Client({ connectionString: url }));
  toClose.push(() => notices.close());
  const slots = new AccountSlots({
    pool,
    account: ACCOUNT,
    worker: name,
    concurrency: caps.concurrency,
    limits: caps.limits ?? {},
    notices,
    safetyPollMs: AN_HOUR,
  });
  return { slots, pool };
}

describe.skipIf(skip)("request slots freed on one process wake a waiter on another", () => {
  const database = databasePerTest();
  const toClose: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of toClose.splice(0).reverse()) await close().catch(() => undefined);
  });

  const worker = async (name: string, caps: Caps) =>
    (await openWorker(database.url, toClose, name, caps)).slots;

  test("a slot's release is announced with its account and model, once the delete commits", async () => {
    const slots = await worker("w1", { concurrency: 1 });
    const listener = new pg.Client({ connectionString: database.url });
    toClose.push(() => listener.end());
    await listener.connect();
    const heard = deferred<string | undefined>();
    listener.on("notification", (message) => heard.resolve(message.payload));
    await listener.query(`LISTEN ${SLOT_FREED_CHANNEL}`);

    await slots.run(HAILUO, () => Promise.resolve());
    expect(JSON.parse((await heard.promise) ?? "null")).toEqual([ACCOUNT, HAILUO]);
  });

  test("a request waiting for the account's concurrency gets the slot another worker frees, without its timer", async () => {
    const first = await worker("w1", { concurrency: 1 });
    const second = await worker("w2", { concurrency: 1 });
    const holding = deferred<void>();
    const finish = deferred<void>();
    const held = first.run(HAILUO, async () => {
      holding.resolve();
      await finish.promise;
    });
    await holding.promise;

    const waiting = deferred<WaitReason>();
    const got = second.run(
      FLUX,
      () => Promise.resolve("ran"),
      (reason) => waiting.resolve(reason),
    );
    expect(await waiting.promise).toEqual({ kind: "concurrency", concurrency: 1 });
    finish.resolve();
    await held;
    expect(await got).toBe("ran");
  });

  test("a request waiting for its model's limit is woken when that model's slot is freed; another model's frees nothing for it", async () => {
    const caps = { concurrency: 5, limits: { [HAILUO]: 1 } };
    const first = await worker("w1", caps);
    const second = await worker("w2", caps);
    const hailuoHeld = deferred<void>();
    const finishHailuo = deferred<void>();
    const hailuo = first.run(HAILUO, async () => {
      hailuoHeld.resolve();
      await finishHailuo.promise;
    });
    await hailuoHeld.promise;

    const waiting = deferred<WaitReason>();
    let ran = false;
    const got = second.run(
      HAILUO,
      () => {
        ran = true;
        return Promise.resolve();
      },
      (reason) => waiting.resolve(reason),
    );
    expect(await waiting.promise).toEqual({ kind: "limit", model: HAILUO, limit: 1 });
    // A Flux slot comes and goes: heard, but it frees nothing the waiter needs.
    await first.run(FLUX, () => Promise.resolve());
    expect(ran).toBe(false);
    finishHailuo.resolve();
    await hailuo;
    await got;
    expect(ran).toBe(true);
  });
});

describe.skipIf(skip)("a slot given back while a request of the same process waits for its model", () => {
  const database = databasePerTest();
  const toClose: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of toClose.splice(0).reverse()) await close().catch(() => undefined);
  });

  const worker = (name: string, caps: Caps) => openWorker(database.url, toClose, name, caps);

  interface SlotRow {
    id: string;
    model: string;
    worker: string;
    run_id: string | null;
    address: string | null;
  }
  const rows = async (pool: pg.Pool) =>
    (
      await pool.query<SlotRow>(
        "SELECT id::text, model, worker, run_id, address FROM request_slots ORDER BY id",
      )
    ).rows;
  const step = (address: string) => ({ runId: "run-1", address, timeoutMs: AN_HOUR });

  test("is handed over to it: the same row, renamed to the waiter's step, no delete and no notice; another model's waiter still waits for a free slot", async () => {
    const { slots, pool } = await worker("w1", { concurrency: 1 });
    const listener = new pg.Client({ connectionString: database.url });
    toClose.push(() => listener.end());
    await listener.connect();
    const notices: string[] = [];
    listener.on("notification", (message) => notices.push(message.payload ?? ""));
    await listener.query(`LISTEN ${SLOT_FREED_CHANNEL}`);

    const holding = deferred<SlotRow[]>();
    const finishFirst = deferred<void>();
    const first = slots.forStep(step("a")).run(HAILUO, async (release) => {
      holding.resolve(await rows(pool));
      await finishFirst.promise;
      // Given back early, as when the request ended at the API, while the task goes on.
      release();
    });
    const [held] = await holding.promise;
    expect(held).toMatchObject({ model: HAILUO, run_id: "run-1", address: "a" });

    // Flux waits first, then a second Hailuo: the freed Hailuo slot goes to the Hailuo.
    const fluxWaits = deferred<WaitReason>();
    const flux = slots.forStep(step("flux")).run(
      FLUX,
      async () => rows(pool),
      (reason) => fluxWaits.resolve(reason),
    );
    expect(await fluxWaits.promise).toEqual({ kind: "concurrency", concurrency: 1 });
    const hailuoWaits = deferred<WaitReason>();
    const secondRan = deferred<SlotRow[]>();
    const finishSecond = deferred<void>();
    const second = slots.forStep(step("b")).run(
      HAILUO,
      async () => {
        secondRan.resolve(await rows(pool));
        await finishSecond.promise;
      },
      (reason) => hailuoWaits.resolve(reason),
    );
    expect(await hailuoWaits.promise).toEqual({ kind: "concurrency", concurrency: 1 });

    finishFirst.resolve();
    // One row all along: the first's, now naming the second step.
    expect(await secondRan.promise).toEqual([{ ...held!, address: "b" }]);
    await first;

    // No Hailuo waits any more: the slot is freed (with its notice) and the Flux takes a new row.
    finishSecond.resolve();
    await second;
    const fluxRows = await flux;
    expect(fluxRows).toHaveLength(1);
    expect(fluxRows[0]).toMatchObject({ model: FLUX, address: "flux" });
    expect(fluxRows[0]!.id).not.toBe(held!.id);
    // Notices come in commit order: once the Flux's is heard, every earlier one was. The
    // Hailuo slot was deleted (and announced) once, when no Hailuo waited any more.
    const fluxHeard = deferred<void>();
    const heardFlux = () => notices.some((payload) => payload.includes(FLUX)) && fluxHeard.resolve();
    listener.on("notification", heardFlux);
    heardFlux();
    await fluxHeard.promise;
    expect(notices.map((payload) => JSON.parse(payload) as unknown)).toEqual([
      [ACCOUNT, HAILUO],
      [ACCOUNT, FLUX],
    ]);
  });

  test("is not handed over to another process's waiter: that one still waits for a free slot, and the caps hold across both", async () => {
    const one = await worker("w1", { concurrency: 1 });
    const two = await worker("w2", { concurrency: 1 });
    const holding = deferred<void>();
    const finishFirst = deferred<void>();
    const first = one.slots.forStep(step("a")).run(HAILUO, async () => {
      holding.resolve();
      await finishFirst.promise;
    });
    await holding.promise;
    const otherWaits = deferred<WaitReason>();
    const other = two.slots.forStep(step("c")).run(
      HAILUO,
      async () => rows(one.pool),
      (reason) => otherWaits.resolve(reason),
    );
    expect(await otherWaits.promise).toEqual({ kind: "concurrency", concurrency: 1 });
    const localWaits = deferred<WaitReason>();
    const finishLocal = deferred<void>();
    const localRan = deferred<SlotRow[]>();
    const local = one.slots.forStep(step("b")).run(
      HAILUO,
      async () => {
        localRan.resolve(await rows(one.pool));
        await finishLocal.promise;
      },
      (reason) => localWaits.resolve(reason),
    );
    expect(await localWaits.promise).toEqual({ kind: "concurrency", concurrency: 1 });
    finishFirst.resolve();
    await first;
    expect(await localRan.promise).toMatchObject([{ worker: "w1", address: "b" }]);
    finishLocal.resolve();
    await local;
    expect(await other).toMatchObject([{ worker: "w2", address: "c" }]);
  });
});
