/**
 * Fast start (issue 14): each command loads only what it uses. `runflow --version`, `--help`,
 * `status` and `runs` never load the HTTP client (undici), the emulator, the live view
 * (listr2) or the schema validator (ajv); an apply whose stdout is no terminal never loads
 * the live view, and an apply of the models runflow ships never loads ajv's compiler (the
 * validators are precompiled at build time: src/util/validators.ts). Asserted on what the spawned CLI loads — every
 * module it resolves, recorded by a preloaded hook (test/helpers/module-recorder.js) —
 * not on how long it takes.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Command, Help } from "commander";
import { describe, expect, test } from "vitest";
import { COMMANDS } from "../src/cli/commands/index.js";
import { chainYaml, itemsCsv, project, type Project } from "./apply-harness.js";
import { unbundled } from "./helpers/bundle-modules.js";
import { REPO_ROOT } from "./helpers/spawn-cli.js";

const RECORDER = path.join(REPO_ROOT, "test", "helpers", "module-recorder.js");

/** What a command must not load, by the module paths that give it away. */
const HEAVY = {
  "the HTTP client": /\/node_modules\/undici\/|\/dist\/api\/client\.js$/,
  "the emulator": /\/dist\/emulator\//,
  "the live view (listr2)": /\/node_modules\/listr2\//,
  // Precompiled validators need only ajv's small runtime helpers (ajv/dist/runtime/).
  "the schema validator (ajv)": /\/node_modules\/ajv\/(?!dist\/runtime\/)/,
};

/**
 * Runs `runflow ARGS` in the project and returns its exit code, every module it loaded, and
 * those it had loaded when it created its first HTTP request (empty if it made none).
 */
async function loadedBy(
  flow: Project,
  args: string[],
): Promise<{
  exitCode: number | undefined;
  modules: string[];
  beforeFirstRequest: string[];
  /** The files it loaded as they are on disk (the bundle's own, not the modules in them). */
  files: string[];
}> {
  const record = path.join(flow.dir, `modules-${args.join("-")}.txt`);
  const firstRequest = path.join(flow.dir, `first-request-${args.join("-")}.txt`);
  const result = await flow.run(args, {
    env: {
      NODE_OPTIONS: `--import=${RECORDER}`,
      RUNFLOW_RECORD_MODULES: record,
      RUNFLOW_RECORD_FIRST_REQUEST: firstRequest,
    },
  });
  const lines = (file: string) => readFileSync(file, "utf8").trim().split("\n");
  const files = lines(record);
  const modules = files.flatMap(unbundled);
  const beforeFirstRequest = existsSync(firstRequest) ? lines(firstRequest).flatMap(unbundled) : [];
  return { exitCode: result.exitCode, modules, beforeFirstRequest, files };
}

/** What apply needs only once its first requests are on their way, by the module paths that give it away. */
const AFTER_FIRST_REQUEST = {
  "the SQLite store (better-sqlite3)":
    /\/node_modules\/better-sqlite3\/|\/dist\/store\/sqlite-state-store\.js$/,
  "the lock and the run (locked-run)": /\/dist\/engine\/locked-run\.js$/,
  "the executor": /\/dist\/engine\/executor\.js$/,
  "retry and cancel": /\/dist\/engine\/(retry|cancel)\.js$/,
  "the plan command (--dry-run)": /\/dist\/cli\/commands\/plan\.js$/,
};

/** Node's modules `--version`, `--help`, `status` and `runs` must not load. */
const UNUSED_BY_SHORT_COMMANDS = ["node:child_process", "node:crypto", "node:v8"];

function presentIn(modules: string[], patterns: Record<string, RegExp>): string[] {
  return Object.entries(patterns)
    .filter(([, pattern]) => modules.some((name) => pattern.test(name)))
    .map(([what]) => what);
}

function heavyIn(modules: string[]): string[] {
  return presentIn(modules, HEAVY);
}

describe("what each command loads", () => {
  test("--version, --help, status and runs load none of the HTTP client, emulator, listr2, ajv", async () => {
    const flow = await project({ "flow.yaml": chainYaml({ name: "light" }), "items.csv": itemsCsv(1) });
    // The run status and runs then read. The recorder sees what apply loads: the HTTP
    // client, the emulator (--emulator), and ES-module packages (p-queue) as listr2 is one;
    // not listr2 itself, which only a terminal's live view loads, nor ajv: the workflow and
    // the model's schemas were checked by the validators the build precompiled.
    const apply = await loadedBy(flow, ["apply", "flow.yaml", "--emulator", "--quiet"]);
    expect(apply.exitCode).toBe(0);
    expect(heavyIn(apply.modules)).toEqual(["the HTTP client", "the emulator"]);
    // undici's parts one by one (src/api/undici-parts.ts), not its index with mocks, caches and fetch.
    expect(
      apply.modules.filter((name) =>
        /\/node_modules\/undici\/(index\.js|lib\/(mock|web|cache)\/)/.test(name),
      ),
    ).toEqual([]);
    for (const kind of ["workflow", "model-input"]) {
      expect(apply.modules).toContain(path.join(REPO_ROOT, "dist", "validators", `${kind}.cjs`));
    }
    expect(apply.modules.some((name) => name.includes("/node_modules/p-queue/"))).toBe(true);
    // Node modules loaded only for what runflow never does: HTTP/2 (undici's h2 client, for
    // a server that negotiates it, which runflow's agents never allow) and executable
    // subcommands (commander's node:child_process). The recorder did see Node's modules.
    expect(apply.modules).toContain("node:net");
    expect(apply.modules).not.toContain("node:http2");

    // Before its first request (the media probe or a price), apply has loaded the HTTP client
    // but not what the run needs only after it: the store opens, and the run's code loads,
    // while that request is on its way. At exit it had loaded them all (the recorder saw them).
    expect(apply.beforeFirstRequest).toContain("node:net");
    expect(heavyIn(apply.beforeFirstRequest)).toContain("the HTTP client");
    expect(presentIn(apply.beforeFirstRequest, AFTER_FIRST_REQUEST)).toEqual([]);
    expect(presentIn(apply.modules, AFTER_FIRST_REQUEST)).toEqual([
      "the SQLite store (better-sqlite3)",
      "the lock and the run (locked-run)",
      "the executor",
    ]);

    // apply runs a batch: V8's flags for one are set (node:v8, src/cli/v8-flags.ts).
    expect(apply.modules).toContain("node:v8");

    for (const args of [["--version"], ["--help"], ["status"], ["runs"], ["help", "status"]]) {
      const { exitCode, modules } = await loadedBy(flow, args);
      expect({ args, exitCode }).toEqual({ args, exitCode: 0 });
      expect({ args, heavy: heavyIn(modules) }).toEqual({ args, heavy: [] });
      // Node modules a short command has no use for, each ≈ 0.5–3 ms of its start:
      // child_process (commander's executable subcommands), crypto (the code cache's check
      // is zlib's CRC-32), v8 (a batch's heap flags, not set for a command that reads and
      // exits). (node:net is loaded here by stdout, a pipe; a loopback address is told
      // without it: test/models-media-rules.test.ts.)
      expect({ args, unused: UNUSED_BY_SHORT_COMMANDS.filter((name) => modules.includes(name)) }).toEqual({
        args,
        unused: [],
      });
    }
    // status and runs read the database (better-sqlite3), so the recorder did see them work.
    const status = await loadedBy(flow, ["status"]);
    expect(status.modules.some((name) => name.includes("better-sqlite3"))).toBe(true);
    // better-sqlite3's JavaScript is in the bundle (under the code cache): from node_modules
    // only its native addon is loaded, without the `bindings` package's search for it.
    expect([...new Set(status.files.filter((name) => name.includes("/node_modules/")))]).toEqual([
      path.join(REPO_ROOT, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node"),
    ]);
  });

  test("validate loads the HTTP client only to probe media (--preflight)", async () => {
    const flow = await project({ "flow.yaml": chainYaml({ name: "checked" }), "items.csv": itemsCsv(2) });
    const offline = await loadedBy(flow, ["validate", "flow.yaml"]);
    expect(offline.exitCode).toBe(0);
    expect(heavyIn(offline.modules)).toEqual([]);
    expect(offline.modules).not.toContain("node:http");
    // The recorder sees the client when validate does use it: the probes of the image.
    const probing = await loadedBy(flow, ["validate", "flow.yaml", "--preflight"]);
    expect(probing.exitCode).toBe(0);
    expect(heavyIn(probing.modules)).toEqual(["the HTTP client"]);
  });
});

describe("the command registry (src/cli/commands/index.ts)", () => {
  // `runflow --help` lists each command by the usage words the registry declares, before
  // its module is loaded: they must be what the module defines.
  test.each(COMMANDS.map((entry) => [entry.name, entry] as const))(
    "%s: the usage words are the ones its module defines",
    async (_name, entry) => {
      const program = new Command("runflow");
      const command = program.command(entry.name).description(entry.description);
      (await entry.load()).define(command);
      expect(new Help().subcommandTerm(command)).toBe(
        entry.usage === "" ? entry.name : `${entry.name} ${entry.usage}`,
      );
    },
  );

  test("`runflow help NAME` shows the command's options (its module loaded first)", async () => {
    const flow = await project({});
    const help = await flow.run(["help", "apply"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("--concurrency <n>");
    expect((await flow.run(["help", "models"])).stdout).toMatch(/show <id>/);
  });
});
