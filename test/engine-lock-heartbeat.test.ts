/**
 * The heartbeat that keeps a live apply's workflow lock (SPEC §5) survives a database that is
 * busy for a while: another process holding the write lock past the busy timeout makes one
 * beat fail, and the next beats go on. Real SQLite file, a real second process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { RunControl } from "../src/engine/run-control.js";
import { keepLockAlive } from "../src/engine/workflow-lock.js";
import { sqliteStateStoreOf } from "../src/store/index.js";
import { systemClock } from "../src/util/clock.js";
import { open, spawnStoreChild, tempDbPath } from "./store-helpers.js";

describe("the workflow lock's heartbeat", () => {
  test("goes on beating after another process kept the database busy past the busy timeout", async () => {
    const dbPath = tempDbPath();
    const store = open(dbPath, { busyTimeoutMs: 30 });
    const holder = { runId: "run-1", pid: process.pid, hostname: "host-a" };
    expect(store.acquireLock("nightly", holder, { now: Date.now(), staleAfterMs: 30_000 }).acquired).toBe(
      true,
    );
    let lost = false;
    const keeper = keepLockAlive({
      workflowName: "nightly",
      runId: "run-1",
      wait: false,
      timing: { heartbeatMs: 20, staleAfterMs: 30_000, waitPollMs: 1_000 },
      store: sqliteStateStoreOf(store),
      clock: systemClock,
      control: new RunControl(),
      notice: () => {},
      onLost: () => (lost = true),
    });
    try {
      // The other process holds the write lock for 400 ms: every beat in that time fails.
      const busy = spawnStoreChild(
        dbPath,
        `store.transaction(() => {
           console.log("holding");
           const until = Date.now() + 400;
           while (Date.now() < until);
         });`,
      );
      expect(await busy.firstLine).toBe("holding");
      const { code } = await busy.exited;
      expect(code).toBe(0);
      const released = Date.now();

      // A beat after the release shows the keeper went on: waited for, not slept for.
      while (!((store.getLock("nightly")?.heartbeatAt ?? 0) > released)) await sleep(10);
      expect(store.getLock("nightly")?.heartbeatAt).toBeGreaterThan(released);
      expect(lost).toBe(false);
    } finally {
      keeper.stop();
    }
  });
});
