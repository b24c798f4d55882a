/**
 * Redis as the queues' backend, chosen by URL (SPEC §10, issue 12): real PostgreSQL for the
 * state and a real Redis for the queues (servers the test starts), real `runflow worker`
 * and `runflow apply` processes, the emulator on loopback. What must hold is what holds on
 * PostgreSQL queues: the caps account-wide, every body submitted once, a dead worker's steps
 * taken over within 10 s — and the queues really in Redis while the runs, attempts and
 * workers stay in PostgreSQL.
 */
import { Redis } from "ioredis";
import { describe, expect, test } from "vitest";
import { queueBackend } from "../src/cluster/queue-backend.js";
import { MODEL_STEPS_QUEUE, stepJobId } from "../src/cluster/queues.js";
import { itemsCsv, ndjson, project, type Project } from "./apply-harness.js";
import { databasePerTest, query, skipWithoutPostgres } from "./helpers/postgres.js";
import { until } from "./helpers/until.js";
import { clusterYaml, startWorkerProcess, type WorkerProcess } from "./helpers/cluster.js";

/** A worker on Redis queues, told where they are by `--queue` or by RUNFLOW_QUEUE. */
function startWorker(
  p: Project,
  names: { state: string; queue: string; name: string; via: "flag" | "env" },
): WorkerProcess {
  const args = ["--state", names.state, "--concurrency", "4"];
  if (names.via === "flag") return startWorkerProcess(p, names.name, [...args, "--queue", names.queue]);
  return startWorkerProcess(p, names.name, args, { RUNFLOW_QUEUE: names.queue });
}
import { redisPerTest, skipWithoutRedis } from "./helpers/redis.js";

const skip = skipWithoutPostgres("queues on Redis") || skipWithoutRedis("queues on Redis");

async function runIdOf(url: string): Promise<string> {
  return (await query<{ id: string }>(url, "SELECT id FROM runs"))[0]!.id;
}

/** The keys BullMQ made in Redis for runflow's two queues. */
async function queueKeys(url: string): Promise<string[]> {
  const client = new Redis(url);
  try {
    return (await client.keys("bull:runflow-*")).sort();
  } finally {
    client.disconnect();
  }
}

describe.skipIf(skip)("a PostgreSQL state with its queues on Redis", () => {
  const database = databasePerTest();
  const redis = redisPerTest();

  test("2 workers + apply run a chain to completion on Redis queues; the caps hold; every body is submitted once; the state stays in PostgreSQL", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 3, limit: 2 }), "items.csv": itemsCsv(6) },
      { duration: 300 },
    );
    const workers = [
      startWorker(p, { state: database.url, queue: redis.url, name: "w1", via: "flag" }),
      startWorker(p, { state: database.url, queue: redis.url, name: "w2", via: "env" }),
    ];
    const firstLines = await Promise.all(workers.map((worker) => worker.ready));
    for (const line of firstLines) expect(line).toContain(`, queues at ${redis.url} (concurrency 4)`);

    const applied = await p.run(
      ["apply", "cluster.yaml", "--state", database.url, "--queue", redis.url, "--json"],
      { timeoutMs: 120_000 },
    );

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

    // The jobs went through Redis: BullMQ's keys of both queues are there …
    const keys = await queueKeys(redis.url);
    expect(keys).toContain("bull:runflow-model-steps:meta");
    expect(keys).toContain("bull:runflow-run-steps:meta");
    // … and not through PostgreSQL, which has no BullMQ schema, while it keeps the run, every
    // attempt with its claimant, and the request slots' table (empty again).
    const schemas = await query(database.url, "SELECT 1 FROM pg_namespace WHERE nspname = 'bullmq'");
    expect(schemas).toEqual([]);
    const runs = await query<{ status: string }>(database.url, "SELECT status FROM runs");
    expect(runs).toEqual([{ status: "succeeded" }]);
    const attempts = await query<{ claimed: number; with_id: number }>(
      database.url,
      "SELECT count(claimed_by)::int AS claimed, count(request_id)::int AS with_id FROM attempts",
    );
    expect(attempts).toEqual([{ claimed: 12, with_id: 12 }]);
    expect(await query(database.url, "SELECT 1 FROM request_slots")).toEqual([]);

    const byWorker = workers.map(
      (worker) => `${worker.name}: ${worker.lines.filter((line) => line.endsWith(" done")).length}`,
    );
    console.log(
      `Redis queues — steps done by the workers (the rest by apply's own): ${byWorker.join(", ")}; peak in flight ${JSON.stringify(peak)}`,
    );
    for (const worker of workers) worker.child.kill("SIGTERM");
    const ended = await Promise.all(workers.map((worker) => worker.child));
    expect(ended.map((result) => result.exitCode)).toEqual([130, 130]);
  }, 180_000);

  test("a medium the preflight refuses, with queues that answer: exit 2, and the queues' connection (made while the probes waited) does not keep the apply alive", async () => {
    const p = await project({
      "small.yaml": clusterYaml({ concurrency: 2 }).replace("w=640&h=480", "w=200&h=200"),
      "items.csv": itemsCsv(2),
    });
    const applied = await p.run(["apply", "small.yaml", "--state", database.url, "--queue", redis.url], {
      timeoutMs: 30_000,
    });
    expect(applied.exitCode).toBe(2);
    expect(applied.stderr).toContain("must both exceed 300 pixels");
    expect(p.api.submissions().total).toBe(0);
    expect(await query(database.url, "SELECT id FROM runs")).toEqual([]);
  }, 60_000);

  test("a worker killed with SIGKILL while holding steps: another takes them over from Redis within 10 s, and no body is submitted twice", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 6, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 200 },
    );
    const workers = [
      startWorker(p, { state: database.url, queue: redis.url, name: "w1", via: "flag" }),
      startWorker(p, { state: database.url, queue: redis.url, name: "w2", via: "flag" }),
    ];
    await Promise.all(workers.map((worker) => worker.ready));
    // The apply executes one step itself: the workers hold the others.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "1";
    process.env.RUNFLOW_QUEUE = redis.url;
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    delete process.env.RUNFLOW_QUEUE;

    // Every first step submitted and held in progress by the emulator, and its request id
    // recorded (a claimant killed before that is judged `unknown` instead: another test's case).
    await until(() => (p.api.state().held === 6 ? true : undefined), "6 held requests");
    await until(async () => {
      const rows = await query<{ count: number }>(
        database.url,
        "SELECT count(*)::int AS count FROM attempts WHERE request_id IS NOT NULL",
      );
      return rows[0]!.count === 6 ? true : undefined;
    }, "6 request ids recorded");
    const holders = await until(async () => {
      const rows = await query<{ name: string; doing: string }>(
        database.url,
        "SELECT name, doing FROM workers WHERE name IN ('w1', 'w2') AND doing <> '' ORDER BY name",
      );
      return rows.length > 0 ? rows : undefined;
    }, "a worker holding steps");
    const victim = workers.find((worker) => worker.name === holders[0]!.name)!;
    const held = holders[0]!.doing.split("\n").map((line) => line.split(" ")[1]!);
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();
    p.api.release();

    // Each step it held gets a new attempt claimed by another process, re-attached to the same request.
    const takeovers = await until(
      async () => {
        const rows = await query<{ address: string; started_at: string }>(
          database.url,
          `SELECT address, started_at FROM attempts
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
      `Redis queues — SIGKILL of ${victim.name} holding ${held.length} step(s): taken over after ${seconds.map((s) => s.toFixed(1)).join(", ")} s`,
    );
    for (const s of seconds) expect(s).toBeLessThan(10);

    const result = await apply;
    expect(result.exitCode).toBe(0);
    const finished = ndjson(result.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(12);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    expect(await queueKeys(redis.url)).toContain("bull:runflow-model-steps:meta");
    for (const worker of workers) if (worker !== victim) worker.child.kill("SIGTERM");
    await Promise.all(workers.filter((worker) => worker !== victim).map((worker) => worker.child));
  }, 180_000);
});

describe.skipIf(skip)("a Redis that loses its keys mid-run", () => {
  const database = databasePerTest();
  const redis = redisPerTest();

  test("the apply queues again the steps whose jobs are gone: the run completes, no body is submitted twice", async () => {
    const p = await project(
      { "cluster.yaml": clusterYaml({ concurrency: 2, hold: true }), "items.csv": itemsCsv(6) },
      { duration: 100 },
    );
    const worker = startWorker(p, { state: database.url, queue: redis.url, name: "w1", via: "flag" });
    await worker.ready;
    // The worker executes every step: two at a time (the concurrency), the other four queued.
    process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY = "0";
    process.env.RUNFLOW_QUEUE = redis.url;
    const apply = p.start(["apply", "cluster.yaml", "--state", database.url, "--json"]);
    delete process.env.RUNFLOW_APPLY_WORKER_CONCURRENCY;
    delete process.env.RUNFLOW_QUEUE;
    await until(async () => {
      const rows = await query<{ count: number }>(
        database.url,
        "SELECT count(*)::int AS count FROM attempts WHERE request_id IS NOT NULL",
      );
      return rows[0]!.count === 2 && p.api.state().held === 2 ? true : undefined;
    }, "2 requests held, their ids recorded");
    expect(await queueKeys(redis.url)).toContain(
      `bull:runflow-model-steps:${stepJobId({ runId: await runIdOf(database.url), address: "clip/item-6/animate" })}`,
    );

    // What a Redis restarted without persistence holds: nothing.
    const client = new Redis(redis.url);
    await client.flushall();
    client.disconnect();
    p.api.release();

    const result = await Promise.race([
      apply,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000)),
    ]);
    if (result === undefined) apply.kill("SIGKILL");
    expect(result?.exitCode, "the apply finished").toBe(0);
    const finished = ndjson(result!.stdout).find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ succeeded: 18 });
    const submissions = p.api.submissions();
    expect(submissions.total).toBe(12);
    expect(submissions.byBody.filter((group) => group.count > 1)).toEqual([]);
    worker.child.kill("SIGTERM");
    await worker.child.catch(() => undefined);
  }, 120_000);
});

describe.skipIf(skip)("a step delivered before its run's plan is stored", () => {
  const database = databasePerTest();
  const redis = redisPerTest();

  test("comes back to the queue shortly instead of failing (a failed job would be a step lost)", async () => {
    const p = await project({});
    const worker = startWorker(p, { state: database.url, queue: redis.url, name: "w1", via: "flag" });
    await worker.ready;
    // What an apply does between handing out its first steps and writing its stored plan
    // (RunRecorder.finish): the job is queued, the run is not readable yet.
    const job = { runId: "20261205-000000-abcd", address: "clip/item-1/animate" };
    const queue = queueBackend(redis.url).openQueue(MODEL_STEPS_QUEUE);
    await queue.add("step", job, { jobId: stepJobId(job), removeOnComplete: true, removeOnFail: true });
    const line = `w1: ${job.runId} ${job.address} not_recorded_yet`;
    const events = async () => {
      const client = new Redis(redis.url);
      try {
        const entries = await client.xrange("bull:runflow-model-steps:events", "-", "+");
        return entries.map(([, fields]) => fields[1]);
      } finally {
        client.disconnect();
      }
    };
    const seen = await until(async () => {
      if ((await events()).includes("failed")) return "failed";
      return worker.lines.filter((printed) => printed === line).length >= 2 ? "asked again" : undefined;
    }, "the job delivered twice, or failed");
    expect(seen).toBe("asked again");
    expect(await queueKeys(redis.url)).toContain(`bull:runflow-model-steps:${stepJobId(job)}`);
    await queue.remove(stepJobId(job));
    await queue.close();
    worker.child.kill("SIGTERM");
    expect((await worker.child).exitCode).toBe(130);
  }, 60_000);
});

describe.skipIf(skipWithoutPostgres("bad queue URLs"))("a queue URL runflow cannot use", () => {
  const database = databasePerTest();

  test("runflow worker --queue: another scheme, or a Redis that does not answer, is exit 2 with what to do", async () => {
    const p = await project({});
    const scheme = await p.run(["worker", "--state", database.url, "--queue", "http://127.0.0.1:6379"]);
    expect(scheme.exitCode).toBe(2);
    expect(scheme.stderr).toContain(
      "--queue (or RUNFLOW_QUEUE) http://127.0.0.1:6379/ is not a queue URL: runflow's queues live in PostgreSQL or Redis",
    );
    expect(scheme.stderr).toContain("hint: give postgres://USER@HOST[:PORT]/DATABASE, or redis://");
    expect(scheme.stderr).not.toContain("    at ");

    // Nothing listens on port 1; the password is never shown.
    const unreachable = await p.run(
      ["worker", "--state", database.url, "--queue", "redis://:s3cret-word@127.0.0.1:1"],
      { timeoutMs: 30_000 },
    );
    expect(unreachable.exitCode).toBe(2);
    expect(unreachable.stderr).toContain("cannot reach the Redis queues at redis://:***@127.0.0.1:1");
    expect(unreachable.stderr).toContain("ECONNREFUSED");
    expect(unreachable.stderr).toContain("hint: start Redis there");
    expect(unreachable.stderr).not.toContain("s3cret-word");
    expect(unreachable.stdout).not.toContain("taking steps");
    // It never joined the cluster.
    expect(await query(database.url, "SELECT name FROM workers")).toEqual([]);

    const fromEnv = await p.run(["worker", "--state", database.url], {
      env: { RUNFLOW_QUEUE: "amqp://127.0.0.1" },
    });
    expect(fromEnv.exitCode).toBe(2);
    expect(fromEnv.stderr).toContain("amqp://127.0.0.1 is not a queue URL");
  }, 60_000);

  test("apply on a PostgreSQL state with queues that do not answer: exit 2, nothing recorded, nothing submitted", async () => {
    const p = await project({ "cluster.yaml": clusterYaml({ concurrency: 2 }), "items.csv": itemsCsv(2) });
    const viaFlag = await p.run(
      ["apply", "cluster.yaml", "--state", database.url, "--queue", "redis://127.0.0.1:1"],
      { timeoutMs: 30_000 },
    );
    expect(viaFlag.exitCode).toBe(2);
    expect(viaFlag.stderr).toContain("cannot reach the Redis queues at redis://127.0.0.1:1");
    const viaEnv = await p.run(["apply", "cluster.yaml", "--state", database.url], {
      env: { RUNFLOW_QUEUE: "redis//127.0.0.1:6379" },
    });
    expect(viaEnv.exitCode).toBe(2);
    expect(viaEnv.stderr).toContain("is not a queue URL");
    expect(p.api.submissions().total).toBe(0);
    expect(await query(database.url, "SELECT id FROM runs")).toEqual([]);

    // The queues are checked while the media probes wait, but a refused medium is still
    // the verdict given first, as without a cluster.
    const small = await project({
      "small.yaml": clusterYaml({ concurrency: 2 }).replace("w=640&h=480", "w=200&h=200"),
      "items.csv": itemsCsv(2),
    });
    const smallImage = await small.run(
      ["apply", "small.yaml", "--state", database.url, "--queue", "redis://127.0.0.1:1"],
      { timeoutMs: 30_000 },
    );
    expect(smallImage.exitCode).toBe(2);
    expect(smallImage.stderr).toContain("must both exceed 300 pixels");
    expect(smallImage.stderr).not.toContain("cannot reach the Redis queues");
    expect(small.api.submissions().total).toBe(0);
    expect(await query(database.url, "SELECT id FROM runs")).toEqual([]);

    // --queue on a SQLite state means nothing: said so, not ignored.
    const sqlite = await p.run(["apply", "cluster.yaml", "--queue", "redis://127.0.0.1:1"]);
    expect(sqlite.exitCode).toBe(2);
    expect(sqlite.stderr).toContain("--queue is for a shared state");
    expect(p.api.submissions().total).toBe(0);
  }, 60_000);
});
