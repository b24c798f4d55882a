/**
 * runflow used as a library from outside (README "Use runflow as a library"): the package as
 * `npm pack` makes it is unpacked into the node_modules of a project folder of its own (its
 * dependencies linked from this project's node_modules: no network), and that project
 * imports "runflow" the way any Node program would. It runs the README's example as written
 * (against the emulator the library starts), and type checks a consumer .ts file against the
 * package's own declarations. Needs `npm run build` first, like every test of dist/.
 */
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const run = promisify(execFile);
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const README_SECTION = "## Use runflow as a library";

/** The fenced blocks of one language in the README's library section, in order. */
function readmeBlocks(language: string): string[] {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const start = readme.indexOf(README_SECTION);
  expect(start, `README.md has a section "${README_SECTION}"`).toBeGreaterThanOrEqual(0);
  const section = readme.slice(start, readme.indexOf("\n## ", start + README_SECTION.length));
  return [...section.matchAll(new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!);
}

/** The environment of the consumer's processes: no token of this machine leaks into them. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.RUNCOMFY_API_TOKEN;
  delete env.RUNCOMFY_BASE_URL;
  return env;
}

let tmp: string;
/** The consumer project: `node_modules/runflow` is the unpacked package. */
let app: string;

beforeAll(async () => {
  expect(existsSync(path.join(root, "dist", "index.js")), "dist/index.js: run `npm run build` first").toBe(
    true,
  );
  tmp = mkdtempSync(path.join(os.tmpdir(), "runflow-library-"));
  app = path.join(tmp, "app");
  const installed = path.join(app, "node_modules", "runflow");
  mkdirSync(installed, { recursive: true });
  mkdirSync(path.join(tmp, "pack"));
  await run("npm", ["pack", "--ignore-scripts", "--pack-destination", path.join(tmp, "pack")], { cwd: root });
  const [tarball] = readdirSync(path.join(tmp, "pack"));
  await run("tar", ["-xzf", path.join(tmp, "pack", tarball!), "-C", installed, "--strip-components=1"]);
  // The dependencies the package declares, as an install would put them beside it; only
  // these: a dependency the package uses but does not declare fails to resolve here.
  const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  // @types/node: what a TypeScript consumer has anyway.
  for (const name of [...Object.keys(manifest.dependencies), "@types/node"]) {
    const link = path.join(app, "node_modules", name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.join(root, "node_modules", name), link, "dir");
  }
  writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "consumer", type: "module", private: true }),
  );
}, 60_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('import("runflow") from a project that depends on it', () => {
  test("gives the documented API", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'const r = await import("runflow"); console.log(JSON.stringify(Object.keys(r).sort()));',
      ],
      { cwd: app, env: consumerEnv() },
    );
    expect(JSON.parse(stdout)).toEqual(
      expect.arrayContaining([
        "ExitCode",
        "RunflowError",
        "WorkflowInvalidError",
        "LockHeldError",
        "AuthError",
        "EventBus",
        "RunComfyClient",
        "StepState",
        "apply",
        "applyWorkflow",
        "emulatorApi",
        "getRun",
        "listRuns",
        "loadWorkflow",
        "plan",
        "startEmulator",
        "validateWorkflow",
      ]),
    );
  });

  test("runs the README's example: validates, plans and applies a 1-step workflow on the emulator, then lists the run", async () => {
    const [workflow] = readmeBlocks("yaml");
    const [program] = readmeBlocks("js");
    writeFileSync(path.join(app, "hello.yaml"), workflow!);
    writeFileSync(path.join(app, "example.mjs"), program!);
    const { stdout, stderr } = await run(process.execPath, ["example.mjs"], { cwd: app, env: consumerEnv() });
    expect(stderr).toBe("");
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toBe("plan: 1 step(s)");
    // The listener saw the step go through its states (a job without for_each is one instance, keyed by its id).
    const states = lines
      .filter((line) => line.startsWith("clip/clip/animate "))
      .map((line) => line.split(" ")[1]);
    expect(states.slice(0, 2)).toEqual(["waiting", "submitting"]);
    expect(states.at(-1)).toBe("succeeded");
    const runLine = lines.find((line) => line.startsWith("run "));
    expect(runLine).toMatch(/^run \S+: succeeded, exit code 0$/);
    const runId = runLine!.split(" ")[1]!.replace(/:$/, "");
    expect(lines.at(-1)).toBe(`latest run: ${runId} succeeded`);
    // Real effects: the state database and the downloaded output, in the consumer's folder.
    expect(existsSync(path.join(app, "state", "runflow.db"))).toBe(true);
    expect(
      readdirSync(path.join(app, "outputs"), { recursive: true }).some((f) => String(f).endsWith(".mp4")),
    ).toBe(true);
  });

  test("a TypeScript consumer gets the package's types", async () => {
    writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          types: ["node"],
        },
        files: ["consumer.ts"],
      }),
    );
    writeFileSync(
      path.join(app, "consumer.ts"),
      `import { apply, ExitCode, validateWorkflow, type RunEvent, type RunRecord, type StateStore, type EngineApi, type WorkflowCheck } from "runflow";

const check: WorkflowCheck = await validateWorkflow("hello.yaml", { vars: { image_host: "http://127.0.0.1:1" } });
const failed: number = ExitCode.stepsFailed;
const onEvent = (event: RunEvent): string => (event.event === "step" ? event.address : event.event);
export type Reader = Pick<StateStore, "close">;
export type Api = EngineApi;
export const first = (runs: RunRecord[]): string | undefined => runs[0]?.workflowName;
// The types are real, not \`any\`: each misuse below is an error the comment expects.
// @ts-expect-error a file name is a string
await validateWorkflow(42);
// @ts-expect-error apply needs the workflow's file
await apply({ onEvent });
console.log(check.diagnostics.length, failed);
`,
    );
    const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
    const result = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app }).catch(
      (error: { stdout: string; code: number }) => error,
    );
    expect("code" in result ? result.stdout : "").toBe("");
  });
});
