// Shared helpers of the benchmarks: an emulator in its own process (so its CPU and memory
// are not runflow's), workflow files, temp folders. Plain JS over dist/ (run `npm run build`).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
// RUNFLOW_BENCH_CLI runs another build of the CLI instead (a bundle, an older commit's dist/)
// to compare its figures with this one's.
export const CLI = process.env.RUNFLOW_BENCH_CLI ?? path.join(ROOT, "dist", "bin", "runflow.js");
export const TOKEN = "bench-token-0123456789";
export const HAILUO = "minimax/Hailuo Video 01 Live";

export function tempDir(name) {
  return mkdtempSync(path.join(tmpdir(), `runflow-bench-${name}-`));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/** Starts `runflow emulator` in a child process; resolves with { url, control(path, body?), stop() }. */
export function startEmulatorProcess(args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, "emulator", "--port", "0", "--json", "--no-log-bodies", ...args],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let text = "";
    child.stdout.on("data", (chunk) => {
      text += chunk;
      const line = text.split("\n")[0];
      if (!text.includes("\n")) return;
      const { url } = JSON.parse(line);
      resolve({
        url,
        async control(route, body) {
          const response = await fetch(`${url}/__emulator/${route}`, {
            method: body === undefined ? "GET" : "POST",
            body: body === undefined ? undefined : JSON.stringify(body),
            headers: { "content-type": "application/json" },
          });
          return response.json();
        },
        stop() {
          return new Promise((done) => {
            child.once("exit", done);
            child.kill("SIGTERM");
          });
        },
      });
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the emulator exited (${code}) before it listened`)));
  });
}

/** A workflow of `count` independent Hailuo steps (one per item), items in a CSV. */
export function writeBatch(dir, { name, count, concurrency, mediaBase, poll = "" }) {
  mkdirSync(dir, { recursive: true });
  const rows = ["id,prompt"];
  for (let i = 1; i <= count; i++) rows.push(`s${i},shot ${i} of a paper boat drifting down a rainy street`);
  writeFileSync(path.join(dir, "items.csv"), `${rows.join("\n")}\n`);
  writeFileSync(
    path.join(dir, `${name}.yaml`),
    `version: 1
name: ${name}
concurrency: ${concurrency}
defaults:
  retry: { attempts: 1 }
${poll ? `  poll: ${poll}\n` : ""}jobs:
  shot:
    for_each: items.csv
    steps:
      - id: clip
        model: ${HAILUO}
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "${mediaBase}/media/image.png?w=640&h=480"
`,
  );
  return path.join(dir, `${name}.yaml`);
}

/** The request bodies of the batch above, as the baseline sends them. */
export function batchBodies(count, mediaBase) {
  return Array.from({ length: count }, (_, i) => ({
    prompt: `shot ${i + 1} of a paper boat drifting down a rainy street`,
    image_url: `${mediaBase}/media/image.png?w=640&h=480`,
    prompt_optimizer: true,
  }));
}

/** status + result calls the emulator answered, from its counters. */
export function pollCalls(state) {
  const by = state.calls.byEndpoint;
  return (by.status ?? 0) + (by.result ?? 0);
}

export const REMOTE_ENDPOINTS = new Set(["submit", "status", "result"]);

/**
 * When the emulator received the first API call after `afterSeq` (ms since the epoch), from
 * its request log (the latest 1,000 calls): the arrival time itself, not when a polling loop
 * noticed it.
 */
export async function firstCallAt(emulator, afterSeq) {
  const entries = await emulator.control("requests");
  const arrivals = entries
    .filter((entry) => entry.seq > afterSeq && REMOTE_ENDPOINTS.has(entry.endpoint))
    .map((entry) => Date.parse(entry.at));
  return arrivals.length > 0 ? Math.min(...arrivals) : undefined;
}
