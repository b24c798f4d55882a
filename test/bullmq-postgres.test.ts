/**
 * bullmq 6 on its PostgreSQL backend, on a server the tests start (test/helpers/postgres.ts):
 * the groundwork of issue 12's dispatcher. It runs jobs, its global concurrency holds across
 * workers, and with the stalled-job tuning of docs/decisions.md ("Several machines") a
 * SIGKILLed worker's job is taken over by another worker within 10 s.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createPostgresBackend, withBackend, type Job } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { deferred, type Deferred } from "./helpers/deferred.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";

const { Queue, Worker } = withBackend(createPostgresBackend);

/** Takeover within 10 s: a lock lives 4 s unrenewed, a stalled check runs every 2 s. */
const STALLED_TUNING = { lockDuration: 4000, stalledInterval: 2000, maxStalledCount: 1000 };

const skip = skipWithoutPostgres("bullmq on PostgreSQL");

describe.skipIf(skip)("bullmq 6 on PostgreSQL", () => {
  const database = databasePerTest();
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  /** BullMQ's own schema in the test's database, migrated on first connection. */
  function connection() {
    return { connectionString: database.url, migrate: true };
  }
  function queue(name: string) {
    const made = new Queue(name, { connection: connection() });
    closers.push(() => made.close());
    return made;
  }
  function worker(name: string, processor: (job: Job) => Promise<unknown>, options: object = {}) {
    const made = new Worker(name, processor, { connection: connection(), ...options });
    closers.push(() => made.close());
    return made;
  }

  it("enqueues a job and a worker processes it", async () => {
    const steps = queue("steps");
    const completed = deferred<{ id: string | undefined; result: unknown }>();
    const doubler = worker("steps", (job: Job<{ x: number }>) => Promise.resolve(job.data.x * 2));
    doubler.on("completed", (job, result) => completed.resolve({ id: job.id, result }));

    const job = await steps.add("double", { x: 21 });

    expect(await completed.promise).toEqual({ id: job.id, result: 42 });
    expect(await steps.getJobCounts("completed", "waiting", "active")).toEqual({
      completed: 1,
      waiting: 0,
      active: 0,
    });
  });

  it("holds the queue's global concurrency across workers", async () => {
    const steps = queue("capped");
    await steps.setGlobalConcurrency(2);
    let running = 0;
    let mostAtOnce = 0;
    let holding = true;
    const held: Array<Deferred<void>> = [];
    const twoStarted = deferred();
    const allDone = deferred();
    let done = 0;
    const processor = async () => {
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      if (holding) {
        const gate = deferred();
        held.push(gate);
        if (held.length === 2) twoStarted.resolve();
        await gate.promise;
      }
      running--;
    };
    // Whatever the test's outcome, the held jobs are let go before the workers close.
    closers.unshift(() => {
      holding = false;
      for (const gate of held) gate.resolve();
      return Promise.resolve();
    });
    // Three workers with three slots each: nine free slots for six jobs.
    for (let i = 0; i < 3; i++) {
      worker("capped", processor, { concurrency: 3 }).on("completed", () => {
        if (++done === 6) allDone.resolve();
      });
    }

    await steps.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: "step", data: { i } })));
    await twoStarted.promise;
    expect(await steps.getJobCounts("active", "waiting")).toEqual({ active: 2, waiting: 4 });

    holding = false;
    for (const gate of held) gate.resolve();
    await allDone.promise;
    expect(mostAtOnce).toBe(2);
  });

  it("moves a SIGKILLed worker's job to another worker within 10 s", async () => {
    const steps = queue("takeover");
    const job = await steps.add("step", { n: 1 });

    // A worker in another process takes the job, says so, and hangs on to it.
    const doomed = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { withBackend, createPostgresBackend } from "bullmq";
         const { Worker } = withBackend(createPostgresBackend);
         new Worker("takeover", async (job) => { console.log("took " + job.id); await new Promise(() => {}); },
           { connection: { connectionString: process.env.PG_URL, migrate: true }, ...${JSON.stringify(STALLED_TUNING)} });`,
      ],
      {
        cwd: process.cwd(),
        env: { ...process.env, PG_URL: database.url },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const [firstLine] = (await once(createInterface({ input: doomed.stdout }), "line")) as [string];
    expect(firstLine).toBe(`took ${job.id}`);

    doomed.kill("SIGKILL");
    await once(doomed, "exit");
    const killedAt = Date.now();
    const takenOver = deferred<{ id: string | undefined; stalledCounter: number; afterMs: number }>();
    worker(
      "takeover",
      (taken) => {
        takenOver.resolve({
          id: taken.id,
          stalledCounter: taken.stalledCounter,
          afterMs: Date.now() - killedAt,
        });
        return Promise.resolve();
      },
      STALLED_TUNING,
    );

    const { afterMs, ...taken } = await takenOver.promise;
    expect(taken).toEqual({ id: job.id, stalledCounter: 1 });
    console.info(`bullmq takeover after SIGKILL: ${afterMs} ms`);
    expect(afterMs).toBeLessThan(10_000);
  });
});
