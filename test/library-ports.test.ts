/**
 * runflow as a library with its own parts (src/index.ts, README "Use runflow as a library"):
 * a program plugs in its own `StateStore` — here a thin wrapper over the SQLite adapter that
 * counts every call — and its own `EngineApi`, and applies a 1-step workflow on the emulator
 * (real HTTP on loopback, a real SQLite file). The run goes through the injected store and
 * the injected client, the default state database is never made, and the caller's store is
 * left open for it to read and close.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  apply,
  emulatorApi,
  RunComfyClient,
  startEmulator,
  type EngineApi,
  type StateStore,
} from "../src/index.js";
import { openSqliteStateStore } from "../src/store/sqlite-state-store.js";

const WORKFLOW = `version: 1
name: hello
vars:
  image_host: "http://127.0.0.1:1"
defaults:
  poll: { interval: 20ms, max_interval: 200ms }
jobs:
  clip:
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "A cat in a sunlit meadow"
          image_url: "\${{ vars.image_host }}/media/image.png?w=1280&h=720"
`;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Every method of every group of `store`, counted as `group.method` on the way through. */
function countingStore(store: StateStore): { store: StateStore; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const group = <G extends object>(name: string, inner: G): G =>
    new Proxy(inner, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          count(`${name}.${String(key)}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return {
    calls,
    store: {
      runs: group("runs", store.runs),
      steps: group("steps", store.steps),
      attempts: group("attempts", store.attempts),
      outputs: group("outputs", store.outputs),
      locks: group("locks", store.locks),
      workers: group("workers", store.workers),
      history: group("history", store.history),
      budgets: group("budgets", store.budgets),
      close: () => {
        count("close");
        return store.close();
      },
    },
  };
}

/** The calls the engine makes to the API, counted on the way to a real client. */
function countingApi(inner: RunComfyClient): { api: EngineApi; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    api: {
      submit: (...args) => (calls.push("submit"), inner.submit(...args)),
      waitForResult: (...args) => (calls.push("waitForResult"), inner.waitForResult(...args)),
      cancel: (...args) => (calls.push("cancel"), inner.cancel(...args)),
      price: (...args) => (calls.push("price"), inner.price(...args)),
    },
  };
}

describe("a library user plugs in its own parts", () => {
  test("apply runs on the StateStore and the EngineApi the program passes, and leaves its store open", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-library-ports-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const emulator = await startEmulator({ duration: 20 });
    cleanups.push(() => emulator.close());
    writeFileSync(path.join(dir, "hello.yaml"), WORKFLOW);

    // The program's own store: the SQLite adapter at a place of its choosing, counted.
    const sqlite = await openSqliteStateStore(path.join(dir, "elsewhere", "mine.db"));
    const counted = countingStore(sqlite);
    cleanups.push(() => sqlite.close());
    const client = countingApi(new RunComfyClient({ baseUrl: emulator.url, token: "emulator" }));

    const outcome = await apply({
      file: "hello.yaml",
      cwd: dir,
      env: {},
      vars: { image_host: emulator.url },
      api: emulatorApi(emulator),
      store: counted.store,
      client: client.api,
    });

    expect(outcome).toMatchObject({ status: "succeeded", exitCode: 0 });
    // The run went through the injected store: recorded, its request id kept, locked and released.
    for (const call of [
      "runs.create",
      "runs.finish",
      "attempts.start",
      "attempts.recordRequestId",
      "locks.release",
    ]) {
      expect(counted.calls.get(call) ?? 0, call).toBeGreaterThan(0);
    }
    // ... and through the injected client.
    expect(client.calls).toContain("submit");
    expect(client.calls).toContain("waitForResult");
    // No other store was made; the caller's is still open (closing it is the caller's).
    expect(existsSync(path.join(dir, "state"))).toBe(false);
    expect(counted.calls.get("close")).toBeUndefined();
    expect(await sqlite.runs.get(outcome.runId)).toMatchObject({
      status: "succeeded",
      workflowName: "hello",
    });
  });
});
