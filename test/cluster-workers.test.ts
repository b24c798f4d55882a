/**
 * One batch on several processes (SPEC §10, issue 12): real PostgreSQL (a server the test
 * starts), real `runflow worker` processes and a real `runflow apply` on a postgres:// state,
 * the emulator on loopback. The emulator's own books prove the caps (the most requests
 * unfinished at once, in total and per model) and the fence (every body submitted once).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, onTestFinished, test } from "vitest";
import { execa } from "execa";
import { itemsCsv, ndjson, project, type Project, TOKEN } from "./apply-harness.js";
import { queueBackend } from "../src/cluster/queue-backend.js";
import { MODEL_STEPS_QUEUE, stepJobId, type StepJob } from "../src/cluster/queues.js";
import { CLI_ENTRY } from "./helpers/spawn-cli.js";
import { advisoryBarrier, databasePerTest, query, skipWithoutPostgres } from "./helpers/postgres.js";
import { until } from "./helpers/until.js";
import { clusterYaml, startWorkerProcess, type WorkerProcess } from "./helpers/cluster.js";

function startWorker(p: Project, url: string, name: string, concurrency = 4): WorkerProcess {
  return startWorkerProcess(p, name, ["--state", url, "--concurrency", String(concurrency)]);
}

const skip = skipWithoutPostgres("workers on a PostgreSQL state");

describe.skipIf(skip)("workers sharing a PostgreSQL state", () => {
  const database = databasePerTest();

  test("2 workers + apply run a chain to completion; the caps hold account-wide; every body is submitted once", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3, limit: 2 }), "items.csv": itemsCsv(6) },
      { duration: 300 },
    );
    const workers = [startWorker(p, database.url, "w1"), startWorker(p, database.url, "w2")];
    await Promise.all(workers.map((worker) => worker.ready));

    const applied = await p.run(["apply", "cluster.yaml", "--state", database.url, "--json"], {
      timeoutMs: 120_000,
    });

    expect(applied.stderr).toBe("");
    expect(applied.exitCode).toBe(0);
    const finished = ndjson(applied.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    const peak = p.api.peakInFlight();
    expect(peak.total).toBeLessThanOrEqual(3);
    expect(peak.byModel["minimax/Hailuo Video 01 Live"]).toBeLessThanOrEqual(2);
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(12);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    // Every restyled video is where the run step found it.
    for (let i = 1; i <= 6; i++)
      expect(existsSync(path.join(p.dir, "outputs", "cluster", `item-${i}`, "restyle.mp4"))).toBe(true);
    // Who ran what (informative: which process takes a job is BullMQ's business).
    const byWorker = workers.map(
      (worker) => `${worker.name}: ${worker.lines.filter((line) => line.endsWith(" done")).length}`,
    );
    console.log(
      `steps done by the workers (the rest by apply's own): ${byWorker.join(", ")}; peak in flight ${JSON.stringify(peak)}`,
    );
    for (const worker of workers) worker.child.kill("SIGTERM");
    const ended = await Promise.all(workers.map((worker) => worker.child));
    expect(ended.map((result) => result.exitCode)).toEqual([130, 130]);
  }, 180_000);

  test("a worker killed with SIGKILL while holding steps: they are taken over within 10 s, the run completes, no body is submitted twice", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 6, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 200 },
    );
    const workers = [startWorker(p, database.url, "w1"), startWorker(p, database.url, "w2")];
    await Promise.all(workers.map((worker) => worker.ready));
    // The apply executes one step itself: the workers hold the others.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "1";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    // Every first step submitted and held in progress by the emulator.
    await until(() => (p.api.state().held === 6 ? true : undefined), "6 held requests");
    const holders = await until(async () => {
      const rows = await query<{ name: string; doing: string }>(
        database.url,
        "SELECT name, doing FROM workers WHERE name IN ('w1', 'w2') AND doing <> '' ORDER BY name",
      );
      return rows.length > 0 ? rows : undefined;
    }, "a worker holding steps");
    const victim = workers.find((worker) => worker.name === holders[0]!.name)!;
    const held = holders[0]!.doing.split("\n").map((line) => line.split(" ")[1]!);
    // status lists the live workers and what each does of the run.
    const status = await p.run(["status", "--state", database.url]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toContain(`worker ${victim.name} (`);
    expect(status.stdout).toMatch(
      new RegExp(`worker ${victim.name} \\(.*\\): ${held.length} steps? of this run`),
    );
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();
    p.api.release();

    // Each step it held gets a new attempt claimed by another process, re-attached to the same request.
    const takeovers = await until(
      async () => {
        const rows = await query<{
          address: string;
          started_at: string;
          claimed_by: string;
          request_id: string;
        }>(
          database.url,
          `SELECT address, started_at, claimed_by, request_id FROM attempts
         WHERE address = ANY($1) AND claimed_by IS DISTINCT FROM $2 AND claimed_by IS NOT NULL`,
          [held, victim.name],
        );
        return new Set(rows.map((row) => row.address)).size === held.length ? rows : undefined;
      },
      "the killed worker's steps taken over",
      30_000,
    );
    const seconds = takeovers.map((row) => (Number(row.started_at) - killedAt) / 1000);
    console.log(
      `SIGKILL of ${victim.name} holding ${held.length} step(s): taken over after ${seconds.map((s) => s.toFixed(1)).join(", ")} s`,
    );
    for (const s of seconds) expect(s).toBeLessThan(10);

    const result = await apply;
    expect(result.exitCode).toBe(0);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(12);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    for (const worker of workers) if (worker !== victim) worker.child.kill("SIGTERM");
    await Promise.all(workers.filter((worker) => worker !== victim).map((worker) => worker.child));
  }, 180_000);

  test("a worker killed between its claim and the request id: the attempt becomes unknown, and nothing is sent again", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 2 }), "items.csv": itemsCsv(1) },
      { duration: 100 },
    );
    // The first submission's answer is slow: its claimant dies before it records an id.
    p.api.configure({ faults: [{ endpoint: "submit", kind: "slow", delayMs: 60_000, times: 1 }] });
    const workers = [startWorker(p, database.url, "w1"), startWorker(p, database.url, "w2")];
    await Promise.all(workers.map((worker) => worker.ready));
    // The apply only follows: the workers execute every step.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    const claimed = await until(async () => {
      const rows = await query<{ claimed_by: string }>(
        database.url,
        "SELECT claimed_by FROM attempts WHERE state = 'submitting' AND request_id IS NULL AND claimed_by IS NOT NULL",
      );
      const submitting = p.api.requestLog().some((entry) => entry.endpoint === "submit");
      return rows.length === 1 && submitting ? rows[0]! : undefined;
    }, "a claimed attempt whose POST is on the wire");
    const victim = workers.find((worker) => worker.name === claimed.claimed_by)!;
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();

    const result = await apply;
    const judgedAt = Date.now();
    expect(result.exitCode).toBe(1);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ unknown: 1, blocked: 2 });
    const attempts = await query<{ state: string; claimed_by: string; error: string }>(
      database.url,
      "SELECT state, claimed_by, error FROM attempts ORDER BY seq",
    );
    expect(attempts.map(({ state, claimed_by }) => ({ state, claimed_by }))).toEqual([
      { state: "unknown", claimed_by: victim.name },
    ]);
    expect(attempts[0]!.error).toContain("may have been created");
    // Sent once (its answer never came), never again.
    expect(p.api.requestLog().filter((entry) => entry.endpoint === "submit")).toHaveLength(1);
    console.log(
      `claimant SIGKILLed without a request id: judged unknown within ${((judgedAt - killedAt) / 1000).toFixed(1)} s`,
    );
    for (const worker of workers) if (worker !== victim) worker.child.kill("SIGTERM");
    await Promise.all(workers.filter((worker) => worker !== victim).map((worker) => worker.child));
  }, 180_000);

  test("two applies of different workflows share one account's concurrency", async () => {
    const p = await project(
      {
        "north.yaml": clusterYaml({ concurrency: 2 }).replace("name: cluster", "name: north"),
        "south.yaml": clusterYaml({ concurrency: 2 })
          .replace("name: cluster", "name: south")
          .replace("for_each: items.csv", "for_each: south.csv"),
        "items.csv": itemsCsv(3),
        "south.csv": itemsCsv(3, () => " at dusk"),
      },
      { duration: 300 },
    );
    const worker = startWorker(p, database.url, "w1");
    await worker.ready;

    const [north, south] = await Promise.all([
      p.run(["apply", "north.yaml", "--state", database.url, "--json"], { timeoutMs: 120_000 }),
      p.run(["apply", "south.yaml", "--state", database.url, "--json"], { timeoutMs: 120_000 }),
    ]);

    for (const result of [north, south]) {
      expect(result.exitCode).toBe(0);
      expect(ndjson(result.stdout).find((event) => event.event === "run_finished")?.counts).toEqual({
        succeeded: 9,
      });
    }
    // Both workflows say 2: the account never had more than 2 requests unfinished, not 4.
    const peak = p.api.peakInFlight();
    console.log(`two applies, concurrency 2 each: peak in flight ${JSON.stringify(peak)}`);
    expect(peak.total).toBeLessThanOrEqual(2);
    expect(p.api.submissions().byBody.filter((group) => group.count > 1)).toEqual([]);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 180_000);

  test("an interrupted apply takes back the steps no worker took; the workers keep what they hold", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 1, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 100 },
    );
    const worker = startWorker(p, database.url, "w1", 4);
    await worker.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    // w1 holds 4 of the 6 first steps (one submitted and held, three waiting for the slot).
    await until(async () => {
      const rows = await query<{ doing: string }>(
        database.url,
        "SELECT doing FROM workers WHERE name = 'w1'",
      );
      return rows[0] && rows[0].doing.split("\n").filter(Boolean).length === 4 ? true : undefined;
    }, "w1 holding 4 steps");
    await until(() => (p.api.state().held === 1 ? true : undefined), "the first request held");

    apply.kill("SIGINT");
    const result = await apply;
    expect(result.exitCode).toBe(130);
    // The worker finishes what it held; the two steps it never took are not submitted.
    p.api.release();
    await until(async () => {
      const rows = await query<{ doing: string }>(
        database.url,
        "SELECT doing FROM workers WHERE name = 'w1'",
      );
      return rows[0]?.doing === "" && p.api.submissions().total === 4 ? true : undefined;
    }, "w1 done with its 4 steps");
    const pending = await query<{ address: string }>(
      database.url,
      "SELECT address FROM steps WHERE step_id = 'animate' AND state = 'pending' ORDER BY address",
    );
    expect(pending).toHaveLength(2);
    worker.child.kill("SIGTERM");
    await worker.child;
    expect(p.api.submissions().total).toBe(4);
  }, 180_000);
});

describe.skipIf(skip)("request slots after a worker dies", () => {
  const database = databasePerTest();

  test("a SIGKILLed worker's request slots stay held while its requests run: re-attached without waiting, never exceeded by new submissions", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3, limit: 2, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 200 },
    );
    const workers = [startWorker(p, database.url, "w1", 6), startWorker(p, database.url, "w2", 6)];
    await Promise.all(workers.map((worker) => worker.ready));
    // The apply only follows: the workers execute every step.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    // Hailuo's limit (2) reached with requests the emulator holds; the other 4 wait for a slot.
    await until(() => (p.api.state().held === 2 ? true : undefined), "2 held requests");
    const slots = await until(async () => {
      const rows = await query<{ id: string; worker: string }>(
        database.url,
        "SELECT id::text, worker FROM request_slots ORDER BY id",
      );
      return rows.length === 2 ? rows : undefined;
    }, "the 2 slots recorded");
    const victim = workers.find((worker) => worker.name === slots[0]!.worker)!;
    // The steps whose requests it watches (each holds one of its slots). The emulator holds a
    // request once it is received: its id is committed a moment later, so it is waited for.
    const victimSlots = slots.filter((slot) => slot.worker === victim.name).length;
    const held = await until(async () => {
      const rows = await query<{ address: string }>(
        database.url,
        "SELECT address FROM attempts WHERE claimed_by = $1 AND request_id IS NOT NULL",
        [victim.name],
      );
      return rows.length === victimSlots ? rows.map((row) => row.address) : undefined;
    }, "the killed worker's request ids recorded");
    victim.child.kill("SIGKILL");
    const replacement = startWorker(p, database.url, "w3", 6);
    await replacement.ready;

    // Each of its held requests is re-attached by another worker (a new attempt with the same id).
    await until(
      async () => {
        const rows = await query<{ address: string }>(
          database.url,
          `SELECT address FROM attempts WHERE address = ANY($1) AND claimed_by IS DISTINCT FROM $2
             AND claimed_by IS NOT NULL AND request_id IS NOT NULL`,
          [held, victim.name],
        );
        return new Set(rows.map((row) => row.address)).size === held.length ? true : undefined;
      },
      "the killed worker's requests re-attached",
      30_000,
    );
    // Past the point where a dead worker's slots used to be freed: its heartbeat is stale.
    await until(async () => {
      const rows = await query<{ stale: boolean }>(
        database.url,
        "SELECT seen_at < $2 AS stale FROM workers WHERE name = $1",
        [victim.name, Date.now() - 6_000],
      );
      return rows.length === 0 || rows[0]!.stale ? true : undefined;
    }, "the killed worker's heartbeat stale");
    // The re-attachments took the very slots over; the requests still held are the only ones
    // sent, and the caps were never exceeded (the held requests have not finished).
    const after = await query<{ id: string; worker: string }>(
      database.url,
      "SELECT id::text, worker FROM request_slots ORDER BY id",
    );
    expect(after.map((slot) => slot.id)).toEqual(slots.map((slot) => slot.id));
    for (const slot of after) expect(slot.worker).not.toBe(victim.name);
    expect(p.api.submissions().total).toBe(2);
    expect(p.api.peakInFlight().byModel["minimax/Hailuo Video 01 Live"]).toBeLessThanOrEqual(2);

    p.api.release();
    const result = await apply;
    expect(result.exitCode).toBe(0);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    const peak = p.api.peakInFlight();
    expect(peak.total).toBeLessThanOrEqual(3);
    expect(peak.byModel["minimax/Hailuo Video 01 Live"]).toBeLessThanOrEqual(2);
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(12);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    const alive = [...workers.filter((worker) => worker !== victim), replacement];
    for (const worker of alive) worker.child.kill("SIGTERM");
    await Promise.all(alive.map((worker) => worker.child));
  }, 180_000);
});

describe.skipIf(skip)("a dead worker's requests while every live place waits for a slot", () => {
  const database = databasePerTest();

  test("the waiting deliveries give their places to the re-attachments: no new request takes the dead worker's slots", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3, limit: 2, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 200 },
    );
    // w1 alone takes two steps: their requests (held by the emulator) fill Hailuo's limit.
    const victim = startWorker(p, database.url, "w1", 2);
    await victim.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    const held = await until(async () => {
      const rows = await query<{ address: string; request_id: string }>(
        database.url,
        "SELECT address, request_id FROM attempts WHERE claimed_by = 'w1' AND request_id IS NOT NULL",
      );
      return rows.length === 2 && p.api.state().held === 2 ? rows : undefined;
    }, "w1's two requests held, their ids recorded");

    // w2's only two places: deliveries waiting for a Hailuo slot. Two more steps queued behind.
    const survivor = startWorker(p, database.url, "w2", 2);
    await survivor.ready;
    await until(async () => {
      const rows = await query<{ doing: string }>(
        database.url,
        "SELECT doing FROM workers WHERE name = 'w2'",
      );
      return rows[0]?.doing.split("\n").filter(Boolean).length === 2 ? true : undefined;
    }, "w2's two places taken by steps waiting for a slot");

    victim.child.kill("SIGKILL");
    await victim.child.catch(() => undefined);
    // The queue hands w1's steps back behind the two queued ones; w2 re-attaches to both held
    // requests — without its waiting deliveries giving way it never could (its places stay
    // taken), and once the takeover grace freed the slots they would send new requests.
    await until(
      async () => {
        const rows = await query<{ address: string }>(
          database.url,
          "SELECT address FROM attempts WHERE claimed_by = 'w2' AND request_id = ANY($1)",
          [held.map((row) => row.request_id)],
        );
        return rows.length === 2 ? true : undefined;
      },
      "w1's held requests re-attached by w2",
      30_000,
    );
    expect(p.api.submissions().total).toBe(2);
    expect(p.api.peakInFlight().byModel["minimax/Hailuo Video 01 Live"]).toBe(2);

    p.api.release();
    const result = await apply;
    expect(result.exitCode).toBe(0);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    expect(p.api.peakInFlight().byModel["minimax/Hailuo Video 01 Live"]).toBeLessThanOrEqual(2);
    expect(p.api.submissions().byBody.filter((group) => group.count > 1)).toEqual([]);
    survivor.child.kill("SIGTERM");
    await survivor.child.catch(() => undefined);
  }, 180_000);
});

describe.skipIf(skip)("a worker whose handling of a step throws", () => {
  const database = databasePerTest();

  test("a transient state error (a trigger that raises twice) delays the step, which comes back: the run completes, nothing is submitted twice", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3 }), "items.csv": itemsCsv(2) },
      { duration: 100 },
    );
    const worker = startWorker(p, database.url, "w1");
    await worker.ready;
    // The worker's first two claims of an attempt fail in PostgreSQL (a sequence is not
    // rolled back with the failed transaction, so it counts the tries).
    await query(
      database.url,
      `CREATE SEQUENCE claim_tries;
       CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF nextval('claim_tries') <= 2 THEN RAISE EXCEPTION 'injected: the state failed a moment'; END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER fail_twice BEFORE INSERT ON attempts FOR EACH ROW EXECUTE FUNCTION fail_twice();`,
    );
    const result = await p.run(["apply", "cluster.yaml", "--state", database.url, "--json"], {
      timeoutMs: 120_000,
      env: { RUNFLOW_APPLY_WORKER_CONCURRENCY: "0" },
    });

    expect(result.exitCode).toBe(0);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 6 });
    // The fault hit: deliveries ended in the error and came back. One or two: when two claims
    // share one of the store's group commits, the first raise fails the group and the store
    // then writes each claim alone, so one delivery may see both raises' sequence values.
    const faulted = worker.lines.filter((line) => line.includes("injected: the state failed a moment"));
    expect(faulted.length).toBeGreaterThanOrEqual(1);
    expect(faulted.length).toBeLessThanOrEqual(2);
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(4);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 180_000);
});

describe.skipIf(skip)("a worker's own claim left without an id", () => {
  const database = databasePerTest();

  test("the state refuses the request id after the POST: the step is judged unknown (never sent again), not busy for ever", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 1 }), "items.csv": itemsCsv(1) },
      {
        duration: 100,
      },
    );
    const worker = startWorker(p, database.url, "w1", 1);
    await worker.ready;
    // The first request id recorded fails in PostgreSQL: the POST was answered, the worker
    // lives on, and its claim is left without an id.
    await query(
      database.url,
      `CREATE SEQUENCE id_tries;
       CREATE FUNCTION fail_first_id() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.request_id IS NOT NULL AND OLD.request_id IS NULL AND nextval('id_tries') = 1 THEN
           RAISE EXCEPTION 'injected: the request id could not be recorded';
         END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER fail_first_id BEFORE UPDATE ON attempts FOR EACH ROW EXECUTE FUNCTION fail_first_id();`,
    );
    const result = await p.run(["apply", "cluster.yaml", "--state", database.url, "--json"], {
      timeoutMs: 90_000,
      env: { RUNFLOW_APPLY_WORKER_CONCURRENCY: "0" },
    });

    expect(result.exitCode, result.stdout.slice(-2_000)).toBe(1);
    const steps = await query<{ address: string; state: string }>(
      database.url,
      "SELECT address, state FROM steps ORDER BY address",
    );
    expect(steps.find((step) => step.address.endsWith("/animate"))?.state).toBe("unknown");
    // Sent once, and never again: it may have been created (and billed).
    expect(p.api.submissions().total).toBe(1);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);
});

describe.skipIf(skip)("runflow cancel of a run on workers", () => {
  const database = databasePerTest();

  test("nothing more is submitted: steps queued or waiting in a worker end cancelled, the held one is collected", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 1, hold: true }), "items.csv": itemsCsv(4) },
      { duration: 100 },
    );
    const worker = startWorker(p, database.url, "w1", 2);
    await worker.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    // w1 holds 2 first steps: one submitted and held, one waiting for the slot; 2 are queued.
    await until(async () => {
      const rows = await query<{ doing: string }>(
        database.url,
        "SELECT doing FROM workers WHERE name = 'w1'",
      );
      return rows[0] && rows[0].doing.split("\n").filter(Boolean).length === 2 ? true : undefined;
    }, "w1 holding 2 steps");
    await until(() => (p.api.state().held === 1 ? true : undefined), "the first request held");

    // In the background: a cancel waits a while for the live apply to stop.
    const cancel = p.start(["cancel", "--state", database.url]);
    // The two steps no worker took end cancelled at once, and the one waiting in w1 for the
    // slot once w1 reads the cancel, while the held request still runs (released only then:
    // its end frees the slot, which must not send the waiting step).
    await until(async () => {
      const rows = await query<{ count: number }>(
        database.url,
        "SELECT count(*)::int AS count FROM steps WHERE step_id = 'animate' AND state = 'cancelled'",
      );
      return rows[0]!.count === 3 ? true : undefined;
    }, "2 queued first steps and the one waiting for the slot cancelled");
    p.api.release();
    const result = await apply;
    expect(result.exitCode).toBe(1);
    expect((await cancel).exitCode).toBe(0);
    // The held request is collected; the step that waited in w1 for the slot never went out.
    const animate = await query<{ state: string }>(
      database.url,
      "SELECT state FROM steps WHERE step_id = 'animate' ORDER BY address",
    );
    expect(animate.map((row) => row.state).sort()).toEqual([
      "cancelled",
      "cancelled",
      "cancelled",
      "succeeded",
    ]);
    expect(p.api.submissions().total).toBe(1);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 180_000);
});

describe.skipIf(skip)("a worker of another API", () => {
  const database = databasePerTest();

  test("never executes a step of a run made at another API: it hands the step back for a worker of that API", async () => {
    const p = await project({ "cluster.yaml": clusterYaml({ concurrency: 4 }), "items.csv": itemsCsv(3) });
    // Its client talks to another origin (nothing listens there).
    const other = execa(
      process.execPath,
      [CLI_ENTRY, "worker", "--state", database.url, "--name", "elsewhere"],
      {
        cwd: p.dir,
        env: { NO_COLOR: "1", RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: "http://127.0.0.1:9" },
        reject: false,
        timeout: 120_000,
      },
    );
    const lines: string[] = [];
    const ready = new Promise<void>((resolve) =>
      createInterface({ input: other.stdout }).on("line", (line) => {
        lines.push(line);
        if (line.startsWith("worker elsewhere taking steps")) resolve();
      }),
    );
    await ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "1";
    const applied = p.run(["apply", "cluster.yaml", "--state", database.url, "--json"], {
      timeoutMs: 120_000,
    });
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    const result = await applied;

    expect(result.exitCode).toBe(0);
    expect(lines.filter((line) => line.endsWith(" done"))).toEqual([]);
    const claimants = await query<{ claimed_by: string }>(
      database.url,
      "SELECT DISTINCT claimed_by FROM attempts",
    );
    expect(claimants.map((row) => row.claimed_by)).toEqual([expect.stringMatching(/^apply-/)]);
    console.log(
      `deliveries the other API's worker handed back: ${lines.filter((line) => line.endsWith(" elsewhere")).length}`,
    );
    other.kill("SIGTERM");
    await other;
  }, 180_000);
});

describe.skipIf(skip)("a step queued before its run's plan is recorded", () => {
  const database = databasePerTest();

  // The apply queues its first steps while it still records the rest of the plan (the stored
  // plan's own record is written last): a worker may take one before it can read the run.
  test("is kept in the queue and delivered again, not failed and dropped", async () => {
    const p = await project({ "cluster.yaml": clusterYaml({ concurrency: 1 }), "items.csv": itemsCsv(1) });
    const worker = startWorker(p, database.url, "w1");
    await worker.ready;
    const queue = queueBackend(database.url).openQueue(MODEL_STEPS_QUEUE);
    const job: StepJob = { runId: "20990101-000000-none", address: "shots/item-1/clip" };
    // As the apply adds a step: its job is removed when it completes or fails.
    await queue.add("step", job, { jobId: stepJobId(job), removeOnComplete: true, removeOnFail: true });
    const pending = `w1: ${job.runId} ${job.address} not_recorded_yet`;
    await until(
      () => (worker.lines.filter((line) => line === pending).length >= 2 ? true : undefined),
      "the step delivered twice while its run is not recorded",
    );
    const [row] = await query<{ state: string }>(database.url, "SELECT state FROM bullmq.job WHERE id = $1", [
      stepJobId(job),
    ]);
    expect(row?.state).not.toBe("failed");
    await queue.close();
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);
});

describe.skipIf(skip)("a run whose plan is still being recorded", () => {
  const database = databasePerTest();

  // The apply on a shared state records its plan in parts, the concurrency window first; the
  // plan's record (partial) comes with the first part, its whole record after the last.
  test("a worker executes its steps, those of a part recorded after it opened the run too, before the plan's whole record is written", async () => {
    // Concurrency 1: the first part is the first item's instance, the second item's comes
    // in a later part, once the first request has left.
    const p = await project({ "cluster.yaml": clusterYaml({ concurrency: 1 }), "items.csv": itemsCsv(2) });
    const worker = startWorker(p, database.url, "w1");
    await worker.ready;
    // The write that makes the plan whole is held (a trigger waits for a lock this test
    // holds) until the worker has finished a step of the second item.
    const barrier = await advisoryBarrier(database.url, 7332);
    await query(
      database.url,
      `CREATE FUNCTION hold_whole_plan() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN ${barrier.waitSql} RETURN NEW; END $$`,
    );
    await query(
      database.url,
      `CREATE TRIGGER hold_whole_plan BEFORE UPDATE OF plan_json ON runs FOR EACH ROW
       WHEN (NEW.plan_json::jsonb ->> 'partial' IS NULL) EXECUTE FUNCTION hold_whole_plan()`,
    );
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    await until(
      () =>
        worker.lines.some((line) => line.includes("/item-2/") && line.endsWith(" done")) ? true : undefined,
      "the worker finishing a step of the second item",
    );
    const [run] = await query<{ partial: string | null }>(
      database.url,
      "SELECT plan_json::jsonb ->> 'partial' AS partial FROM runs",
    );
    expect(run?.partial).toBe("true");
    await barrier.release();

    const applied = await apply;
    expect(applied.exitCode).toBe(0);
    expect(worker.lines.filter((line) => line.endsWith(" not_recorded_yet"))).toEqual([]);
    expect(worker.lines.filter((line) => line.includes(" error: "))).toEqual([]);
    expect(worker.lines.filter((line) => line.endsWith(" done"))).toHaveLength(6);
    const [whole] = await query<{ partial: string | null }>(
      database.url,
      "SELECT plan_json::jsonb ->> 'partial' AS partial FROM runs",
    );
    expect(whole?.partial).toBeNull();
    // The concurrency window (the first item's instance) was recorded and queued first.
    const parts = await query<{ part: number; steps: number }>(
      database.url,
      "SELECT part, json_array_length(steps_json) AS steps FROM run_plan_parts ORDER BY part",
    );
    expect(parts.map((row) => row.part)).toEqual([0, 1]);
    expect(parts[0]?.steps).toBe(parts[1]?.steps);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);
});

describe.skipIf(skip)("a worker's share of a wave", () => {
  const database = databasePerTest();

  // BullMQ's worker takes its jobs one transaction after the other, up to its concurrency.
  test("each job is started as soon as the worker has it, not once it has fetched its whole share", async () => {
    const p = await project({ "cluster.yaml": clusterYaml({ concurrency: 3 }), "items.csv": itemsCsv(3) });
    const worker = startWorker(p, database.url, "w1", 3);
    await worker.ready;
    // The worker's third take of a job is held (a trigger waits for a lock this test holds)
    // while two of its jobs are active.
    const barrier = await advisoryBarrier(database.url, 7333);
    await query(
      database.url,
      `CREATE FUNCTION public.hold_third_take() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF (SELECT count(*) FROM bullmq.job WHERE queue = NEW.queue AND state = 'active') >= 2 THEN
           ${barrier.waitSql}
         END IF;
         RETURN NEW;
       END $$`,
    );
    await query(
      database.url,
      `CREATE TRIGGER hold_third_take BEFORE UPDATE OF state ON bullmq.job FOR EACH ROW
       WHEN (NEW.state = 'active' AND OLD.state <> 'active') EXECUTE FUNCTION public.hold_third_take()`,
    );
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    // Both jobs it has are submitted while its third take waits.
    await until(
      () => (p.api.submissions().total >= 2 ? true : undefined),
      "the two jobs the worker has submitted while it waits for its third",
      20_000,
    );
    const [held] = await query<{ waiting: string }>(
      database.url,
      "SELECT count(*) AS waiting FROM pg_locks WHERE locktype = 'advisory' AND objid = 7333 AND NOT granted",
    );
    expect(Number(held?.waiting)).toBe(1);
    await barrier.release();

    const applied = await apply;
    expect(applied.exitCode).toBe(0);
    expect(ndjson(applied.stdout).find((event) => event.event === "run_finished")?.counts).toEqual({
      succeeded: 9,
    });
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);

  test("a worker whose job runs still takes a job queued meanwhile", async () => {
    const p = await project({
      "north.yaml": clusterYaml({ concurrency: 1, hold: true }).replace("name: cluster", "name: north"),
      "south.yaml": clusterYaml({ concurrency: 2 }).replace("name: cluster", "name: south"),
      "items.csv": itemsCsv(1),
    });
    const worker = startWorker(p, database.url, "w1", 4);
    await worker.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const north = p.start(["apply", "north.yaml", "--state", database.url, "--json"]);
    await until(() => (p.api.state().held === 1 ? true : undefined), "north's request held by the emulator");
    // The worker has nothing else to do: south's steps are queued while north's runs.
    const south = await p.run(["apply", "south.yaml", "--state", database.url, "--json"], {
      timeoutMs: 60_000,
    });
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    expect(south.exitCode).toBe(0);
    // North's step was still the worker's job all along.
    expect(p.api.state().held).toBe(1);
    const active = await query(database.url, "SELECT id FROM bullmq.job WHERE state = 'active'");
    expect(active).toHaveLength(1);
    p.api.release();
    expect((await north).exitCode).toBe(0);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);
});

describe.skipIf(skip)("a budget on a PostgreSQL state", () => {
  const database = databasePerTest();
  const HAILUO = "minimax/Hailuo Video 01 Live";
  const ALEPH = "runwayml/runway-aleph/video-to-video";

  /** What the emulator charges for each request the run's attempts hold an id of (its own books). */
  async function chargedUsd(api: Project["api"], url: string): Promise<number[]> {
    const ids = await query<{ request_id: string }>(
      url,
      "SELECT DISTINCT request_id FROM attempts WHERE request_id IS NOT NULL",
    );
    return Promise.all(
      ids.map(async ({ request_id }) => {
        const answer = await fetch(`${api.url}/__emulator/requests/${request_id}`);
        return ((await answer.json()) as { cost_usd: number }).cost_usd;
      }),
    );
  }

  test("2 workers + apply with a budget for part of the batch: never more submitted than it, held-back steps recorded, exit 1 with the budget line; a larger budget submits only those", async () => {
    // 6 items × (Hailuo $0.10 + Aleph $0.10) = $1.20 of requests; the budget allows $0.50.
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3 }), "items.csv": itemsCsv(6) },
      {
        duration: 100,
        prices: { [HAILUO]: { usd: 0.1, unit: "output" }, [ALEPH]: { usd: 0.1, unit: "output" } },
      },
    );
    const workers = [startWorker(p, database.url, "w1"), startWorker(p, database.url, "w2")];
    await Promise.all(workers.map((worker) => worker.ready));

    const first = await p.run(["apply", "cluster.yaml", "--state", database.url, "--max-cost", "0.5"], {
      timeoutMs: 120_000,
    });

    expect(first.stderr).toBe("");
    expect(first.exitCode).toBe(1);
    // The emulator's log: what it was asked to do never costs more than the budget.
    const submitted = p.api.submissions().total;
    const charged = await chargedUsd(p.api, database.url);
    expect(charged).toHaveLength(submitted);
    const spent = charged.reduce((sum, usd) => sum + usd, 0);
    expect(spent).toBeLessThanOrEqual(0.5 + 1e-9);
    expect(submitted).toBeGreaterThan(0);
    expect(submitted).toBeLessThanOrEqual(5);
    // Held back, recorded as such; their dependents blocked: not submitted either.
    const states = await query<{ state: string; count: number }>(
      database.url,
      "SELECT state, count(*)::int AS count FROM steps GROUP BY state ORDER BY state",
    );
    const count = (state: string) => states.find((row) => row.state === state)?.count ?? 0;
    expect(count("held")).toBeGreaterThan(0);
    const held = await query<{ error: string }>(database.url, "SELECT error FROM steps WHERE state = 'held'");
    for (const step of held) expect(step.error).toContain("held back by the budget");
    const notSubmitted = count("held") + count("blocked");
    expect(first.stdout).toContain(
      `budget reached: $${spent.toFixed(2)} of $0.50 spent, ${notSubmitted} steps not submitted`,
    );
    expect(first.stdout).toContain("budget $0.50");
    // What the state says was spent is what the emulator charged.
    const [budget] = await query<{ spent_micros: number; reserved_micros: number; reached: boolean }>(
      database.url,
      "SELECT spent_micros::int, reserved_micros::int, reached FROM run_budgets",
    );
    expect(budget).toEqual({ spent_micros: Math.round(spent * 1e6), reserved_micros: 0, reached: true });
    console.log(
      `budget $0.50 across 2 workers + apply: ${submitted} submitted ($${spent.toFixed(2)}), ${count("held")} held, ${count("blocked")} blocked`,
    );

    const second = await p.run(["apply", "cluster.yaml", "--state", database.url, "--max-cost", "5"], {
      timeoutMs: 120_000,
    });
    expect(second.exitCode).toBe(0);
    // Only the requests held back (and those behind them): 12 in all, each body once.
    const after = p.api.submissions();
    expect(after.total).toBe(12);
    expect(after.byBody.filter((group) => group.count > 1)).toEqual([]);
    expect(second.stdout).toContain(`budget: $${(1.2 - spent).toFixed(2)} of $5.00 spent`);
    for (const worker of workers) worker.child.kill("SIGTERM");
    await Promise.all(workers.map((worker) => worker.child));
  }, 180_000);

  test("an actual cost above its estimate, reported to one worker, tightens the next decision of every other", async () => {
    // The price says $0.10 a request; the emulator charges double. One request at a time
    // across the account, taken by whichever process: 5 × $0.20 = $1.00, and a sixth at its
    // first estimate ($0.10) would fit $1.10 — and be charged $0.20, past it.
    const oneStep = `version: 1
name: doubled
concurrency: 1
defaults:
  poll: { interval: 25ms, max_interval: 250ms }
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: ${HAILUO}
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "{{API}}/media/image.png?w=640&h=480"
`;
    const p = await project(
      { "doubled.yaml": oneStep, "items.csv": itemsCsv(10) },
      { duration: 50, prices: { [HAILUO]: { usd: 0.1, unit: "output" } }, costFactor: 2 },
    );
    const workers = [startWorker(p, database.url, "w1"), startWorker(p, database.url, "w2")];
    await Promise.all(workers.map((worker) => worker.ready));

    const result = await p.run(["apply", "doubled.yaml", "--state", database.url, "--max-cost", "1.1"], {
      timeoutMs: 120_000,
    });

    expect(result.exitCode).toBe(1);
    const charged = await chargedUsd(p.api, database.url);
    expect(charged).toEqual([0.2, 0.2, 0.2, 0.2, 0.2]);
    expect(p.api.submissions().total).toBe(5);
    expect(result.stdout).toContain("budget reached: $1.00 of $1.10 spent, 5 steps not submitted");
    const claimants = await query<{ claimed_by: string }>(
      database.url,
      "SELECT DISTINCT claimed_by FROM attempts ORDER BY claimed_by",
    );
    console.log(`doubled costs: 5 requests sent by ${claimants.map((row) => row.claimed_by).join(", ")}`);
    for (const worker of workers) worker.child.kill("SIGTERM");
    await Promise.all(workers.map((worker) => worker.child));
  }, 180_000);
});

describe.skipIf(skip)("a worker told to stop", () => {
  const database = databasePerTest();
  const runIdOf = async (url: string) => (await query<{ id: string }>(url, "SELECT id FROM runs"))[0]!.id;

  test("SIGTERM while it watches a running request: it exits 130 without waiting for it, and another worker re-attaches to it", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 1, hold: true }), "items.csv": itemsCsv(1) },
      { duration: 100 },
    );
    const first = startWorker(p, database.url, "w1", 1);
    await first.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    await until(() => (p.api.state().held === 1 ? true : undefined), "the first request held");

    // The request is held running until the test releases it: the worker must not wait for it.
    first.child.kill("SIGTERM");
    const stopped = await Promise.race([
      first.child,
      new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 30_000).unref()),
    ]);
    expect(stopped).not.toBe("still running");
    // (The harness sends SIGKILL 5 s after a SIGTERM that did not end the process.)
    expect((stopped as Awaited<typeof first.child>).exitCode).toBe(130);
    expect(first.lines).toContain(`w1: ${await runIdOf(database.url)} clip/item-1/animate handed_back`);

    const second = startWorker(p, database.url, "w2", 1);
    await second.ready;
    p.api.release();
    expect((await apply).exitCode).toBe(0);
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(2);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    second.child.kill("SIGTERM");
    await second.child;
  }, 120_000);
});

describe.skipIf(skip)("a local program in a worker that stops", () => {
  const database = databasePerTest();

  test("SIGTERM while it runs a run step's program: the step is handed back, another worker runs it again, the run succeeds", async () => {
    // The program says it started (a line per start in a folder of the test's), then waits
    // for the test's `go` file there.
    const signals = mkdtempSync(path.join(os.tmpdir(), "runflow-handed-"));
    onTestFinished(() => rmSync(signals, { recursive: true, force: true }));
    const starts = path.join(signals, "starts.txt");
    const go = path.join(signals, "go");
    const workflow = `version: 1
name: handed
jobs:
  local:
    steps:
      - id: wait
        run: [sh, -c, 'echo started >> "$1"; while [ ! -f "$2" ]; do sleep 0.05; done; echo done > out.txt', wait, "${starts}", "${go}"]
        outputs: { out: out.txt }
`;
    const p = await project({ "handed.yaml": workflow });
    const startCount = () =>
      existsSync(starts) ? readFileSync(starts, "utf8").split("\n").filter(Boolean).length : 0;
    const first = startWorker(p, database.url, "w1", 1);
    await first.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "handed.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    await until(() => (startCount() === 1 ? true : undefined), "the program started by w1");

    first.child.kill("SIGTERM");
    const stopped = await first.child;
    expect(stopped.exitCode, `${stopped.signal} ${first.lines.join("\n")} ${stopped.stderr}`).toBe(130);
    const [step] = await query<{ state: string; error: string | null }>(
      database.url,
      "SELECT state, error FROM steps WHERE address = 'local/local/wait'",
    );
    // Waiting for another worker, not cancelled: it is the run's step still.
    expect(step?.state).toBe("waiting");

    const second = startWorker(p, database.url, "w2", 1);
    await second.ready;
    await until(() => (startCount() === 2 ? true : undefined), "the program started again by w2");
    writeFileSync(go, "");
    const applied = await apply;
    expect(applied.exitCode, applied.stdout).toBe(0);
    expect(ndjson(applied.stdout).find((event) => event.event === "run_finished")?.counts).toEqual({
      succeeded: 1,
    });
    second.child.kill("SIGTERM");
    await second.child;
  }, 120_000);
});

describe.skipIf(skip)("a dead worker's step given back by the stalled check", () => {
  const database = databasePerTest();

  test("goes to the head of its queue: the next free place runs it before the steps queued after it", async () => {
    // Each program writes its item to `starts` when it starts, then waits for the `go` file.
    const signals = mkdtempSync(path.join(os.tmpdir(), "runflow-head-"));
    onTestFinished(() => rmSync(signals, { recursive: true, force: true }));
    const starts = path.join(signals, "starts.txt");
    const go = path.join(signals, "go");
    const workflow = `version: 1
name: head
jobs:
  local:
    for_each: items.csv
    steps:
      - id: wait
        run: [sh, -c, 'echo "$3" >> "$1"; while [ ! -f "$2" ]; do sleep 0.05; done; echo done > out.txt', wait, "${starts}", "${go}", "\${{ item.id }}"]
        outputs: { out: out.txt }
`;
    const p = await project({ "head.yaml": workflow, "items.csv": itemsCsv(5) });
    const started = () =>
      existsSync(starts) ? readFileSync(starts, "utf8").split("\n").filter(Boolean) : [];
    // One program at a time in each worker; the apply executes nothing itself.
    const workers = ["w1", "w2"].map((name) =>
      startWorkerProcess(p, name, ["--state", database.url, "--concurrency", "1", "--processes", "1"]),
    );
    await Promise.all(workers.map((worker) => worker.ready));
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "head.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    await until(() => (started().length === 2 ? true : undefined), "a program started by each worker");
    // The step w1 runs, by its heartbeat.
    const [runId, address] = await until(async () => {
      const [row] = await query<{ doing: string }>(
        database.url,
        "SELECT doing FROM workers WHERE name = 'w1'",
      );
      return row?.doing ? (row.doing.split(" ") as [string, string]) : undefined;
    }, "w1's heartbeat naming its step");

    workers[0]!.child.kill("SIGKILL");
    await workers[0]!.child.catch(() => undefined);
    // BullMQ's stalled check (in w2) gives the job back, at the head of the queue.
    await until(async () => {
      const rows = await query<{ state: string; seq: string }>(
        database.url,
        "SELECT state, seq::text FROM bullmq.job WHERE id = $1",
        [stepJobId({ runId, address })],
      );
      return rows[0]?.state === "waiting" && Number(rows[0].seq) < 0 ? true : undefined;
    }, "w1's step back in the queue, at its head");
    writeFileSync(go, "");
    await until(() => (started().length >= 3 ? true : undefined), "w2's next program");
    expect(started()[2], "the next program w2 ran").toBe(address.split("/")[1]);

    const applied = await apply;
    expect(applied.exitCode, applied.stdout).toBe(0);
    expect(ndjson(applied.stdout).find((event) => event.event === "run_finished")?.counts).toEqual({
      succeeded: 5,
    });
    workers[1]!.child.kill("SIGTERM");
    await workers[1]!.child;
  }, 120_000);
});

describe.skipIf(skip)("a run's workflow settings in a worker", () => {
  const database = databasePerTest();

  /** When the emulator saw each status poll of one request, in order (ms). */
  function statusPolls(api: Project["api"]): number[] {
    return api
      .requestLog()
      .filter((entry) => entry.endpoint === "status")
      .map((entry) => Date.parse(entry.at));
  }

  test("a worker polls a run's requests as its workflow's poll settings say, not on the client's own schedule", async () => {
    // poll: { interval: 25ms, max_interval: 250ms }: five waits of 25, 38, 56, 84 and 127 ms.
    // The client's own schedule waits 1, 1.5, 2.25, 3.4 and 5 s: 13.1 s at the least.
    const p = await project({
      "cluster.yaml": clusterYaml({ concurrency: 1, hold: true }),
      "items.csv": itemsCsv(1),
    });
    const worker = startWorker(p, database.url, "w1", 1);
    await worker.ready;
    // Only the worker executes steps: the apply follows.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    const polls = await until(
      () => {
        const seen = statusPolls(p.api);
        return seen.length >= 6 ? seen.slice(0, 6) : undefined;
      },
      "6 status polls of the held request",
      60_000,
    );
    const spanMs = polls[5]! - polls[0]!;
    console.log(`a worker's first 6 status polls of a held request spanned ${spanMs} ms`);
    expect(spanMs).toBeLessThan(5_000);

    p.api.release();
    const result = await apply;
    expect(result.exitCode).toBe(0);
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);

  test("a worker ends a request at its step's timeout", async () => {
    const yaml = clusterYaml({ concurrency: 1, hold: true })
      .replace("retry: { attempts: 2, backoff: 50ms, max_backoff: 200ms }", "retry: { attempts: 1 }")
      .replace("defaults:\n", "defaults:\n  timeout: 1s\n");
    expect(yaml).toContain("timeout: 1s");
    const p = await project({ "cluster.yaml": yaml, "items.csv": itemsCsv(1) });
    const worker = startWorker(p, database.url, "w1", 1);
    await worker.ready;
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;

    // Held running by the emulator: it never ends unless the worker gives up on it.
    const result = await apply;
    expect(result.exitCode).toBe(1);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ timed_out: 1, blocked: 2 });
    const [step] = await query<{ error: string }>(
      database.url,
      "SELECT error FROM steps WHERE step_id = 'animate'",
    );
    expect(step!.error).toContain("1s");
    p.api.release();
    worker.child.kill("SIGTERM");
    await worker.child;
  }, 120_000);
});

describe("runflow worker refuses what it cannot run on", () => {
  test("a SQLite state, no token, a bad --concurrency: exit 2 with what to do", async () => {
    const p = await project({});
    const sqlite = await p.run(["worker", "--state", "state/runflow.db"]);
    expect(sqlite.exitCode).toBe(2);
    expect(sqlite.stderr).toContain(
      "runflow worker needs a shared state: --state state/runflow.db is not a postgres:// URL",
    );
    expect(sqlite.stderr).toContain("hint: start PostgreSQL");

    const noToken = await p.run(["worker", "--state", "postgres://nobody@127.0.0.1:1/none"], {
      env: { RUNCOMFY_API_TOKEN: undefined },
    });
    expect(noToken.exitCode).toBe(2);
    expect(noToken.stderr).toContain("no RunComfy API token");

    const zero = await p.run([
      "worker",
      "--concurrency",
      "0",
      "--state",
      "postgres://nobody@127.0.0.1:1/none",
    ]);
    expect(zero.exitCode).toBe(2);
    expect(zero.stderr).toContain('--concurrency must be a whole number of at least 1, not "0"');
  });
});
