/**
 * Results belong to the API that made them (issue 15, item 1): trying the emulator first and
 * then going live — the path the README suggests — must send everything to the live API.
 * The built CLI, spawned as a user runs it; a second emulator on loopback stands in for
 * "another API" (one at another origin).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import {
  chainYaml,
  itemsCsv,
  ndjson,
  project,
  waitForOutput,
  type Child,
  type Project,
} from "./apply-harness.js";

const running: RunningEmulator[] = [];

async function anotherApi(): Promise<RunningEmulator> {
  const api = await startEmulator({ duration: 50 });
  running.push(api);
  return api;
}

afterEach(async () => {
  for (const api of running.splice(0)) await api.close();
});

/** States of the `step` events of an NDJSON apply, by how many steps ended in each. */
function endStates(stdout: string): Record<string, number> {
  const last = new Map<string, string>();
  for (const event of ndjson(stdout)) {
    if (event.event === "step") last.set(String(event.address), String(event.state));
  }
  const counts: Record<string, number> = {};
  for (const state of last.values()) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

/** Lets every held request of `apply --emulator` go, at the emulator it announces on stderr. */
async function releaseEmbeddedEmulator(apply: Child): Promise<void> {
  let seen = "";
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const found = /using the local emulator at (http:\/\/\S+):/.exec(seen);
      if (found) {
        apply.stderr?.off("data", onData);
        resolve(found[1]!);
      }
    };
    apply.stderr?.on("data", onData);
    apply.then(() => reject(new Error(`apply ended without naming its emulator:\n${seen}`)), reject);
  });
  const answer = await fetch(`${url}/__emulator/release`, { method: "POST" });
  expect(answer.status).toBe(200);
}

async function runIds(p: Project): Promise<string[]> {
  const listed = JSON.parse((await p.run(["runs", "--json"])).stdout) as { id: string }[];
  return listed.map((run) => run.id).reverse();
}

describe("results belong to the API origin that made them", () => {
  test("what apply --emulator made is not taken over at another API, and is by the next apply --emulator", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(2) });

    const tried = await p.run(["apply", "chain.yaml", "--emulator", "--quiet"]);
    expect({ exitCode: tried.exitCode, stderr: tried.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(p.api.submissions().total).toBe(0);

    // Going live (RUNCOMFY_BASE_URL is the project's API): every step is sent there.
    const live = await p.run(["apply", "chain.yaml", "--json"]);
    expect(live.exitCode).toBe(0);
    expect(endStates(live.stdout)).toEqual({ succeeded: 4 });
    expect(p.api.submissions().total).toBe(4);

    // The embedded emulator takes another port each time, yet is one API: it reuses its own.
    const again = await p.run(["apply", "chain.yaml", "--emulator", "--json"]);
    expect(again.exitCode).toBe(0);
    expect(endStates(again.stdout)).toEqual({ reused: 4 });

    // Every view says which runs were against an emulator.
    const [embedded, atApi] = await runIds(p);
    const table = (await p.run(["runs"])).stdout.split("\n");
    expect(table[0]).toMatch(/^RUN\s+KIND\s+WORKFLOW\s+API\s+STATUS\s+STARTED\s+TOOK\s+COST\s+STEPS$/);
    const host = new URL(p.api.url).host;
    expect(table.find((line) => line.startsWith(embedded!))).toMatch(/\bchain\s+emulator\s+succeeded\b/);
    expect(table.find((line) => line.startsWith(atApi!))).toContain(`chain     emulator ${host}  succeeded`);
    expect((await p.run(["status", embedded!])).stdout).toContain(
      "api: the embedded emulator (apply --emulator) — an emulator: test media, nothing billed",
    );
    const status = JSON.parse((await p.run(["status", atApi!, "--json"])).stdout) as {
      run: { apiOrigin: string; emulator: boolean };
    };
    expect(status.run).toMatchObject({ apiOrigin: p.api.url, emulator: true });
    const report = await p.run(["report", embedded!, "--format", "json", "--out", "report.json"]);
    expect(report.exitCode).toBe(0);
    expect(JSON.parse(readFileSync(path.join(p.dir, "report.json"), "utf8"))).toMatchObject({
      run: { apiOrigin: "emulator", emulator: true },
    });

    // A retry reads the results of the run it retries: it runs at that run's API only.
    const retry = await p.run(["retry", embedded!]);
    expect(retry.exitCode).toBe(2);
    expect(retry.stderr).toContain(
      `error: run ${embedded} was made at the embedded emulator (apply --emulator); this retry would run at the emulator at ${p.api.url}`,
    );
  }, 120_000);

  test("apply --emulator after a killed apply --emulator sends again what the dead emulator held, instead of asking the new one for ids it never gave", async () => {
    // Held: the request is still in progress when its apply dies, however slow the machine.
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:hold]"),
    });
    const child = p.start(["apply", "chain.yaml", "--emulator"]);
    await waitForOutput(child, "clip/item-1/animate in_progress");
    child.kill("SIGKILL");
    await child;

    // The next apply's own emulator is told to let the same request go, whenever it comes.
    const next = p.start(["apply", "chain.yaml", "--emulator", "--json"]);
    await releaseEmbeddedEmulator(next);
    const again = await next;
    expect(again.exitCode).toBe(0);
    expect(endStates(again.stdout)).toEqual({ succeeded: 2 });
    expect(again.stdout).not.toContain("re-attached");
  });

  test("a standalone emulator's results are not reused at another API, and still are at its own", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(3) });
    expect((await p.run(["apply", "chain.yaml", "--quiet"])).exitCode).toBe(0);
    expect(p.api.submissions().total).toBe(6);

    const other = await anotherApi();
    const there = await p.run(["apply", "chain.yaml", "--json"], { env: { RUNCOMFY_BASE_URL: other.url } });
    expect(there.exitCode).toBe(0);
    expect(endStates(there.stdout)).toEqual({ succeeded: 6 });
    expect(other.submissions().total).toBe(6);

    const back = await p.run(["apply", "chain.yaml", "--json"]);
    expect(endStates(back.stdout)).toEqual({ reused: 6 });
    expect(p.api.submissions().total).toBe(6);
  });

  test("a request left unfinished at one API is neither polled at another nor forgotten: the next apply there collects it", async () => {
    // Held: still in progress when its apply dies; let go at each API before it is wanted there.
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:hold=left]"),
    });
    const child = p.start(["apply", "chain.yaml"]);
    await waitForOutput(child, "clip/item-1/animate in_progress");
    child.kill("SIGKILL");
    await child;
    const [dead] = await runIds(p);
    const [leftRequest] = p.api.submissions().byBody[0]!.requestIds;
    const other = await anotherApi();

    // Its requests cannot be cancelled at another API: it would not know their ids.
    const cancel = await p.run(["cancel"], { env: { RUNCOMFY_BASE_URL: other.url } });
    expect(cancel.exitCode).toBe(2);
    expect(cancel.stderr).toContain(
      `error: run ${dead} was made at the emulator at ${p.api.url}; its requests can be cancelled only there`,
    );
    expect(other.requestLog()).toEqual([]);

    // Against another API (an emulator too: nothing there bills twice), the step is sent
    // there, and the user is told where the first request still is.
    other.release("left");
    const elsewhere = await p.run(["apply", "chain.yaml"], { env: { RUNCOMFY_BASE_URL: other.url } });
    expect(elsewhere.exitCode).toBe(0);
    expect(elsewhere.stdout).not.toContain("re-attached");
    expect(elsewhere.stdout).toContain(
      `run ${dead} has 1 request made at the emulator at ${p.api.url} still unfinished`,
    );
    expect(elsewhere.stdout).toContain("apply against that API to collect them");
    expect(other.requestLog().filter((call) => call.path.includes(leftRequest!))).toEqual([]);
    expect(other.submissions().total).toBe(2);

    // Back at the first API, the request is collected, not sent again.
    expect(p.api.release("left")).toBe(1);
    const home = await p.run(["apply", "chain.yaml"]);
    expect(home.exitCode).toBe(0);
    expect(home.stdout).toContain(
      `clip/item-1/animate: re-attached to request ${leftRequest} (submitted by run ${dead})`,
    );
    expect(p.api.submissions().byBody.map((group) => group.count)).toEqual([1, 1]);
  });
});
