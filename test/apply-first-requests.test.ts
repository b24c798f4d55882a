/**
 * apply's way to its first submission (issue 14): the media probes' requests are written
 * before the state store's opening (synchronous work, for SQLite) takes the event loop, so
 * their answers travel while it works; and a step's input capture starts once its POST has
 * left, not in front of it. In-process against the emulator on loopback; the order is read
 * from the channels undici publishes on (`undici:request:create`, `undici:client:sendHeaders`).
 * A bigger run plans and records its concurrency window first, the rest once the first POST
 * is on its way.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { describe, expect, test } from "vitest";
import { openStateStore } from "../src/app/index.js";
import type { StateStoreOpener } from "../src/store/port.js";
import { apply, chainWorkflow, emulator, items, tempDir, writeFiles } from "./engine-harness.js";

interface RequestSeen {
  request: { method: string; path: string; headers: unknown };
}

/** Runs `body` while undici's `channel` is heard; each message as `METHOD PATH[ ranged]`. */
async function heard(channel: string, order: string[], body: () => Promise<unknown>): Promise<void> {
  const listener = (message: unknown) => {
    const { request } = message as RequestSeen;
    const ranged = /range/i.test(String(request.headers)) ? " ranged" : "";
    order.push(`${request.method} ${request.path.split("?")[0]}${ranged}`);
  };
  subscribe(channel, listener);
  try {
    await body();
  } finally {
    unsubscribe(channel, listener);
  }
}

describe("apply's first requests", () => {
  test("the media probes' requests are written before the state store opens", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(1), mediaBase: api.url }) });
    const order: string[] = [];
    const openStore: StateStoreOpener = (location, options) => {
      order.push("the store opens");
      return openStateStore(location, options);
    };
    await heard("undici:client:sendHeaders", order, async () => {
      const result = await apply(dir, "chain.yaml", api, {}, { openStore });
      expect(result.counts.succeeded).toBe(2);
    });
    const probe = order.indexOf("GET /media/image.png ranged");
    expect(probe).toBeGreaterThanOrEqual(0);
    expect(probe).toBeLessThan(order.indexOf("the store opens"));
  });

  test("a step's input still is captured once its POST has left, not before", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(1), mediaBase: api.url }) });
    const created: string[] = [];
    await heard("undici:request:create", created, async () => {
      const result = await apply(dir, "chain.yaml", api);
      expect(result.counts.succeeded).toBe(2);
    });
    const firstPost = created.findIndex((request) => request.startsWith("POST /v1/models/"));
    const capture = created.indexOf("GET /media/image.png");
    expect(firstPost).toBeGreaterThanOrEqual(0);
    expect(capture).toBeGreaterThan(firstPost);
  });

  test("a run plans and records its concurrency window first, the rest once the first POST has left", async () => {
    const api = await emulator();
    const dir = tempDir();
    // 40 instances of two chained steps, 8 at a time.
    writeFiles(dir, {
      "chain.yaml": chainWorkflow({ items: items(40), mediaBase: api.url, concurrency: 8 }),
    });
    const order: string[] = [];
    const recorded: number[] = [];
    const openStore: StateStoreOpener = async (location, options) => {
      const store = await openStateStore(location, options);
      const addPlanPart = store.runs.addPlanPart.bind(store.runs);
      store.runs.addPlanPart = (runId, part, steps, ...rest) => {
        order.push("steps recorded");
        recorded.push(steps.length);
        return addPlanPart(runId, part, steps, ...rest);
      };
      return store;
    };
    await heard("undici:request:create", order, async () => {
      const result = await apply(dir, "chain.yaml", api, {}, { openStore });
      expect(result.counts.succeeded).toBe(80);
    });
    // The window: 8 steps (4 whole instances), then the other 72 in later slices.
    expect(recorded[0]).toBe(8);
    expect(recorded.reduce((sum, n) => sum + n, 0)).toBe(80);
    const firstPost = order.findIndex((request) => request.startsWith("POST /v1/models/"));
    const recordings = order.flatMap((entry, index) => (entry === "steps recorded" ? [index] : []));
    expect(firstPost).toBeGreaterThan(recordings[0]!);
    expect(firstPost).toBeLessThan(recordings[1]!);
  });
});
