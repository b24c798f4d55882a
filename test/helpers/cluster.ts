/**
 * What the cluster's tests share (SPEC §10): the workflow they run on workers and a
 * `runflow worker` process of the project, with the lines it printed.
 */
import { createInterface } from "node:readline";
import { chainYaml, type Child, type Project } from "../apply-harness.js";

/** Hailuo → Aleph → a local program that checks the restyled video is on disk. */
export function clusterYaml(options: { concurrency: number; limit?: number; hold?: boolean }): string {
  const chain = chainYaml({ name: "cluster", concurrency: options.concurrency });
  const limits =
    options.limit === undefined ? "" : `limits:\n  minimax/Hailuo Video 01 Live: ${options.limit}\n`;
  const withLimits = chain.replace("defaults:\n", `${limits}defaults:\n`);
  const held = options.hold
    ? withLimits.replace('"${{ item.prompt }}"', '"${{ item.prompt }} [emulator:hold]"')
    : withLimits;
  return `${held}      - id: check
        run: [node, "-e", "require('fs').statSync(process.argv[1])", "\${{ steps.restyle.files.video }}"]
`;
}

/** A worker process, and the lines it printed so far. */
export interface WorkerProcess {
  name: string;
  child: Child;
  lines: string[];
  /** Resolves with its line that says it takes steps. */
  ready: Promise<string>;
}

/** `runflow worker --name NAME ARGS` in the project (its environment plus `env`). */
export function startWorkerProcess(
  p: Project,
  name: string,
  args: string[],
  env: Record<string, string> = {},
): WorkerProcess {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  const child = p.start(["worker", "--name", name, ...args]);
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const lines: string[] = [];
  let ready!: (line: string) => void;
  const started = new Promise<string>((resolve) => (ready = resolve));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    if (line.startsWith(`worker ${name} taking steps`)) ready(line);
  });
  return { name, child, lines, ready: started };
}
