/**
 * The CLI's code cache (scripts/cli-entry.cjs, docs/decisions.md "Start-up"): the code a
 * command's run compiled is written once, read by the next runs of that command, and never
 * more than a shortcut — a damaged, foreign or unwritable cache changes nothing a user sees.
 * A cache V8 accepted is left as it is; one it refused (or one that is damaged) is written
 * again: so "the file was not rewritten" is how these tests see that a cache was used.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { chainYaml, itemsCsv, project, until } from "./apply-harness.js";
import { REPO_ROOT, spawnCli, type CliResult } from "./helpers/spawn-cli.js";
import { databasePerTest, skipWithoutPostgres } from "./helpers/postgres.js";
import { startWorkerProcess } from "./helpers/cluster.js";
import { BATCH_V8_FLAGS } from "../src/cli/v8-flags.js";

const BUNDLE_READS_RECORDER = path.join(REPO_ROOT, "test", "helpers", "bundle-reads-recorder.cjs");
const LATE_BUILTINS_RECORDER = path.join(REPO_ROOT, "test", "helpers", "late-builtins-recorder.cjs");

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "runflow-compile-cache-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The cache files of one command: name → inode and contents, under BASE/BUILD-NODE-ARCH/COMMAND/. */
function cacheFiles(base: string, command: string): Map<string, { ino: number; bytes: Buffer }> {
  const [build, ...others] = readdirSync(base);
  expect(others).toEqual([]);
  const folder = path.join(base, build!, command);
  return new Map(
    readdirSync(folder)
      .filter((name) => name.endsWith(".v8"))
      .map((name) => {
        const file = path.join(folder, name);
        return [name, { ino: statSync(file).ino, bytes: readFileSync(file) }];
      }),
  );
}

function folderOf(base: string, command: string): string {
  return path.join(base, readdirSync(base)[0]!, command);
}

const run = (args: string[], env: Record<string, string | undefined>): Promise<CliResult> =>
  spawnCli(args, { env: { XDG_CACHE_HOME: undefined, ...env } });

describe("the compile cache", () => {
  const database = databasePerTest();

  test("the first run writes it, the next runs use it, per command", async () => {
    const base = tempDir();
    const first = await run(["--version"], { RUNFLOW_COMPILE_CACHE: base });
    expect(first).toMatchObject({ exitCode: 0, stderr: "" });
    const written = cacheFiles(base, "none");
    // The entry's main module and the chunks --version loads.
    expect(written.has("main.js.v8")).toBe(true);

    const second = await run(["--version"], { RUNFLOW_COMPILE_CACHE: base });
    expect(second).toMatchObject({ exitCode: 0, stdout: first.stdout, stderr: "" });
    const after = cacheFiles(base, "none");
    expect([...after].map(([name, file]) => [name, file.ino])).toEqual(
      [...written].map(([name, file]) => [name, file.ino]),
    );

    // Another command compiles other code: a cache of its own beside.
    const help = await run(["help", "status"], { RUNFLOW_COMPILE_CACHE: base });
    expect(help.exitCode).toBe(0);
    expect(cacheFiles(base, "status").has("main.js.v8")).toBe(true);
  });

  test("a command with a batch's heap flags and one without both reuse their cache", async () => {
    // V8 refuses a cache made under other flags: the entry and main.js must set the same
    // ones for a command (src/cli/v8-flags.ts), or every run would compile and write again.
    const base = tempDir();
    const dir = tempDir();
    for (const [command, args] of [
      ["validate", ["validate", "missing.yaml"]],
      ["status", ["status"]],
    ] as const) {
      const first = await spawnCli([...args], { cwd: dir, env: { RUNFLOW_COMPILE_CACHE: base } });
      expect(first.exitCode).toBe(2);
      const written = cacheFiles(base, command);
      expect(written.has("main.js.v8")).toBe(true);
      const second = await spawnCli([...args], { cwd: dir, env: { RUNFLOW_COMPILE_CACHE: base } });
      expect(second).toMatchObject({ exitCode: 2, stderr: first.stderr });
      expect([...cacheFiles(base, command)].map(([name, file]) => [name, file.ino])).toEqual(
        [...written].map(([name, file]) => [name, file.ino]),
      );
    }
  });

  test("the entry sets a batch's V8 flags as src/cli/v8-flags.ts lists them, WebAssembly's Liftoff-only among them", () => {
    // The build copies the list into the entry, which sets it before anything is compiled.
    // Liftoff only: TurboFan's background compilation of undici's llhttp held every command
    // that ends soon after its requests (plan, validate --preflight) ≈ 60 ms at exit.
    const entry = readFileSync(path.join(REPO_ROOT, "dist", "bin", "runflow.js"), "utf8");
    const copied = /^const V8_FLAGS = (\[.*\]);$/m.exec(entry)?.[1];
    expect(JSON.parse(copied ?? "null")).toEqual([...BATCH_V8_FLAGS]);
    expect(BATCH_V8_FLAGS).toContain("--liftoff-only");
  });

  test("apply writes the code of what it loaded before its first submission once that has left", async () => {
    // The request stays in the API's hands for a minute: the apply is still running (it
    // polls) when the cache of the files it loaded before submitting appears.
    const base = tempDir();
    const flow = await project(
      { "flow.yaml": chainYaml({ name: "held" }), "items.csv": itemsCsv(1) },
      { duration: 60_000 },
    );
    const apply = flow.start(["apply", "flow.yaml", "--quiet"], { env: { RUNFLOW_COMPILE_CACHE: base } });
    await until("the cache of apply's main.js", () => {
      const [build] = existsSync(base) ? readdirSync(base) : [];
      return build !== undefined && existsSync(path.join(base, build, "apply", "main.js.v8"));
    });
    // Written once the request was created; the emulator counts it when it arrives.
    await until("the submission", () => flow.api.state().calls.byEndpoint.submit === 1);
    expect(apply.exitCode).toBe(null);
    apply.kill("SIGINT");
    expect((await apply).exitCode).toBe(130);
    // What it loaded after (the executor, the polls' code) was written at its exit.
    expect(cacheFiles(base, "apply").size).toBeGreaterThan(1);
  });

  test("apply packs the files it loaded before its first submission: the next runs read one file instead of each", async () => {
    const base = tempDir();
    const flow = await project({ "flow.yaml": chainYaml({ name: "packed" }), "items.csv": itemsCsv(1) });
    const reads = path.join(flow.dir, "bundle-reads.txt");
    /** A fresh apply (it submits again); the files of the bundle it read before its first submission. */
    const apply = async (): Promise<string[]> => {
      const result = await flow.run(["apply", "flow.yaml", "--fresh", "--quiet"], {
        env: {
          RUNFLOW_COMPILE_CACHE: base,
          NODE_OPTIONS: `--require=${BUNDLE_READS_RECORDER}`,
          RUNFLOW_RECORD_BUNDLE_READS: reads,
        },
      });
      expect(result).toMatchObject({ exitCode: 0, stderr: "" });
      return readFileSync(reads, "utf8").trim().split("\n");
    };
    const pack = (name: string) => path.join(folderOf(base, "apply"), name);
    const inode = (name: string) => statSync(pack(name)).ino;

    // The first run reads each file (dozens) and writes the pack; the second compiles it and
    // writes its code cache; from then on the entry is the only file of the bundle read.
    expect((await apply()).length).toBeGreaterThan(20);
    expect(existsSync(pack("pack.src"))).toBe(true);
    expect(await apply()).toEqual(["runflow.js"]);
    const written = [inode("pack.src"), inode("pack.v8")];
    expect(await apply()).toEqual(["runflow.js"]);
    expect([inode("pack.src"), inode("pack.v8")]).toEqual(written);

    // A damaged pack is ignored (the files are read one by one) and learned again.
    const spoilt = readFileSync(pack("pack.src"));
    spoilt[spoilt.length - 7]! ^= 0xff;
    writeFileSync(pack("pack.src"), spoilt);
    const spoiltInode = inode("pack.src");
    expect((await apply()).length).toBeGreaterThan(20);
    expect(inode("pack.src")).not.toBe(spoiltInode);
    expect(await apply()).toEqual(["runflow.js"]);
  });

  test("the pack's code comes from a run that submitted: one stopped before (an invalid file) leaves a partial one", async () => {
    const base = tempDir();
    const flow = await project({
      "flow.yaml": chainYaml({ name: "partial" }),
      "items.csv": itemsCsv(1),
      "broken.yaml": "version: 1\nname: broken\njobs: {}\nbogus: 1\n",
    });
    const apply = async (file: string, exitCode: number) => {
      const result = await flow.run(["apply", file, "--fresh", "--quiet"], {
        env: { RUNFLOW_COMPILE_CACHE: base },
      });
      expect({ file, exitCode: result.exitCode }).toEqual({ file, exitCode });
    };
    const pack = (name: string) => path.join(folderOf(base, "apply"), name);

    await apply("flow.yaml", 0);
    expect(existsSync(pack("pack.src"))).toBe(true);
    // Loads the pack without its code and stops at validation: what it compiled is kept
    // apart, and taken by the next run that stops there too (which writes nothing).
    await apply("broken.yaml", 2);
    expect(existsSync(pack("pack.v8"))).toBe(false);
    const partial = statSync(pack("pack.partial.v8"));
    await apply("broken.yaml", 2);
    expect(statSync(pack("pack.partial.v8")).ino).toBe(partial.ino);
    // The next apply that submits writes the whole code (more of it), and the partial goes.
    await apply("flow.yaml", 0);
    const whole = statSync(pack("pack.v8"));
    expect(whole.size).toBeGreaterThan(partial.size);
    expect(existsSync(pack("pack.partial.v8"))).toBe(false);
    // Taken from then on, by runs that stop early and runs that submit alike.
    await apply("broken.yaml", 2);
    await apply("flow.yaml", 0);
    expect(statSync(pack("pack.v8")).ino).toBe(whole.ino);
    expect(existsSync(pack("pack.partial.v8"))).toBe(false);
  });

  test.skipIf(skipWithoutPostgres("a cluster's apply packs"))(
    "an apply that only follows a cluster's run (it never submits) packs what it loaded by its first steps queued",
    async () => {
      const base = tempDir();
      const flow = await project({ "flow.yaml": chainYaml({ name: "followed" }), "items.csv": itemsCsv(1) });
      const worker = startWorkerProcess(flow, "w1", ["--state", database.url, "--concurrency", "2"], {
        RUNFLOW_COMPILE_CACHE: tempDir(),
      });
      await worker.ready;
      const reads = path.join(flow.dir, "bundle-reads.txt");
      const apply = async (): Promise<string[]> => {
        const result = await flow.run(["apply", "flow.yaml", "--fresh", "--quiet", "--state", database.url], {
          env: {
            RUNFLOW_COMPILE_CACHE: base,
            RUNFLOW_APPLY_WORKER_CONCURRENCY: "0",
            NODE_OPTIONS: `--require=${BUNDLE_READS_RECORDER}`,
            RUNFLOW_RECORD_BUNDLE_READS: reads,
          },
        });
        expect(result).toMatchObject({ exitCode: 0, stderr: "" });
        return readFileSync(reads, "utf8").trim().split("\n");
      };
      expect((await apply()).length).toBeGreaterThan(20);
      expect(existsSync(path.join(folderOf(base, "apply-cluster"), "pack.src"))).toBe(true);
      // Apart from the pack of an apply on one machine, which loads other code before its first request.
      expect(existsSync(path.join(folderOf(base, "apply"), "pack.src"))).toBe(false);
      // Of node_modules, only msgpackr's optional native extract (and what finds its addon),
      // which the bundle leaves outside (scripts/bundle-cli.js).
      const outsideTheBundle = (name: string) =>
        /^node_modules\/(msgpackr-extract|node-gyp-build-optional-packages|detect-libc)\//.test(name);
      expect((await apply()).filter((name) => !outsideTheBundle(name))).toEqual(["runflow.js"]);
      // Its worker submitted every request.
      expect(flow.api.submissions().total).toBe(4);
      worker.child.kill("SIGTERM");
      await worker.child;
    },
  );

  test("a later apply loads the Node modules it needs before its first submission ahead of the heap flags", async () => {
    // Node's own code cache is refused once a V8 flag is set: a module loaded after the
    // batch's heap flags compiles from its source (≈ 3 × as long). The pack names those its
    // last run loaded before submitting; the next runs load them before setting the flags.
    const base = tempDir();
    const flow = await project({ "flow.yaml": chainYaml({ name: "builtins" }), "items.csv": itemsCsv(1) });
    const late = path.join(flow.dir, "late-builtins.txt");
    /** A fresh apply (it submits again); the Node modules it loaded after the flags, before submitting. */
    const apply = async (): Promise<string[]> => {
      const result = await flow.run(["apply", "flow.yaml", "--fresh", "--quiet"], {
        env: {
          RUNFLOW_COMPILE_CACHE: base,
          NODE_OPTIONS: `--require=${LATE_BUILTINS_RECORDER}`,
          RUNFLOW_RECORD_LATE_BUILTINS: late,
        },
      });
      expect(result).toMatchObject({ exitCode: 0, stderr: "" });
      return readFileSync(late, "utf8").split("\n").filter(Boolean);
    };

    // The first run has no pack yet: node:crypto (the inputs' fingerprints) and undici's
    // node:http among others load after the flags.
    expect(await apply()).toEqual(expect.arrayContaining(["crypto", "http"]));
    expect(await apply()).toEqual([]);
    expect(await apply()).toEqual([]);
  });

  test("a damaged or foreign cache is ignored and written again; the output is the same", async () => {
    const base = tempDir();
    const clean = await run(["--version"], { RUNFLOW_COMPILE_CACHE: base });
    const folder = folderOf(base, "none");
    const names = [...cacheFiles(base, "none").keys()];
    expect(names.length).toBeGreaterThan(1);

    // Each file spoilt its own way: cut short, one byte of the code flipped (the CRC-32
    // before it no longer matches), code that is not V8's with a matching CRC-32 (V8
    // refuses it), empty.
    const spoil = [
      (bytes: Buffer) => bytes.subarray(0, Math.floor(bytes.length / 2)),
      (bytes: Buffer) => {
        const copy = Buffer.from(bytes);
        copy[copy.length - 7]! ^= 0xff;
        return copy;
      },
      (bytes: Buffer) => {
        const junk = Buffer.alloc(bytes.length - 4, 0x5a);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(crc32(junk));
        return Buffer.concat([header, junk]);
      },
      () => Buffer.alloc(0),
    ];
    const spoilt = new Map<string, number>();
    names.forEach((name, index) => {
      const file = path.join(folder, name);
      writeFileSync(file, spoil[index % spoil.length]!(readFileSync(file)));
      spoilt.set(name, statSync(file).ino);
    });

    const again = await run(["--version"], { RUNFLOW_COMPILE_CACHE: base });
    expect(again).toMatchObject({ exitCode: 0, stdout: clean.stdout, stderr: "" });
    // Every spoilt file was replaced by a good one, which the next run uses as it is.
    const rewritten = cacheFiles(base, "none");
    for (const [name, ino] of spoilt)
      expect({ name, same: rewritten.get(name)?.ino === ino }).toEqual({ name, same: false });
    await run(["--version"], { RUNFLOW_COMPILE_CACHE: base });
    const used = cacheFiles(base, "none");
    expect([...used].map(([name, file]) => [name, file.ino])).toEqual(
      [...rewritten].map(([name, file]) => [name, file.ino]),
    );
  });

  test("a cache folder that cannot be written changes nothing", async () => {
    const dir = tempDir();
    const notAFolder = path.join(dir, "file");
    writeFileSync(notAFolder, "a file where the cache folder would be\n");
    const result = await run(["--version"], { RUNFLOW_COMPILE_CACHE: path.join(notAFolder, "compile") });
    const plain = await run(["--version"], { RUNFLOW_COMPILE_CACHE: "off" });
    expect(result).toMatchObject({ exitCode: 0, stdout: plain.stdout, stderr: "" });
    expect(readFileSync(notAFolder, "utf8")).toBe("a file where the cache folder would be\n");
  });

  test("by default it lives in the user's cache folder; RUNFLOW_COMPILE_CACHE=off writes none", async () => {
    const home = tempDir();
    await run(["--version"], { HOME: home, RUNFLOW_COMPILE_CACHE: "off" });
    expect(existsSync(path.join(home, ".cache"))).toBe(false);
    await run(["--version"], { HOME: home, RUNFLOW_COMPILE_CACHE: undefined });
    expect(cacheFiles(path.join(home, ".cache", "runflow", "compile"), "none").size).toBeGreaterThan(0);
  });

  test("--verbose stack traces name the TypeScript sources (no cache, source maps on)", async () => {
    const base = tempDir();
    const dir = tempDir();
    const result = await spawnCli(["--verbose", "validate", "missing.yaml"], {
      cwd: dir,
      env: { RUNFLOW_COMPILE_CACHE: base },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /at runValidateCommand \(.*src[/\\]cli[/\\]commands[/\\]validate\.ts:\d+:\d+\)/,
    );
    expect(readdirSync(base)).toEqual([]);
  });
});
