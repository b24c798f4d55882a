import os from "node:os";
import { describe, expect, test, vi } from "vitest";
import { decideLock, isProcessAlive, type LockHolder, type LockResult } from "../src/store/index.js";
import { open, spawnStoreChild, tempDbPath } from "./store-helpers.js";

const HOST = os.hostname();
const STALE_AFTER_MS = 30_000;
const alive = () => true;

function holder(overrides: Partial<LockHolder> = {}): LockHolder {
  return {
    workflowName: "teasers",
    runId: "run-1",
    pid: 101,
    hostname: "host-a",
    acquiredAt: 1_000,
    heartbeatAt: 1_000,
    ...overrides,
  };
}

describe("deciding who gets a lock (pure)", () => {
  const request = { runId: "run-2", pid: 202, hostname: "host-a" };

  test("a free lock is taken, and a run's own lock is refreshed", () => {
    const judgement = { now: 2_000, staleAfterMs: STALE_AFTER_MS, isProcessAlive: alive };
    expect(decideLock(undefined, request, judgement)).toEqual({ action: "take" });
    expect(decideLock(holder({ runId: "run-2" }), request, judgement)).toEqual({ action: "refresh" });
  });

  test("a live holder with a fresh heartbeat keeps the lock", () => {
    const current = holder({ heartbeatAt: 10_000 });
    expect(
      decideLock(current, request, { now: 40_000, staleAfterMs: STALE_AFTER_MS, isProcessAlive: alive }),
    ).toEqual({ action: "refuse", holder: current });
  });

  test("a holder whose heartbeat is older than staleAfterMs is taken over", () => {
    const current = holder({ heartbeatAt: 10_000 });
    expect(
      decideLock(current, request, { now: 40_001, staleAfterMs: STALE_AFTER_MS, isProcessAlive: alive }),
    ).toEqual({ action: "take_over", from: current });
  });

  test("a dead pid is taken over on the same host only; another host's pid means nothing here", () => {
    const probe = vi.fn(() => false);
    const judgement = { now: 2_000, staleAfterMs: STALE_AFTER_MS, isProcessAlive: probe };
    const sameHost = holder();
    expect(decideLock(sameHost, request, judgement)).toEqual({ action: "take_over", from: sameHost });
    expect(probe).toHaveBeenCalledWith(101);

    probe.mockClear();
    const otherHost = holder({ hostname: "host-b" });
    expect(decideLock(otherHost, request, judgement)).toEqual({ action: "refuse", holder: otherHost });
    expect(probe).not.toHaveBeenCalled();
  });

  test("isProcessAlive tells this process from a pid that does not exist", async () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const child = spawnStoreChild(tempDbPath(), "");
    await child.exited;
    expect(isProcessAlive(child.pid)).toBe(false);
  });
});

describe("the workflow lock in the database", () => {
  test("one run acquires it; a second connection's run is refused and told who holds it", () => {
    const dbPath = tempDbPath();
    const first = open(dbPath);
    const second = open(dbPath);
    const options = { now: 1_000, staleAfterMs: STALE_AFTER_MS };

    expect(
      first.acquireLock("teasers", { runId: "run-1", pid: process.pid, hostname: HOST }, options),
    ).toEqual({
      acquired: true,
    });
    expect(
      second.acquireLock("teasers", { runId: "run-2", pid: process.pid, hostname: HOST }, options),
    ).toEqual({
      acquired: false,
      holder: {
        workflowName: "teasers",
        runId: "run-1",
        pid: process.pid,
        hostname: HOST,
        acquiredAt: 1_000,
        heartbeatAt: 1_000,
      },
    });
    expect(
      second.acquireLock("posters", { runId: "run-2", pid: process.pid, hostname: HOST }, options).acquired,
    ).toBe(true);
  });

  test("the heartbeat keeps a lock fresh; acquiring again from the same run refreshes it", () => {
    const store = open(tempDbPath());
    const me = { runId: "run-1", pid: process.pid, hostname: HOST };
    store.acquireLock("teasers", me, { now: 1_000, staleAfterMs: STALE_AFTER_MS });
    expect(store.heartbeat("teasers", "run-1", 20_000)).toBe(true);
    expect(store.acquireLock("teasers", me, { now: 25_000, staleAfterMs: STALE_AFTER_MS })).toEqual({
      acquired: true,
    });

    const other = { runId: "run-2", pid: process.pid, hostname: HOST };
    expect(store.acquireLock("teasers", other, { now: 50_000, staleAfterMs: STALE_AFTER_MS }).acquired).toBe(
      false,
    );
    expect(store.getLock("teasers")).toMatchObject({
      runId: "run-1",
      acquiredAt: 1_000,
      heartbeatAt: 25_000,
    });
  });

  test("a stale holder is taken over, and its next heartbeat learns it lost the lock", () => {
    const dbPath = tempDbPath();
    const first = open(dbPath);
    const second = open(dbPath);
    first.acquireLock(
      "teasers",
      { runId: "run-1", pid: process.pid, hostname: "host-b" },
      { now: 1_000, staleAfterMs: STALE_AFTER_MS },
    );

    const result = second.acquireLock(
      "teasers",
      { runId: "run-2", pid: process.pid, hostname: HOST },
      { now: 1_000 + STALE_AFTER_MS + 1, staleAfterMs: STALE_AFTER_MS, isProcessAlive: alive },
    );
    expect(result).toEqual({
      acquired: true,
      tookOverFrom: {
        workflowName: "teasers",
        runId: "run-1",
        pid: process.pid,
        hostname: "host-b",
        acquiredAt: 1_000,
        heartbeatAt: 1_000,
      },
    });
    expect(first.heartbeat("teasers", "run-1", 40_000)).toBe(false);
    expect(second.heartbeat("teasers", "run-2", 40_000)).toBe(true);
  });

  test("releasing frees the lock, and only its holder can release it", () => {
    const store = open(tempDbPath());
    const options = { now: 1_000, staleAfterMs: STALE_AFTER_MS };
    store.acquireLock("teasers", { runId: "run-1", pid: process.pid, hostname: HOST }, options);
    store.releaseLock("teasers", "run-2");
    expect(store.getLock("teasers")?.runId).toBe("run-1");

    store.releaseLock("teasers", "run-1");
    expect(store.getLock("teasers")).toBeUndefined();
    expect(store.heartbeat("teasers", "run-1", 2_000)).toBe(false);
    expect(
      store.acquireLock("teasers", { runId: "run-2", pid: process.pid, hostname: HOST }, options).acquired,
    ).toBe(true);
  });

  test("a lock whose process died without releasing it is taken over at once, naming the dead holder", async () => {
    const dbPath = tempDbPath();
    const crashed = spawnStoreChild(
      dbPath,
      `store.acquireLock("teasers", { runId: "run-crashed", pid: process.pid, hostname: args.hostname },
         { now: args.now, staleAfterMs: args.staleAfterMs });
       process.kill(process.pid, "SIGKILL");`,
      { hostname: HOST, now: 1_000, staleAfterMs: STALE_AFTER_MS },
    );
    expect(await crashed.exited).toMatchObject({ signal: "SIGKILL" });

    const store = open(dbPath);
    // The heartbeat is still fresh: only the dead pid lets this run take over.
    const result = store.acquireLock(
      "teasers",
      { runId: "run-2", pid: process.pid, hostname: HOST },
      { now: 2_000, staleAfterMs: STALE_AFTER_MS },
    );
    expect(result).toEqual({
      acquired: true,
      tookOverFrom: {
        workflowName: "teasers",
        runId: "run-crashed",
        pid: crashed.pid,
        hostname: HOST,
        acquiredAt: 1_000,
        heartbeatAt: 1_000,
      },
    });
  });

  test("processes racing for the same lock get it exactly once", async () => {
    const dbPath = tempDbPath();
    open(dbPath).close();
    const racers = ["a", "b", "c", "d"].map((name) =>
      spawnStoreChild(
        dbPath,
        `const result = store.acquireLock("teasers", { runId: args.runId, pid: process.pid, hostname: args.hostname },
           { now: Date.now(), staleAfterMs: 60_000 });
         console.log(JSON.stringify(result));
         await waitForStdinEnd();`,
        { runId: `run-${name}`, hostname: HOST },
      ),
    );
    try {
      const results = (await Promise.all(racers.map((r) => r.firstLine))).map(
        (line) => JSON.parse(line) as LockResult,
      );
      const winners = results.filter((r) => r.acquired);
      expect(winners).toHaveLength(1);
      const winner = open(dbPath).getLock("teasers");
      for (const loser of results.filter((r) => !r.acquired)) {
        expect(loser).toEqual({ acquired: false, holder: winner });
      }
    } finally {
      await Promise.all(racers.map((r) => r.finish()));
    }
  });
});
