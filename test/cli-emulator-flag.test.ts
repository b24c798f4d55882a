/**
 * `--emulator` from start to end: the in-process emulator finds a port by itself, and what
 * `apply --emulator` leaves (a failure, a dead run) is retried and cancelled the same way,
 * with the commands the summary and `status` print, and no token.
 */
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { startEmbeddedEmulator } from "../src/cli/embedded-emulator.js";
import type { RunningEmulator } from "../src/emulator/index.js";
import { chainYaml, itemsCsv, project, waitForOutput } from "./apply-harness.js";

/** A port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** No token and no API URL: only the embedded emulator can answer. */
const NO_TOKEN = { RUNCOMFY_API_TOKEN: undefined, RUNCOMFY_BASE_URL: undefined };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function occupiedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server: Server = createServer();
    server.listen(0, "127.0.0.1", () => {
      closers.push(() => new Promise((done) => server.close(() => done())));
      resolve((server.address() as { port: number }).port);
    });
  });
}

describe("the embedded emulator", () => {
  test("takes a free port by itself when its usual one is in use", async () => {
    const taken = await occupiedPort();
    const emulator: RunningEmulator = await startEmbeddedEmulator(taken);
    closers.push(() => emulator.close());
    expect(emulator.port).not.toBe(taken);
    expect((await fetch(`${emulator.url}/__emulator/state`)).status).toBe(200);
  });
});

describe("retry and cancel --emulator", () => {
  test("a failure under apply --emulator is retried with the printed command, without a token", async () => {
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(2, (i) => (i === 2 ? " [emulator:fail=boom]" : "")),
    });
    const applied = await p.run(["apply", "chain.yaml", "--emulator"], { env: NO_TOKEN });
    expect(applied.exitCode).toBe(1);
    const runId = /^run (\S+) finished with failures/m.exec(applied.stdout)![1]!;
    expect(applied.stdout).toContain(`to retry: runflow retry ${runId} --emulator`);
    expect((await p.run(["status"], { env: NO_TOKEN })).stdout).toContain(
      `to retry: runflow retry ${runId} --emulator`,
    );
    // Without --emulator it is refused with the command that works, token or not.
    const refused = await p.run(["retry", runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`hint: retry it there: runflow retry ${runId} --emulator`);

    const retried = await p.run(["retry", runId, "--emulator"], { env: NO_TOKEN });
    expect(retried.stderr).not.toMatch(/error|RUNCOMFY_API_TOKEN/);
    expect(retried.stderr).toContain("using the local emulator at http://127.0.0.1:");
    // It ran: the step failed again (its marker says so), the one that succeeded is reused.
    expect(retried.exitCode).toBe(1);
    expect(retried.stdout).toMatch(/clip\/item-2\/animate failed: boom/);
    expect(retried.stdout).toMatch(/to retry: runflow retry \S+ --emulator$/m);
    // Nothing reached the API the environment would name.
    expect(p.api.submissions().total).toBe(0);
  });

  test("a dead apply --emulator run is cancelled without a token; --emulator on another API's run is refused", async () => {
    const p = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(2, () => " [emulator:hold]"),
    });
    const child = p.start(["apply", "chain.yaml", "--emulator"]);
    await waitForOutput(child, "in_progress");
    child.kill("SIGKILL");
    await child.catch(() => undefined);

    const cancelled = await p.run(["cancel", "--emulator"], { env: NO_TOKEN });
    expect(cancelled.stderr).toBe("");
    expect(cancelled.exitCode).toBe(0);
    expect(cancelled.stdout).toMatch(
      /^run \S+ cancelled: 2 open steps marked cancelled \(the embedded emulator/,
    );
    const status = (await p.run(["status"], { env: NO_TOKEN })).stdout;
    expect(status).toContain(": cancelled");
    expect(status).toMatch(/clip\/item-1\/animate cancelled: .*embedded emulator/);

    // A run against an API (here the test's emulator, through the environment) is not the embedded one's.
    const other = await project({
      "chain.yaml": chainYaml(),
      "items.csv": itemsCsv(1, () => " [emulator:hold]"),
    });
    const live = other.start(["apply", "chain.yaml"]);
    await waitForOutput(live, "in_progress");
    live.kill("SIGKILL");
    await live.catch(() => undefined);
    const refused = await other.run(["cancel", "--emulator"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /was made at the emulator at http:\/\/127\.0\.0\.1:\d+, not the embedded emulator/,
    );
    expect(other.api.state().requests.cancelled).toBe(0);
  });
});

describe("media the emulator cannot serve", () => {
  test("a media host that does not answer is one error naming its var and what to pass, not one per URL", async () => {
    const cdn = `http://127.0.0.1:${await closedPort()}`;
    const stills = `version: 1
name: stills
vars:
  cdn: "${cdn}"
jobs:
  clip:
    for_each: items.csv
    steps:
      - id: animate
        model: minimax/Hailuo Video 01 Live
        input:
          prompt: "\${{ item.prompt }}"
          image_url: "\${{ vars.cdn }}/stills/\${{ item.id }}.png"
`;
    const p = await project({ "stills.yaml": stills, "items.csv": itemsCsv(30) });
    const result = await p.run(["apply", "stills.yaml", "--emulator"], { env: NO_TOKEN });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.match(/could not fetch/g)).toHaveLength(1);
    expect(result.stderr).toContain(`(and 29 more media URLs on ${cdn})`);
    expect(result.stderr).toMatch(
      new RegExp(
        `hint: ${cdn.replaceAll(".", "\\.")} \\(vars\\.cdn\\) gave no answer: pass --var cdn=URL of a host`,
      ),
    );
    expect(result.stderr).toMatch(
      /The emulator serves only its test media, http:\/\/127\.0\.0\.1:\d+\/media\/image\.png/,
    );
  });
});
