/**
 * A run's writes share commits (group commit), and what protects the user's money still
 * holds: each submission's attempt is committed before its POST leaves, each request id
 * before its first poll, and each event is announced only once what it tells is committed.
 * Checked from a second connection to the real SQLite file, at the moment each call goes
 * out and each event arrives.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { EventBus, type StepEvent } from "../src/engine/events.js";
import { apply, chainWorkflow, emulator, items, tempDir, writeFiles } from "./engine-harness.js";

describe("group commit during a run", () => {
  test("attempts are committed before their POST, ids before their polls, states before their events", async () => {
    const api = await emulator();
    const dir = tempDir();
    writeFiles(dir, { "chain.yaml": chainWorkflow({ items: items(12), mediaBase: api.url }) });
    let reader: Database.Database | undefined;
    const committed = () =>
      (reader ??= new Database(path.join(dir, "state", "runflow.db"), { readonly: true }));

    const problems: string[] = [];
    let posts = 0;
    let polls = 0;
    const spy: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input);
      if (url.origin === api.url && init?.method === "POST" && url.pathname.startsWith("/v1/models/")) {
        posts++;
        const { count } = committed().prepare("SELECT count(*) AS count FROM attempts").get() as {
          count: number;
        };
        if (count < posts) problems.push(`POST ${posts} went out with ${count} attempts committed`);
      }
      const polled = /^\/v1\/requests\/([^/]+)\/(status|result)$/.exec(url.pathname);
      if (polled) {
        polls++;
        const row = committed()
          .prepare("SELECT count(*) AS count FROM attempts WHERE request_id = ?")
          .get(decodeURIComponent(polled[1]!)) as { count: number };
        if (row.count !== 1) problems.push(`request ${polled[1]} polled before its id was committed`);
      }
      return fetch(input, init);
    };

    const events = new EventBus();
    let checked = 0;
    events.subscribe((event) => {
      if (event.event !== "step") return;
      checked++;
      const row = committed()
        .prepare("SELECT state, updated_at, request_id FROM steps WHERE address = ? AND run_id = ?")
        .get(event.address, event.runId) as
        { state: string; updated_at: number; request_id: string | null } | undefined;
      // The state may have moved on within the same commit; it may not be older than the event.
      if (!row || row.updated_at < event.at)
        problems.push(`${transitionOf(event)} announced before it was committed`);
      else if (event.state === "succeeded" && row.state !== "succeeded")
        problems.push(`${transitionOf(event)}: ${row.state}`);
      else if (event.requestId !== undefined && row.request_id !== event.requestId)
        problems.push(`${transitionOf(event)} announced before its request id was committed`);
    });

    const first = await apply(dir, "chain.yaml", api, {}, { fetch: spy, events });
    reader?.close();
    expect(first.exitCode).toBe(0);
    expect(first.counts).toEqual({ succeeded: 24 });
    expect({ posts, problems }).toEqual({ posts: 24, problems: [] });
    expect(polls).toBeGreaterThanOrEqual(48);
    // waiting, submitting, in_queue, …, downloading, succeeded: every change of every step.
    expect(checked).toBeGreaterThanOrEqual(24 * 5);
  });
});

function transitionOf(event: StepEvent): string {
  return `${event.address} ${event.previous} → ${event.state}`;
}
