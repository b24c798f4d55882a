/**
 * The emulator's injected faults and prompt markers, seen from outside: what a client gets
 * on the wire, and what the emulator did (created or not) behind it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";
import {
  alephInput,
  call,
  cancel,
  HAILUO,
  hailuoInput,
  manualClock,
  resultOf,
  statusOf,
  submit,
  submitOk,
} from "./emulator-client.js";

/** Whether a fetch failed at the transport level (the connection dropped), not with a status. */
async function transportFailure(attempt: Promise<unknown>): Promise<boolean> {
  try {
    await attempt;
    return false;
  } catch (error) {
    return error instanceof TypeError;
  }
}

describe("scripted faults", () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("answers 500 with a JSON error body carrying error_code 500001", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "500", times: 1 }] });
    const answer = await submit(emulator.url, alephInput(emulator.url));
    expect(answer.status).toBe(500);
    expect(answer.json.error_code).toBe(500001);
    expect(emulator.submissions().total).toBe(0);
  });

  test.each(["502", "503", "504"] as const)("answers %s with an HTML body that is not JSON", async (kind) => {
    emulator.configure({ faults: [{ endpoint: "status", kind, times: 1 }] });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    const answer = await statusOf(emulator.url, id);
    expect(answer.status).toBe(Number(kind));
    expect(answer.headers.get("content-type")).toBe("text/html");
    expect(() => JSON.parse(answer.text) as unknown).toThrow();
    expect((await statusOf(emulator.url, id)).status).toBe(200);
  });

  test("answers 429 with Retry-After when the fault gives one, and without the header when not", async () => {
    emulator.configure({
      faults: [
        { endpoint: "result", kind: "429", retryAfter: 7, times: 1 },
        { endpoint: "result", kind: "429", times: 1 },
      ],
    });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    const withHeader = await resultOf(emulator.url, id);
    expect(withHeader.status).toBe(429);
    expect(withHeader.headers.get("retry-after")).toBe("7");
    const withoutHeader = await resultOf(emulator.url, id);
    expect(withoutHeader.status).toBe(429);
    expect(withoutHeader.headers.get("retry-after")).toBeNull();
    expect((await resultOf(emulator.url, id)).status).toBe(200);
  });

  test("drops a submission's connection without creating the request", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "drop", times: 1 }] });
    expect(await transportFailure(submit(emulator.url, alephInput(emulator.url)))).toBe(true);
    expect(emulator.submissions().total).toBe(0);
    expect(emulator.requestLog()[0]).toMatchObject({ endpoint: "submit", status: null, fault: "drop" });
  });

  test("drop-after-create creates the request, visible in submissions, but the client gets a socket error", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "drop-after-create", times: 1 }] });
    const body = alephInput(emulator.url);
    expect(await transportFailure(submit(emulator.url, body))).toBe(true);
    const stats = emulator.submissions();
    expect(stats.total).toBe(1);
    expect(stats.byBody[0]?.requestIds).toHaveLength(1);
    expect(emulator.state().requests.total).toBe(1);
  });

  test("a 5xx with afterCreate answers the error after creating the request", async () => {
    emulator.configure({ faults: [{ endpoint: "submit", kind: "502", afterCreate: true, times: 1 }] });
    const answer = await submit(emulator.url, alephInput(emulator.url));
    expect(answer.status).toBe(502);
    expect(emulator.submissions().total).toBe(1);
  });

  test("drops a cancel's answer after cancelling when asked to", async () => {
    emulator.configure({ capacity: 1, duration: 60_000 });
    await submitOk(emulator.url, alephInput(emulator.url));
    const queued = await submitOk(emulator.url, alephInput(emulator.url));
    emulator.configure({ faults: [{ endpoint: "cancel", kind: "drop-after-create", times: 1 }] });
    expect(await transportFailure(cancel(emulator.url, queued))).toBe(true);
    expect((await statusOf(emulator.url, queued)).json.status).toBe("cancelled");
  });

  test("fires a fault with times on exactly that many matching calls, then retires it", async () => {
    emulator.configure({ faults: [{ endpoint: "models", kind: "503", times: 2 }] });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(emulator.url, "GET", "/v1/models")).status);
    expect(statuses).toEqual([503, 503, 200, 200]);
    expect(emulator.config().faults).toEqual([]);
  });

  test("a fault without times or rate fires on every matching call and only on its endpoint", async () => {
    emulator.configure({ faults: [{ endpoint: "status", kind: "500" }] });
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    expect((await statusOf(emulator.url, id)).status).toBe(500);
    expect((await statusOf(emulator.url, id)).status).toBe(500);
    expect((await resultOf(emulator.url, id)).status).toBe(200);
  });

  test("a fault on * reaches every API and file endpoint but never the control endpoints", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    emulator.configure({ faults: [{ endpoint: "*", kind: "503" }] });
    expect((await resultOf(emulator.url, id)).status).toBe(503);
    expect((await call(emulator.url, "GET", `/files/${id}/video.mp4`, { token: null })).status).toBe(503);
    expect((await call(emulator.url, "GET", "/__emulator/state", { token: null })).status).toBe(200);
  });

  test("slow delays the answer and then answers normally", async () => {
    emulator.configure({ faults: [{ endpoint: "models", kind: "slow", delayMs: 20, times: 1 }] });
    const answer = await call(emulator.url, "GET", "/v1/models");
    expect(answer.status).toBe(200);
    expect(emulator.requestLog()[0]).toMatchObject({ status: 200, fault: "slow" });
  });

  test("truncate sends half of an output file and closes the connection", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url, "clip [emulator:output-bytes=100000]"));
    emulator.configure({ faults: [{ endpoint: "files", kind: "truncate", times: 1 }] });
    const response = await fetch(`${emulator.url}/files/${id}/video.mp4`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe("100000");
    await expect(response.arrayBuffer()).rejects.toThrow();
    const retry = await fetch(`${emulator.url}/files/${id}/video.mp4`);
    expect((await retry.arrayBuffer()).byteLength).toBe(100_000);
  });

  test("stall sends half of a file and then nothing, on a connection left open", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url, "clip [emulator:output-bytes=100000]"));
    emulator.configure({ faults: [{ endpoint: "files", kind: "stall", times: 1 }] });
    const controller = new AbortController();
    const response = await fetch(`${emulator.url}/files/${id}/video.mp4`, { signal: controller.signal });
    expect(response.headers.get("content-length")).toBe("100000");
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
    let received = 0;
    while (received < 50_000) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      received += value!.byteLength;
    }
    expect(received).toBe(50_000);
    // The emulator's own log tells the body went out stalled; the client gives up by itself.
    expect(emulator.requestLog().at(-1)).toMatchObject({ endpoint: "files", status: 200, fault: "stall" });
    controller.abort();
  });

  test("endless sends a file without Content-Length and keeps sending", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url, "clip [emulator:output-bytes=5000]"));
    emulator.configure({ faults: [{ endpoint: "files", kind: "endless", times: 1 }] });
    const controller = new AbortController();
    const response = await fetch(`${emulator.url}/files/${id}/video.mp4`, { signal: controller.signal });
    expect(response.headers.get("content-length")).toBeNull();
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
    let received = 0;
    while (received <= 1_000_000) received += (await reader.read()).value!.byteLength;
    controller.abort();
    expect(received).toBeGreaterThan(1_000_000);
  });

  test("html-page answers 200 with an HTML page instead of the file", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    emulator.configure({ faults: [{ endpoint: "files", kind: "html-page", times: 1 }] });
    const response = await fetch(`${emulator.url}/files/${id}/video.mp4`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await response.text()).toContain("<html>");
  });

  test("404 answers a file as gone; `ranged` picks whole-file downloads or ranged probes", async () => {
    emulator.configure({ faults: [{ endpoint: "media", kind: "404", ranged: false }] });
    const still = `${emulator.url}/media/image.png?w=320&h=240`;
    // A probe's ranged read passes; the whole file is gone.
    const probe = await fetch(still, { headers: { range: "bytes=0-63" } });
    expect(probe.status).toBe(206);
    await probe.arrayBuffer();
    const whole = await fetch(still);
    expect(whole.status).toBe(404);
    expect(await whole.text()).toBe("Not Found\n");
    emulator.configure({ faults: [{ endpoint: "media", kind: "404", ranged: true, times: 1 }] });
    expect((await fetch(still, { headers: { range: "bytes=0-63" } })).status).toBe(404);
    expect(() =>
      emulator.configure({
        faults: [{ endpoint: "media", kind: "404", ranged: "no" as unknown as boolean }],
      }),
    ).toThrow("faults[0].ranged");
  });

  test("output replaces a succeeded result's output, with {url} and {base} filled in", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url));
    emulator.configure({
      faults: [
        { endpoint: "result", kind: "output", output: { "../x": "{url}", other: ["{base}/media/a.png"] } },
      ],
    });
    const { json } = await resultOf(emulator.url, id);
    expect(json.output).toEqual({
      "../x": `${emulator.url}/files/${id}/video.mp4`,
      other: [`${emulator.url}/media/a.png`],
    });
    expect(() => emulator.configure({ faults: [{ endpoint: "result", kind: "output" }] })).toThrow(
      "Expected `faults[0].output` to be the `output` object a succeeded /result gives instead, got `nothing`",
    );
  });

  test("refuses a malformed fault, naming the field", () => {
    expect(() => emulator.configure({ faults: [{ endpoint: "status", kind: "418" as "500" }] })).toThrow(
      'Expected `faults[0].kind` to be one of "500", "502", "503", "504", "429", "drop", "drop-after-create", "slow", "hold", "truncate", "empty-200", "truncated-json", "307", "endless", "stall", "html-page", "404", "output", got `418`',
    );
    expect(() =>
      emulator.configure({ faults: [{ endpoint: "status", kind: "500", retryAfter: 3 }] }),
    ).toThrow(/429/);
  });
});

describe("latency", () => {
  test("holds calls to the endpoint it is set for, and only those", async () => {
    const emulator = await startEmulator({ latency: { status: 60_000 } });
    try {
      const id = await submitOk(emulator.url, alephInput(emulator.url));
      const held = statusOf(emulator.url, id);
      held.catch(() => undefined);
      // Round trips to another endpoint answer while the status call is still held.
      let statusCall;
      for (let i = 0; i < 50 && statusCall === undefined; i++) {
        expect((await resultOf(emulator.url, id)).status).toBe(200);
        statusCall = emulator.requestLog().find((entry) => entry.endpoint === "status");
      }
      expect(statusCall).toMatchObject({ status: null });
    } finally {
      // Closing wakes held calls and drops their connections.
      await emulator.close();
    }
  });
});

describe("random faults, rate limits and injected randomness", () => {
  test("errorRate answers 5xx on API calls, never creating a request, and leaves files alone", async () => {
    const emulator = await startEmulator({ errorRate: 1 });
    try {
      const kinds = new Set<number>();
      for (let i = 0; i < 40; i++) kinds.add((await submit(emulator.url, alephInput(emulator.url))).status);
      expect([...kinds].every((status) => [500, 502, 503, 504].includes(status))).toBe(true);
      expect(kinds.size).toBeGreaterThan(1);
      expect(emulator.submissions().total).toBe(0);
      expect((await call(emulator.url, "GET", "/media/video.mp4", { token: null })).status).toBe(200);
    } finally {
      await emulator.close();
    }
  });

  test("an injected random source makes failures and faults reproducible", async () => {
    const sequence = (values: number[]) => {
      let index = 0;
      return () => values[index++ % values.length] as number;
    };
    // failRate 0.5 draws once per submission: 0.1 fails, 0.9 succeeds.
    const emulator = await startEmulator({ failRate: 0.5, random: sequence([0.1, 0.9]) });
    try {
      const outcomes = [];
      for (let i = 0; i < 4; i++) {
        const id = await submitOk(emulator.url, alephInput(emulator.url));
        outcomes.push((await resultOf(emulator.url, id)).json.status);
      }
      expect(outcomes).toEqual(["failed", "succeeded", "failed", "succeeded"]);
    } finally {
      await emulator.close();
    }
  });

  test("answers 429 with Retry-After past rateLimit calls per second, and serves again in the next second", async () => {
    const clock = manualClock();
    const emulator = await startEmulator({ clock, rateLimit: 2 });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push(await call(emulator.url, "GET", "/v1/models"));
      expect(statuses.map((answer) => answer.status)).toEqual([200, 200, 429]);
      expect(statuses[2]?.headers.get("retry-after")).toBe("1");
      expect(statuses[2]?.json.error_code).toBe(429001);
      clock.advance(1_000);
      expect((await call(emulator.url, "GET", "/v1/models")).status).toBe(200);
    } finally {
      await emulator.close();
    }
  });
});

describe("prompt markers", () => {
  const clock = manualClock();
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ clock });
  });
  afterEach(() => emulator.reset());
  afterAll(() => emulator.close());

  test("[emulator:fail=…] ends the request failed with that message", async () => {
    const id = await submitOk(
      emulator.url,
      alephInput(emulator.url, "a cat [emulator:fail=GPU out of memory]"),
    );
    expect((await statusOf(emulator.url, id)).json.status).toBe("completed");
    expect((await resultOf(emulator.url, id)).json).toMatchObject({
      status: "failed",
      error: { message: "GPU out of memory" },
    });
  });

  test("[emulator:fail] without a message fails with a default one", async () => {
    const id = await submitOk(emulator.url, hailuoInput(emulator.url, "[emulator:fail] a dog"), HAILUO);
    const { json } = await resultOf(emulator.url, id);
    expect(json.status).toBe("failed");
    expect((json.error as { message: string }).message).not.toBe("");
  });

  test("[emulator:lost-answer] creates the request and drops the connection unanswered", async () => {
    expect(
      await transportFailure(submit(emulator.url, alephInput(emulator.url, "x [emulator:lost-answer]"))),
    ).toBe(true);
    expect(emulator.submissions().total).toBe(1);
    expect(emulator.requestLog()[0]).toMatchObject({ status: null, fault: "lost-answer" });
  });

  test("[emulator:duration=2s] keeps that request in progress for two seconds", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:duration=2s]"));
    clock.advance(1_999);
    expect((await statusOf(emulator.url, id)).json.status).toBe("in_progress");
    clock.advance(1);
    expect((await statusOf(emulator.url, id)).json.status).toBe("completed");
  });

  test("[emulator:hold] keeps a request in progress, whatever the clock says, until it is released", async () => {
    const held = await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:hold]"));
    const plain = await submitOk(emulator.url, alephInput(emulator.url, "y"));
    clock.advance(24 * 60 * 60 * 1_000);
    expect((await statusOf(emulator.url, held)).json.status).toBe("in_progress");
    expect((await statusOf(emulator.url, plain)).json.status).toBe("completed");
    expect(emulator.state()).toMatchObject({ held: 1, requests: { in_progress: 1, succeeded: 1 } });

    const released = await fetch(`${emulator.url}/__emulator/release`, { method: "POST" });
    expect(await released.json()).toEqual({ released: 1 });
    expect((await statusOf(emulator.url, held)).json.status).toBe("completed");
    expect(emulator.state().held).toBe(0);
    // Released, the hold stays open: the same prompt again (a retry, a resume) is not held.
    const again = await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:hold]"));
    expect((await statusOf(emulator.url, again)).json.status).toBe("completed");
    emulator.reset();
    await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:hold]"));
    expect(emulator.state().held).toBe(1);
  });

  test("[emulator:hold=NAME] is released by its name only; a held request keeps its capacity slot", async () => {
    emulator.configure({ capacity: 1 });
    const first = await submitOk(emulator.url, alephInput(emulator.url, "x [emulator:hold=first]"));
    const second = await submitOk(emulator.url, alephInput(emulator.url, "y [emulator:hold=second]"));
    clock.advance(60_000);
    expect((await statusOf(emulator.url, first)).json.status).toBe("in_progress");
    expect((await statusOf(emulator.url, second)).json).toMatchObject({
      status: "in_queue",
      queue_position: 1,
    });

    expect(emulator.release("second")).toBe(1);
    // Released while queued: it still waits for the slot `first` holds.
    expect((await statusOf(emulator.url, second)).json.status).toBe("in_queue");
    const answer = await fetch(`${emulator.url}/__emulator/release/first`, { method: "POST" });
    expect(await answer.json()).toEqual({ released: 1 });
    expect((await statusOf(emulator.url, first)).json.status).toBe("completed");
    expect((await statusOf(emulator.url, second)).json.status).toBe("completed");
    expect(emulator.release()).toBe(0);
  });

  test("[emulator:output-bytes=N] makes the output video exactly N bytes", async () => {
    const id = await submitOk(
      emulator.url,
      hailuoInput(emulator.url, "x [emulator:output-bytes=17000000]"),
      HAILUO,
    );
    const video = (await resultOf(emulator.url, id)).json.output as { video: string };
    const head = await fetch(video.video, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe("17000000");
  });

  test("refuses an unknown or malformed marker with 422, pointing at the prompt", async () => {
    for (const prompt of [
      "x [emulator:explode]",
      "x [emulator:output-bytes=lots]",
      "x [emulator:duration=soon]",
      "x [emulator:hold=a b]",
    ]) {
      const answer = await submit(emulator.url, alephInput(emulator.url, prompt));
      expect(answer.status).toBe(422);
      expect(answer.json.detail).toEqual([
        expect.objectContaining({ loc: ["body", "prompt"], type: "emulator_marker" }),
      ]);
    }
    expect(emulator.submissions().total).toBe(0);
  });

  test("a prompt without markers is just a prompt", async () => {
    const id = await submitOk(emulator.url, alephInput(emulator.url, "a [normal] prompt about emulators"));
    expect((await resultOf(emulator.url, id)).json.status).toBe("succeeded");
  });
});
