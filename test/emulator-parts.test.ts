/**
 * The emulator's pure parts, without HTTP: the clock-driven request book, config checks,
 * prompt markers, byte ranges and the streamed files they describe.
 */
import { describe, expect, test } from "vitest";
import { applyConfigPatch, DEFAULT_CONFIG } from "../src/emulator/config.js";
import { parseRange } from "../src/emulator/http-io.js";
import { parseMarkers } from "../src/emulator/markers.js";
import { mp4File } from "../src/emulator/mp4.js";
import { pngFile, solidPng } from "../src/emulator/png.js";
import { RequestBook, type NewRequest } from "../src/emulator/request-book.js";
import { readAll, readRange } from "../src/emulator/virtual-file.js";

let counter = 0;
function request(overrides: Partial<NewRequest> = {}): NewRequest {
  counter++;
  return {
    id: `r${counter}`,
    modelId: "m",
    owner: 0,
    createdAt: 0,
    readyAt: 0,
    durationMs: 100,
    output: { kind: "video" },
    ...overrides,
  };
}

describe("RequestBook", () => {
  test("runs at most `capacity` requests at once, in submission order", () => {
    const book = new RequestBook(2);
    const [a, b, c, d] = [1, 2, 3, 4].map(() => book.add(request()));
    const phases = (now: number) => [a, b, c, d].map((r) => book.stateOf(r!, now).phase);
    expect(phases(0)).toEqual(["in_progress", "in_progress", "in_queue", "in_queue"]);
    expect(book.stateOf(d!, 0).queuePosition).toBe(2);
    expect(phases(100)).toEqual(["succeeded", "succeeded", "in_progress", "in_progress"]);
    expect(book.stateOf(c!, 150)).toEqual({ phase: "in_progress" });
    expect(book.stateOf(c!, 200)).toEqual({ phase: "succeeded", finishedAt: 200 });
  });

  test("starts a queued request when a slot frees even if nobody asked in between", () => {
    const book = new RequestBook(1);
    const a = book.add(request({ durationMs: 100 }));
    const b = book.add(request({ durationMs: 100 }));
    // Asked only at 250: a ran 0–100, b 100–200.
    expect(book.stateOf(b, 250)).toEqual({ phase: "succeeded", finishedAt: 200 });
    expect(book.stateOf(a, 250)).toEqual({ phase: "succeeded", finishedAt: 100 });
  });

  test("a request waits for its queue delay even with free capacity", () => {
    const book = new RequestBook(null);
    const a = book.add(request({ readyAt: 50 }));
    expect(book.stateOf(a, 49)).toEqual({ phase: "in_queue", queuePosition: 1 });
    expect(book.stateOf(a, 50).phase).toBe("in_progress");
  });

  test("cancelling a queued request moves everyone behind it up, and lets the next start earlier", () => {
    const book = new RequestBook(1);
    book.add(request());
    const b = book.add(request());
    const c = book.add(request());
    expect(book.stateOf(c, 10).queuePosition).toBe(2);
    expect(book.cancel(b, 10)).toBe("cancelled");
    expect(book.stateOf(b, 10)).toEqual({ phase: "cancelled", finishedAt: 10 });
    expect(book.stateOf(c, 10).queuePosition).toBe(1);
    expect(book.stateOf(c, 100).phase).toBe("in_progress");
  });

  test("refuses to cancel a running or finished request, and cancelling twice is harmless", () => {
    const book = new RequestBook(null);
    const a = book.add(request());
    expect(book.cancel(a, 10)).toBe("not_cancellable");
    expect(book.cancel(a, 500)).toBe("not_cancellable");
    const b = book.add(request({ readyAt: 1_000 }));
    expect(book.cancel(b, 500)).toBe("cancelled");
    expect(book.cancel(b, 600)).toBe("cancelled");
    expect(book.stateOf(b, 700)).toEqual({ phase: "cancelled", finishedAt: 500 });
  });

  test("counts positions correctly across many cancellations and a long queue", () => {
    const book = new RequestBook(1);
    const all = Array.from({ length: 3000 }, () => book.add(request({ durationMs: 10 })));
    for (let i = 1; i < all.length; i += 2) book.cancel(all[i]!, 0);
    // Live: indexes 0, 2, 4, …; index 0 runs; index 2k waits at position k.
    expect(book.stateOf(all[2000]!, 0).queuePosition).toBe(1000);
    expect(book.stateOf(all[2000]!, 10 * 1000).phase).toBe("in_progress");
    expect(book.stateOf(all[2998]!, 10 * 1000).queuePosition).toBe(499);
  });

  test("a smaller capacity waits for enough running requests to finish", () => {
    const book = new RequestBook(null);
    book.add(request({ durationMs: 100 }));
    book.add(request({ durationMs: 300 }));
    book.setCapacity(1, 0);
    const c = book.add(request({ createdAt: 0, readyAt: 0 }));
    expect(book.stateOf(c, 200).phase).toBe("in_queue");
    expect(book.stateOf(c, 300).phase).toBe("in_progress");
  });

  test("an expired queued request leaves the queue", () => {
    const book = new RequestBook(1);
    book.add(request());
    const b = book.add(request());
    const c = book.add(request());
    book.expire(b, 0);
    expect(b.expired).toBe(true);
    expect(book.stateOf(c, 0).queuePosition).toBe(1);
  });
});

describe("config checks", () => {
  test.each([
    [{ failRate: 2 }, "Expected `failRate` to be a number between 0 and 1, got `2`"],
    [{ errorRate: -0.1 }, "Expected `errorRate` to be a number between 0 and 1, got `-0.1`"],
    [{ duration: { min: 5, max: 1 } }, "Expected `duration` to be milliseconds"],
    [{ capacity: 0 }, "Expected `capacity` to be an integer ≥ 1, got `0`"],
    [{ rateLimit: 0 }, "Expected `rateLimit` to be a number > 0, got `0`"],
    [{ statusFailedAs: "oops" }, 'Expected `statusFailedAs` to be one of "completed", "failed", got `oops`'],
    [{ latency: { teleport: 5 } }, "Expected `latency key`"],
    [
      { faults: [{ endpoint: "status", kind: "500", times: 0 }] },
      "Expected `faults[0].times` to be an integer ≥ 1",
    ],
    [{ faults: [{ endpoint: "status", kind: "500", colour: "red" }] }, "Unknown field `faults[0].colour`"],
  ])("refuses %j", (patch, message) => {
    expect(() => applyConfigPatch(DEFAULT_CONFIG, patch)).toThrow(message);
  });

  test("takes Infinity and null as no limit, and one latency for every endpoint", () => {
    const config = applyConfigPatch(DEFAULT_CONFIG, {
      capacity: Infinity,
      rateLimit: null,
      latency: { min: 1, max: 2 },
    });
    expect(config.capacity).toBeNull();
    expect(config.rateLimit).toBeNull();
    expect(config.latency).toEqual({ "*": { min: 1, max: 2 } });
  });

  test("never changes the config it patches", () => {
    const base = applyConfigPatch(DEFAULT_CONFIG, { faults: [{ endpoint: "*", kind: "503" }] });
    applyConfigPatch(base, { faults: [], failRate: 1 });
    expect(base.faults).toHaveLength(1);
    expect(base.failRate).toBe(0);
  });
});

describe("prompt markers", () => {
  test("reads every marker a prompt carries", () => {
    expect(
      parseMarkers(
        "a cat [emulator:fail=boom] [emulator:duration=1.5s] [emulator:output-bytes=42] [emulator:lost-answer]",
      ),
    ).toEqual({
      markers: { fail: "boom", durationMs: 1500, outputBytes: 42, lostAnswer: true },
      problems: [],
    });
    expect(parseMarkers("[emulator:output-size=640x480]").markers).toEqual({
      outputSize: { width: 640, height: 480 },
    });
  });

  test("reports unknown and malformed markers instead of ignoring them", () => {
    const { problems } = parseMarkers("[emulator:fial] [emulator:output-size=big]");
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain("unknown emulator marker");
  });

  test("ignores ordinary brackets", () => {
    expect(parseMarkers("[cinematic] [emulator] emulator:fail")).toEqual({ markers: {}, problems: [] });
  });
});

describe("byte ranges", () => {
  test.each([
    ["bytes=0-9", { start: 0, end: 9 }],
    ["bytes=90-", { start: 90, end: 99 }],
    ["bytes=-5", { start: 95, end: 99 }],
    ["bytes=50-500", { start: 50, end: 99 }],
    ["bytes=100-", "unsatisfiable"],
    ["bytes=9-3", "unsatisfiable"],
    ["bytes=0-1,5-6", undefined],
    ["items=0-1", undefined],
  ])("reads %s of a 100-byte file as %j", (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });
});

describe("streamed files", () => {
  test("any range of a padded video equals the same slice of the whole", () => {
    const file = mp4File(300_000);
    const whole = readAll(file);
    expect(whole.length).toBe(300_000);
    for (const [start, end] of [
      [0, 0],
      [2000, 2100],
      [65_000, 200_000],
      [299_990, 299_999],
    ] as const) {
      expect(Buffer.concat([...readRange(file, start, end)]).equals(whole.subarray(start, end + 1))).toBe(
        true,
      );
    }
  });

  test("a padded PNG keeps its image and ends with IEND", async () => {
    const png = await solidPng(32, 16);
    const padded = readAll(pngFile(png, png.length + 100_000));
    expect(padded.length).toBe(png.length + 100_000);
    expect(padded.subarray(0, 33).equals(png.subarray(0, 33))).toBe(true);
    expect(padded.subarray(-12).equals(png.subarray(-12))).toBe(true);
  });
});
