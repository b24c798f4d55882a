/**
 * The CLI against a PostgreSQL state (`--state postgres://…` or RUNFLOW_STATE): the real
 * CLI process, the embedded emulator, a real server the test starts. apply runs the chain
 * there, status and runs read it back, and a second apply reuses every step from it.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, type Project } from "./apply-harness.js";
import { unbundled } from "./helpers/bundle-modules.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";
import { REPO_ROOT } from "./helpers/spawn-cli.js";

const skip = skipWithoutPostgres("CLI on a PostgreSQL state");
const NO_TOKEN = { RUNCOMFY_API_TOKEN: undefined, RUNCOMFY_BASE_URL: undefined };
const RECORDER = path.join(REPO_ROOT, "test", "helpers", "module-recorder.js");
const PG_MODULE = /\/node_modules\/pg\//;

/** Runs `runflow ARGS` in the project; every module it loaded (those in the bundle's files too). */
async function modulesLoadedBy(p: Project, args: string[], env: Record<string, string | undefined>) {
  const record = path.join(p.dir, `modules-${args.length}-${Date.now()}.txt`);
  const result = await p.run(args, {
    env: { ...env, NODE_OPTIONS: `--import=${RECORDER}`, RUNFLOW_RECORD_MODULES: record },
  });
  expect(result.exitCode).toBe(0);
  return readFileSync(record, "utf8").trim().split("\n").flatMap(unbundled);
}

describe.skipIf(skip)("runflow with --state postgres://", () => {
  const database = databasePerTest();

  test("apply --emulator runs there; status and runs read it; the next apply reuses every step", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(3) });
    const state = ["--state", database.url];
    const applied = await p.run(["apply", "chain.yaml", "--emulator", ...state], { env: NO_TOKEN });
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.exitCode).toBe(0);
    const runId = /^run (\S+) /m.exec(applied.stdout)?.[1];
    expect(runId).toBeDefined();
    // Nothing went to a SQLite file.
    expect(existsSync(path.join(p.dir, "state"))).toBe(false);

    const status = await p.run(["status", ...state], { env: NO_TOKEN });
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toContain(runId);
    expect(status.stdout).toMatch(/succeeded/);

    // RUNFLOW_STATE names it as well as --state does.
    const runs = await p.run(["runs", "--json"], { env: { ...NO_TOKEN, RUNFLOW_STATE: database.url } });
    expect(runs.exitCode).toBe(0);
    expect(JSON.parse(runs.stdout)).toEqual([
      expect.objectContaining({
        id: runId,
        workflowName: "chain",
        status: "succeeded",
        counts: { succeeded: 6 },
      }),
    ]);

    const again = await p.run(["apply", "chain.yaml", "--emulator", "--json", ...state], { env: NO_TOKEN });
    expect(again.exitCode).toBe(0);
    const finished = again.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { event: string; counts?: unknown })
      .find((event) => event.event === "run_finished");
    expect(finished?.counts).toEqual({ reused: 6 });

    // Both runs are rows of the PostgreSQL database, and no file stands in for it.
    const client = new pg.Client({ connectionString: database.url });
    client.on("error", () => undefined);
    await client.connect();
    const rows = await client
      .query<{ id: string }>("SELECT id FROM runs ORDER BY started_at")
      .then((result) => result.rows)
      .finally(() => client.end());
    expect(rows.map((row) => row.id)).toEqual([runId, expect.any(String)]);
    expect(readdirSync(p.dir).sort()).toEqual(["chain.yaml", "items.csv", "outputs"]);
  });

  test("pg is loaded only for a postgres:// state: an apply on SQLite never loads it", async () => {
    const p = await project({ "chain.yaml": chainYaml(), "items.csv": itemsCsv(1) });
    const onSqlite = await modulesLoadedBy(p, ["apply", "chain.yaml", "--emulator", "--quiet"], NO_TOKEN);
    expect(onSqlite.filter((name) => PG_MODULE.test(name))).toEqual([]);
    // The recorder does see it when the state asks for it.
    const onPostgres = await modulesLoadedBy(
      p,
      ["apply", "chain.yaml", "--emulator", "--quiet", "--state", database.url],
      NO_TOKEN,
    );
    expect(onPostgres.some((name) => PG_MODULE.test(name))).toBe(true);
  });

  test("a password in the URL is never printed: the commands it prints show *** instead", async () => {
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:fail=boom]"),
    });
    // The test server trusts loopback, so any password is accepted: it only has to stay unseen.
    const url = new URL(database.url);
    url.password = "s3cret-pass-word";
    const state = ["--state", url.toString()];
    const applied = await p.run(["apply", "chain.yaml", "--emulator", ...state], { env: NO_TOKEN });
    const status = await p.run(["status", ...state], { env: NO_TOKEN });
    expect(applied.exitCode).toBe(1);
    for (const printed of [applied.stdout, applied.stderr, status.stdout, status.stderr])
      expect(printed).not.toContain("s3cret-pass-word");
    expect(applied.stdout).toMatch(
      /to retry: runflow retry \S+ --state 'postgres:\/\/runflow:\*\*\*@127\.0\.0\.1:/,
    );
  });

  test("a run whose queues were given by --queue prints a retry command with it, which works as pasted", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 1 }" }),
      "items.csv": itemsCsv(1, () => " [emulator:fail=boom]"),
    });
    // The queues at the state's own database, named by a URL with a password (loopback
    // trusts any): the printed command carries the flag, never the password.
    const queue = new URL(database.url);
    queue.password = "queue-s3cret";
    const state = ["--state", database.url];
    const applied = await p.run(
      ["apply", "chain.yaml", "--emulator", ...state, "--queue", queue.toString()],
      {
        env: NO_TOKEN,
      },
    );
    expect(applied.exitCode).toBe(1);
    expect(applied.stdout).not.toContain("queue-s3cret");
    const printed = /^to retry: (.+)$/m.exec(applied.stdout)?.[1];
    expect(printed).toMatch(/ --queue 'postgres:\/\/runflow:\*\*\*@127\.0\.0\.1:\d+\/\w+' --emulator$/);

    // Pasted as printed (the shell's single quotes taken off): the retry runs the failure again.
    const words = printed!.match(/'[^']*'|\S+/g)!.map((word) => word.replace(/^'(.*)'$/, "$1"));
    expect(words[0]).toBe("runflow");
    const retried = await p.run(words.slice(1), { env: NO_TOKEN });
    expect(retried.exitCode).toBe(1);
    expect(retried.stdout).toMatch(/^run \S+ finished with failures/m);
    expect(retried.stdout).toMatch(/^to retry: runflow retry \S+ --state \S+ --queue 'postgres:/m);
  });

  test("retry re-runs only the failure, report writes the run's gallery, cancel reads the run there", async () => {
    const p = await project({
      "chain.yaml": chainYaml({ retry: "{ attempts: 1 }" }),
      "items.csv": itemsCsv(2, (i) => (i === 2 ? " [emulator:fail=boom]" : "")),
    });
    const state = ["--state", database.url];
    const applied = await p.run(["apply", "chain.yaml", "--emulator", ...state], { env: NO_TOKEN });
    expect(applied.exitCode).toBe(1);
    const runId = /^run (\S+) finished with failures/m.exec(applied.stdout)![1]!;

    const retried = await p.run(["retry", runId, "--emulator", "--json", ...state], { env: NO_TOKEN });
    expect(retried.exitCode).toBe(1);
    const steps = retried.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { event: string; address?: string });
    // Only item-2's steps are in the retry: item-1's succeeded and are not run again.
    const addresses = new Set(steps.filter((e) => e.event === "step").map((e) => e.address));
    expect([...addresses].sort()).toEqual(["clip/item-2/animate", "clip/item-2/restyle"]);

    const report = await p.run(["report", runId, ...state], { env: NO_TOKEN });
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toContain(`report of run ${runId} written to reports/${runId}.html`);
    expect(existsSync(path.join(p.dir, "reports", `${runId}.html`))).toBe(true);

    const cancelled = await p.run(["cancel", runId, "--emulator", ...state], { env: NO_TOKEN });
    expect(cancelled.exitCode).toBe(0);
    expect(cancelled.stdout).toContain(`run ${runId} already finished (failed)`);
  });
});
