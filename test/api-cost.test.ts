/**
 * Prices and costs as the client reads them (API.md "Prices and cost"), over HTTP against
 * the emulator: the price call, `include_cost=true` on every result, and answers whose cost
 * or price cannot be used (unknown, never 0).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { toModelPrice, toRequestResult } from "../src/api/answers.js";
import { RunComfyClient } from "../src/api/client.js";
import { formatCost, formatPrice, formatUsd, microsFromUsd } from "../src/cost/money.js";
import { startEmulator, type RunningEmulator } from "../src/emulator/index.js";

const HAILUO = "minimax/Hailuo Video 01 Live";
const ALEPH = "runwayml/runway-aleph/video-to-video";
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function emulator(options: Parameters<typeof startEmulator>[0] = {}): Promise<RunningEmulator> {
  const api = await startEmulator({ duration: 0, ...options });
  closers.push(() => api.close());
  return api;
}

function client(api: { url: string }): RunComfyClient {
  return new RunComfyClient({ baseUrl: api.url, token: "t", retry: { attempts: 1 } });
}

describe("prices", () => {
  test("GET /v1/models/{id} gives the configured price; a model without one, or unknown to the API, has none", async () => {
    const api = await emulator({
      prices: { [HAILUO]: { usd: 0.045, unit: "second", seconds: 6 }, [ALEPH]: null },
    });
    expect(await client(api).price(HAILUO)).toEqual({
      modelId: HAILUO,
      micros: 45_000,
      unit: "second",
      note: "per second of output; the emulator bills 6 s per request",
    });
    expect(await client(api).price(ALEPH)).toBeUndefined();
    expect(await client(api).price("nobody/no-such-model")).toBeUndefined();
    // Changed at run time through the control endpoint, one model at a time.
    const answer = await fetch(`${api.url}/__emulator/config`, {
      method: "POST",
      body: JSON.stringify({ prices: { [ALEPH]: { usd: 0.3, unit: "output" } } }),
    });
    expect(answer.status).toBe(200);
    expect((await client(api).price(ALEPH))?.micros).toBe(300_000);
    expect((await client(api).price(HAILUO))?.micros).toBe(45_000);
  });

  test("a bad price setting is refused with the setting's name", async () => {
    const api = await emulator();
    const answer = await fetch(`${api.url}/__emulator/config`, {
      method: "POST",
      body: JSON.stringify({ prices: { [ALEPH]: { usd: 1, unit: "minute" } } }),
    });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain(`prices.${ALEPH}.unit`);
  });

  test("answers without a usable price are no price", () => {
    expect(toModelPrice({ base_price_usd: "0.1", price_unit: "second" }, HAILUO)).toBeUndefined();
    expect(toModelPrice({ base_price_usd: -1, price_unit: "second" }, HAILUO)).toBeUndefined();
    expect(toModelPrice({ base_price_usd: 0.1, price_unit: "minute" }, HAILUO)).toBeUndefined();
    expect(toModelPrice({ base_price_usd: 0.1, price_unit: "Output" }, HAILUO)?.unit).toBe("output");
  });
});

describe("costs", () => {
  test("every result is asked with include_cost=true; a terminal result carries what the request cost", async () => {
    const api = await emulator({ prices: { [ALEPH]: { usd: 0.12, unit: "output" } }, costFactor: 2 });
    const submitted = await client(api).submit(ALEPH, {
      prompt: "watercolor",
      video_url: `${api.url}/media/clip.mp4`,
      ratio: "1280:720",
    });
    if (submitted.kind !== "submitted") throw new Error("not submitted");
    const result = await client(api).waitForResult(submitted.requestId);
    expect(result.costMicros).toBe(240_000);
    const asked = api.requestLog().filter((call) => call.path.endsWith("/result"));
    expect(asked.map((call) => call.query)).toEqual([{ include_cost: "true" }]);
  });

  test("an API that reports no cost, or one that is not a number, gives an unknown cost (never 0)", async () => {
    const api = await emulator({ reportCost: false });
    const submitted = await client(api).submit(HAILUO, {
      prompt: "boat",
      image_url: `${api.url}/media/image.png?w=640&h=480`,
    });
    if (submitted.kind !== "submitted") throw new Error("not submitted");
    expect((await client(api).waitForResult(submitted.requestId)).costMicros).toBeUndefined();
    expect(toRequestResult({ status: "succeeded", output: {}, cost: "0.5" }, "r").costMicros).toBeUndefined();
    expect(toRequestResult({ status: "succeeded", output: {}, cost: null }, "r").costMicros).toBeUndefined();
    expect(toRequestResult({ status: "in_progress", cost: 0.5 }, "r").costMicros).toBeUndefined();
    expect(toRequestResult({ status: "failed", cost: 0 }, "r").costMicros).toBe(0);
  });

  test("a hostile server's price and cost go no further than a number", async () => {
    const server = http.createServer((request, response) => {
      response.setHeader("content-type", "application/json");
      if (request.url?.startsWith("/v1/models/"))
        response.end(JSON.stringify({ base_price_usd: 1e308 * 10, price_unit: "second" }));
      else response.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // JSON has no Infinity: the body says null, which is no price.
    expect(await client({ url }).price(HAILUO)).toBeUndefined();
  });
});

describe("money", () => {
  test("to the cent, exact sums, unknown never $0", () => {
    expect(formatUsd(microsFromUsd(0.1)! * 3)).toBe("$0.30");
    expect(formatUsd(1_234_567_890)).toBe("$1,234.57");
    expect(formatUsd(4_000)).toBe("<$0.01");
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatPrice(45_000, "second")).toBe("$0.045/second");
    expect(formatPrice(100_000, "output")).toBe("$0.10/output");
    expect(formatCost({ micros: 0, known: 0, unknown: 2 })).toBe("unknown");
    expect(formatCost({ micros: 500_000, known: 1, unknown: 1 })).toBe("$0.50 + unknown");
    expect(formatCost({ micros: 0, known: 0, unknown: 0 })).toBe("—");
  });
});

describe("the emulator's price flags", () => {
  test("--price, --cost-factor and --no-cost become its settings; a bad --price is named", async () => {
    const { emulatorOptionsFromFlags } = await import("../src/cli/commands/emulator.js");
    const options = emulatorOptionsFromFlags({
      price: [`${HAILUO}=0.045/second@6s`, `${ALEPH}=$0.12/output`, "some/model=none"],
      costFactor: "2",
      cost: false,
    });
    expect(options.prices).toEqual({
      [HAILUO]: { usd: 0.045, unit: "second", seconds: 6 },
      [ALEPH]: { usd: 0.12, unit: "output" },
      "some/model": null,
    });
    expect(options.costFactor).toBe(2);
    expect(options.reportCost).toBe(false);
    expect(() => emulatorOptionsFromFlags({ price: [`${ALEPH}=cheap`] })).toThrow(/`--price`/);
    const api = await emulator(options);
    expect(await client(api).price("some/model")).toBeUndefined();
    expect((await client(api).price(ALEPH))?.micros).toBe(120_000);
  });
});
