/**
 * What the PostgreSQL adapter (src/store/postgres-state-store.ts) does beyond the store
 * conformance suite: its migrations, openers racing, a lost server, a server crash, what
 * it writes as text (no token, no NUL), one bad write in a group, a claim committed beside
 * the writer's queue, and its prior-runs lookup kept current with writes issued while it was
 * being fetched. A real server on loopback.
 */
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StateStore } from "../src/store/port.js";
import { LATEST_POSTGRES_SCHEMA_VERSION, POSTGRES_MIGRATIONS } from "../src/store/postgres-migrations.js";
import {
  describePostgresLocation,
  openPostgresStateStore,
  type PostgresStateStoreOptions,
} from "../src/store/postgres-state-store.js";
import type { NewRun, NewStep } from "../src/store/types.js";
import {
  databasePerTest,
  query,
  skipWithoutPostgres,
  startPostgres,
  type PostgresServer,
} from "./helpers/postgres.js";

const skip = skipWithoutPostgres("PostgreSQL state store");
const ORIGIN = "https://api.example";
const CAT = "teaser/cat/animate";
const DOG = "teaser/dog/animate";
const TOKEN = "rc-secret-token-0123456789";

const opened: StateStore[] = [];
afterEach(async () => {
  for (const store of opened.splice(0).reverse()) await store.close().catch(() => undefined);
});

async function open(url: string, options: PostgresStateStoreOptions = {}) {
  const store = await openPostgresStateStore(url, { secrets: [], ...options });
  opened.push(store);
  return store;
}

function newRun(id: string, overrides: Partial<NewRun> = {}): NewRun {
  return {
    id,
    workflowName: "teasers",
    workflowFile: "teasers.yaml",
    kind: "apply",
    plan: null,
    options: {},
    startedAt: 1_000,
    pid: 4242,
    hostname: "host-a",
    apiOrigin: ORIGIN,
    ...overrides,
  };
}

function newStep(address: string, overrides: Partial<NewStep> = {}): NewStep {
  const [jobId = "", instanceKey = "", stepId = ""] = address.split("/");
  return {
    address,
    jobId,
    instanceKey,
    stepId,
    kind: "model",
    model: "m",
    state: "pending",
    fingerprint: `fp-${instanceKey}`,
    ...overrides,
  };
}

describe.skipIf(skip)("the PostgreSQL state store on a database of its own", () => {
  const database = databasePerTest();

  it("applies its migrations once: reopening changes nothing, and the version is recorded", async () => {
    await (await open(database.url)).close();
    await (await open(database.url)).close();
    const versions = await query<{ version: number; name: string }>(
      database.url,
      "SELECT version, name FROM runflow_migrations ORDER BY version",
    );
    expect(versions).toEqual(POSTGRES_MIGRATIONS.map(({ version, name }) => ({ version, name })));
    expect(versions.at(-1)?.version).toBe(LATEST_POSTGRES_SCHEMA_VERSION);
  });

  it("lets several processes open a fresh database at once: the advisory lock makes them take turns", async () => {
    const stores = await Promise.all([1, 2, 3, 4].map(() => open(database.url)));
    expect(stores).toHaveLength(4);
    expect(await query(database.url, "SELECT version FROM runflow_migrations")).toHaveLength(
      POSTGRES_MIGRATIONS.length,
    );
  });

  it("refuses to read a database runflow never wrote, or one of a newer runflow, with what to do", async () => {
    await expect(open(database.url, { readonly: true })).rejects.toMatchObject({
      code: "state_missing",
      message: expect.stringContaining(`no state database at ${database.url}`) as string,
    });
    await (await open(database.url)).close();
    await query(database.url, "INSERT INTO runflow_migrations (version, name) VALUES (999, 'future')");
    await expect(open(database.url)).rejects.toMatchObject({
      code: "state_schema_newer",
      message: expect.stringContaining("schema 999") as string,
    });
  });

  it("never stores the token, and stores text with NUL in it", async () => {
    const store = await open(database.url, { secrets: [TOKEN] });
    await store.runs.create(newRun("run-1", { options: { header: `Bearer ${TOKEN}` } }));
    await store.steps.insert("run-1", [newStep(CAT, { input: { prompt: `say ${TOKEN}` } })], 1_000);
    await store.steps.update("run-1", CAT, {
      updatedAt: 1_100,
      state: "failed",
      error: `401 for ${TOKEN}`,
      stdout: `printed ${TOKEN}\u0000 and a NUL`,
      output: { note: "a \u0000 in JSON", lone: "\ud800" },
    });
    const step = await store.steps.get("run-1", CAT);
    expect(step).toMatchObject({
      error: "401 for [redacted]",
      stdout: "printed [redacted]\uFFFD and a NUL",
      input: { prompt: "say [redacted]" },
      output: { note: "a \u0000 in JSON" },
    });
    expect((await store.runs.get("run-1"))?.options).toEqual({ header: "Bearer [redacted]" });
    const everything = await query<{ text: string }>(
      database.url,
      `SELECT concat_ws(' ', r::text, s::text) AS text FROM runs r JOIN steps s ON s.run_id = r.id`,
    );
    expect(everything[0]?.text).toContain("[redacted]");
    expect(everything[0]?.text).not.toContain(TOKEN);
  });

  it("rejects only the bad write of a group: the others of the same turn are committed", async () => {
    const store = await open(database.url);
    await store.runs.create(newRun("run-1"));
    await store.steps.insert("run-1", [newStep(CAT), newStep(DOG)], 1_000);
    const writes = [
      store.steps.update("run-1", CAT, { updatedAt: 1_100, state: "waiting" }),
      store.steps.update("run-1", "no/such/step", { updatedAt: 1_100, state: "waiting" }),
      store.steps.update("run-1", DOG, { updatedAt: 1_100, state: "running" }),
    ];
    const settled = await Promise.allSettled(writes);
    expect(settled.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(
      /no step no\/such\/step in run run-1/,
    );
    expect(await store.steps.countByState("run-1")).toEqual({ waiting: 1, running: 1 });
  });

  it("commits a claim while the writer's queue is held up by another step's write, and a read issued after the claim sees it", async () => {
    const store = await open(database.url);
    await store.runs.create(newRun("run-1"));
    await store.steps.insert("run-1", [newStep(CAT), newStep(DOG)], 1_000);
    // Another session holds the cat's row: the store's write of it waits in its writer.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM steps WHERE run_id = 'run-1' AND address = $1 FOR UPDATE", [CAT]);
      let catWritten = false;
      const cat = store.steps
        .update("run-1", CAT, { updatedAt: 1_100, state: "succeeded", finishedAt: 1_100 })
        .then(() => (catWritten = true));
      // Issued after the cat's write: the dog's claim does not wait for it.
      const claim = store.attempts.claim(
        {
          runId: "run-1",
          address: DOG,
          attempt: 1,
          workflowName: "teasers",
          fingerprint: "fp-dog",
          startedAt: 1_200,
        },
        { updatedAt: 1_200, state: "submitting", attempt: 1 },
        "worker-a",
      );
      const dogRead = store.steps.get("run-1", DOG);
      expect(await claim).toBe(true);
      expect(catWritten).toBe(false);
      // The claim is committed: another session sees it while the cat's write still waits.
      expect(await query(database.url, "SELECT state, attempt FROM steps WHERE address = $1", [DOG])).toEqual(
        [{ state: "submitting", attempt: 1 }],
      );
      await holder.query("ROLLBACK");
      await cat;
      // A read waits for every write issued before it, the claim's queue included.
      expect(await dogRead).toMatchObject({ state: "submitting", attempt: 1 });
      expect(await store.steps.get("run-1", CAT)).toMatchObject({ state: "succeeded" });
    } finally {
      await holder.end();
    }
  });

  it("keeps the prior-runs lookup current with writes issued while it was being fetched", async () => {
    const store = await open(database.url);
    await store.runs.create(newRun("run-1"));
    await store.steps.insert("run-1", [newStep(CAT), newStep(DOG)], 1_000);
    const lookup = store.history.priorRuns("teasers");
    // Issued after the lookup, before it arrives: the lookup must see both.
    const writes = [
      store.steps.update("run-1", CAT, {
        updatedAt: 1_500,
        state: "succeeded",
        finishedAt: 1_500,
        output: { video: "v" },
      }),
      store.attempts.start(
        {
          runId: "run-1",
          address: DOG,
          attempt: 1,
          workflowName: "teasers",
          fingerprint: "fp-dog",
          startedAt: 1_600,
        },
        { updatedAt: 1_600, state: "submitting", attempt: 1 },
      ),
    ];
    const prior = await lookup;
    await Promise.all(writes);
    expect(prior.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN })).toMatchObject({
      runId: "run-1",
      address: CAT,
      finishedAt: 1_500,
      output: { video: "v" },
    });
    expect(prior.inFlightAt("teasers", "fp-dog", DOG)).toEqual([
      expect.objectContaining({ runId: "run-1", disposition: "maybe_billed" }),
    ]);
    // A later process (another store) fetches the same from the database.
    const other = await open(database.url);
    const fetched = await other.history.priorRuns("teasers");
    expect(fetched.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN })).toEqual(
      prior.findSucceeded("teasers", "fp-cat", { apiOrigin: ORIGIN }),
    );
    expect(fetched.listInFlight("teasers")).toEqual(prior.listInFlight("teasers"));
  });

  it("forgets, at its next fetch, an attempt another process closed: a lookup is never stuck with a stale in-flight attempt", async () => {
    const writer = await open(database.url);
    await writer.runs.create(newRun("run-1"));
    await writer.steps.insert("run-1", [newStep(DOG)], 1_000);
    const key = { runId: "run-1", address: DOG, attempt: 1 };
    await writer.attempts.start(
      { ...key, workflowName: "teasers", fingerprint: "fp-dog", startedAt: 1_600 },
      { updatedAt: 1_600, state: "submitting", attempt: 1 },
    );
    // Another process (a worker) fetches while the attempt is in flight …
    const worker = await open(database.url);
    expect((await worker.history.priorRuns("teasers")).listInFlight("teasers")).toHaveLength(1);
    // … the writer closes it; the worker's next fetch must not still see it in flight.
    await writer.attempts.update(key, { state: "failed", error: "boom", finishedAt: 1_700 });
    expect((await worker.history.priorRuns("teasers")).listInFlight("teasers")).toEqual([]);
    expect((await worker.history.priorRuns("teasers")).inFlightAt("teasers", "fp-dog", DOG)).toEqual([]);
  });

  it("holds one lock per workflow across stores: a holder on another host is alive until its heartbeat is stale", async () => {
    const here = await open(database.url);
    const there = await open(database.url);
    const options = { now: 1_000, staleAfterMs: 10_000, isProcessAlive: () => false };
    const results = await Promise.all([
      here.locks.acquire("teasers", { runId: "run-a", pid: 1, hostname: "host-a" }, options),
      there.locks.acquire("teasers", { runId: "run-b", pid: 2, hostname: "host-b" }, options),
    ]);
    expect(results.filter((result) => result.acquired)).toHaveLength(1);
    const loser = results[0].acquired ? there : here;
    const loserId = results[0].acquired
      ? { runId: "run-b", pid: 2, hostname: "host-b" }
      : { runId: "run-a", pid: 1, hostname: "host-a" };
    // Its pid is "dead", but on another host: not ours to judge before the heartbeat is stale.
    expect((await loser.locks.acquire("teasers", loserId, { ...options, now: 5_000 })).acquired).toBe(false);
    expect(await loser.locks.acquire("teasers", loserId, { ...options, now: 12_000 })).toMatchObject({
      acquired: true,
      tookOverFrom: { heartbeatAt: 1_000 },
    });
  });

  it("changedSince reads only what changed, and never misses a write that commits after a later one was read", async () => {
    const follower = await open(database.url);
    const writer = await open(database.url);
    const steps = Array.from({ length: 50 }, (_, i) => `teaser/s${i}/animate`);
    await writer.runs.create(newRun("run-1"));
    await writer.steps.insert(
      "run-1",
      steps.map((address) => newStep(address)),
      1_000,
    );
    const first = await follower.steps.changedSince("run-1");
    expect(first.steps).toHaveLength(50);

    // A transaction of another process writes s1 and stays open while s2's write (a later
    // transaction) commits and is read: a cursor at "the newest change read" would skip s1.
    const slow = new pg.Client({ connectionString: database.url });
    slow.on("error", () => undefined);
    await slow.connect();
    try {
      await slow.query("BEGIN");
      await slow.query(
        "UPDATE steps SET state = 'running', updated_at = 1100 WHERE run_id = 'run-1' AND address = $1",
        [steps[1]],
      );
      await writer.steps.update("run-1", steps[2]!, { updatedAt: 1_200, state: "waiting" });
      const second = await follower.steps.changedSince("run-1", first.cursor);
      expect(second.steps.map((step) => `${step.address} ${step.state}`)).toEqual([`${steps[2]} waiting`]);
      await slow.query("COMMIT");
      const third = await follower.steps.changedSince("run-1", second.cursor);
      expect(third.steps.find((step) => step.address === steps[1])?.state).toBe("running");
      // Only what changed since the first read, not the run's 50 steps.
      expect(third.steps.map((step) => step.address).sort()).toEqual([steps[1], steps[2]].sort());
    } finally {
      await slow.end().catch(() => undefined);
    }
  });
});

describe.skipIf(skip)("the PostgreSQL state store when its server goes away", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it("keeps what a resolved write committed through a server crash (pg_ctl stop -m immediate)", async () => {
    const url = await server.createDatabase();
    const store = await open(url);
    await store.runs.create(newRun("run-1"));
    await store.steps.insert("run-1", [newStep(CAT)], 1_000);
    const key = { runId: "run-1", address: CAT, attempt: 1 };
    await store.attempts.start(
      { ...key, workflowName: "teasers", fingerprint: "fp-cat", startedAt: 2_000 },
      {
        updatedAt: 2_000,
        state: "submitting",
        attempt: 1,
      },
    );
    await store.attempts.recordRequestId(key, "req-cat", 2_100);
    server.crash();

    // Every write from now on rejects with one clear error naming the state and what to do.
    const failed = await store.steps
      .update("run-1", CAT, { updatedAt: 2_200, state: "in_progress" })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({
      code: "state_connection_lost",
      exitCode: 1,
      message: expect.stringContaining(`lost the connection to the PostgreSQL state at ${url}`) as string,
      hint: expect.stringContaining("run `runflow apply` again") as string,
    });
    await expect(store.attempts.update(key, { state: "failed" })).rejects.toMatchObject({
      code: "state_connection_lost",
    });
    await store.close();

    await expect(open(url)).rejects.toMatchObject({
      code: "state_unreachable",
      message: expect.stringContaining(`cannot reach the PostgreSQL state at ${url}`) as string,
    });

    server.start();
    const after = await open(url);
    expect(await after.attempts.list("run-1", CAT)).toEqual([
      expect.objectContaining({ requestId: "req-cat", state: "submitted", submittedAt: 2_100 }),
    ]);
    expect(await after.steps.get("run-1", CAT)).toMatchObject({ requestId: "req-cat", state: "submitting" });
  });
});

describe.skipIf(skip)("opening a PostgreSQL state that is not there", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it("says which database is missing and how to make it", async () => {
    const url = new URL(server.url);
    url.pathname = "/no_such_state";
    await expect(open(url.toString())).rejects.toMatchObject({
      code: "state_unreachable",
      exitCode: 2,
      message: expect.stringMatching(
        /cannot reach the PostgreSQL state at .*no_such_state: .*does not exist/,
      ) as string,
      hint: expect.stringContaining("createdb NAME") as string,
    });
  });
});

describe("describePostgresLocation", () => {
  it("never shows a password", () => {
    expect(describePostgresLocation("postgres://runflow:hunter2-secret@db.example:5432/state")).toBe(
      "postgres://runflow:***@db.example:5432/state",
    );
    expect(describePostgresLocation("postgres://runflow@127.0.0.1:5432/state")).toBe(
      "postgres://runflow@127.0.0.1:5432/state",
    );
  });
});
