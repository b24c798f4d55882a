/** `runflow emulator`: its flags, what it prints, and that it serves until stopped. */
import { describe, expect, test } from "vitest";
import {
  DEFAULT_EMULATOR_DURATION_MS,
  DEFAULT_EMULATOR_PORT,
  emulatorOptionsFromFlags,
  runEmulator,
} from "../src/cli/commands/emulator.js";
import { runCli } from "../src/cli/program.js";
import { ExitCode, UsageError } from "../src/errors.js";
import { alephInput, submit } from "./emulator-client.js";

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

function capture() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const firstLine = deferred<string>();
  return {
    stdout,
    stderr,
    firstLine: firstLine.promise,
    output: {
      stdout: (text: string) => {
        stdout.push(text);
        firstLine.resolve(text);
      },
      stderr: (text: string) => stderr.push(text),
    },
  };
}

describe("emulator flags", () => {
  test("defaults to port 8787 and 3 s in progress", () => {
    expect(emulatorOptionsFromFlags({})).toEqual({
      port: DEFAULT_EMULATOR_PORT,
      duration: DEFAULT_EMULATOR_DURATION_MS,
      logBodies: true,
    });
  });

  test("reads durations, ranges, rates and a rate limit", () => {
    expect(
      emulatorOptionsFromFlags({
        port: "0",
        duration: "1s-5s",
        queueDelay: "500ms",
        capacity: "4",
        failRate: "0.1",
        errorRate: "0",
        rateLimit: "50/s",
        token: "t0k",
        logBodies: false,
      }),
    ).toEqual({
      port: 0,
      duration: { min: 1_000, max: 5_000 },
      queueDelay: 500,
      capacity: 4,
      failRate: 0.1,
      errorRate: 0,
      rateLimit: 50,
      token: "t0k",
      logBodies: false,
    });
    expect(emulatorOptionsFromFlags({ duration: "0" }).duration).toBe(0);
  });

  test.each([
    [{ failRate: "2" }, "Expected `--fail-rate` to be a number between 0 and 1, got `2`"],
    [{ errorRate: "often" }, "Expected `--error-rate` to be a number between 0 and 1, got `often`"],
    [
      { duration: "soon" },
      "Expected `--duration` to be a duration like `3s`, or a range like `1s-5s`, got `soon`",
    ],
    [
      { duration: "5s-1s" },
      "Expected `--duration` to be a duration like `3s`, or a range like `1s-5s`, got `5s-1s`",
    ],
    [
      { rateLimit: "fast" },
      "Expected `--rate-limit` to be a number of requests per second like `50/s`, got `fast`",
    ],
    [{ port: "70000" }, "Expected `--port` to be an integer from 0 to 65535, got `70000`"],
    [{ capacity: "0" }, "Expected `--capacity` to be an integer from 1 to 1000000, got `0`"],
  ])("refuses %j", (flags, message) => {
    expect(() => emulatorOptionsFromFlags(flags)).toThrow(new UsageError(message));
  });

  test("a bad flag exits 2 with the message, starting nothing", async () => {
    const { output, stderr } = capture();
    expect(await runCli(["emulator", "--fail-rate", "2"], output)).toBe(ExitCode.invalid);
    expect(stderr.join("")).toContain("Expected `--fail-rate` to be a number between 0 and 1, got `2`");
  });

  test("a non-loopback host exits 2", async () => {
    const { output, stderr } = capture();
    expect(await runCli(["emulator", "--port", "0", "--host", "0.0.0.0"], output)).toBe(ExitCode.invalid);
    expect(stderr.join("")).toContain("loopback");
  });
});

describe("runEmulator", () => {
  test("prints the URL and how to point runflow at it, serves, and closes when stopped", async () => {
    const { output, stdout, firstLine } = capture();
    const stop = deferred();
    const running = runEmulator(
      { port: 0, duration: 0, token: "never-printed" },
      {
        output,
        json: false,
        quiet: false,
        stopped: stop.promise,
      },
    );
    const url = /listening on (http:\/\/\S+)/.exec(await firstLine)?.[1] as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stdout.join("\n")).toContain(`RUNCOMFY_BASE_URL=${url} RUNCOMFY_API_TOKEN=`);
    expect(stdout.join("\n")).not.toContain("never-printed");
    expect((await submit(url, alephInput(url), undefined, "never-printed")).status).toBe(200);

    stop.resolve();
    await running;
    await expect(fetch(`${url}/v1/models`)).rejects.toThrow();
  });

  test("`runflow --json emulator` prints its URL as JSON and exits 0 on SIGTERM", async () => {
    const { output, firstLine } = capture();
    const exit = runCli(["--json", "emulator", "--port", "0", "--duration", "0"], output);
    const { url } = JSON.parse(await firstLine) as { url: string };
    expect((await submit(url, alephInput(url))).status).toBe(200);
    process.emit("SIGTERM");
    expect(await exit).toBe(ExitCode.ok);
    await expect(fetch(`${url}/v1/models`)).rejects.toThrow();
  });
});
