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

describe.skipIf(skip)("request slots freed on one process wake a waiter on another", () => {
  const database = databasePerTest();
  const toClose: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of toClose.splice(0).reverse()) await close().catch(() => undefined);
  });

  /** A worker's share: its heartbeat (slots of a silent worker are taken back), pool, notices. */
  async function worker(name: string, caps: { concurrency: number; limits?: Record<string, number> }) {
    const store: StateStore = await openPostgresStateStore(database.url, { secrets: [] });
    toClose.push(() => store.close());
    const now = Date.now();
    await store.workers.beat({ name, host: "h", pid: 1, startedAt: now, seenAt: now, doing: [] });
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    toClose.push(() => pool.end());
    const notices = new SlotNotices(() => new pg.Client({ connectionString: database.url }));
    toClose.push(() => notices.close());
    return new AccountSlots({
      pool,
      account: ACCOUNT,
      worker: name,
      concurrency: caps.concurrency,
      limits: caps.limits ?? {},
      notices,
      safetyPollMs: AN_HOUR,
    });
  }

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
