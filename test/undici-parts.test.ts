/**
 * src/api/undici-parts.ts takes undici's parts from their own files (not its index, which
 * loads all of undici). Those paths are not undici's public API: this test pins that each
 * part is the very object the index exports, and that the request it makes is undici's.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as undici from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Agent, errors, redirectInterceptor, request } from "../src/api/undici-parts.js";

let server: ReturnType<typeof createServer>;
let base = "";

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/moved") {
      res.writeHead(302, { location: "/answer?from=moved" }).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" }).end(`${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("undici's parts, one file each", () => {
  test("are the objects undici's index exports", () => {
    expect(Agent).toBe(undici.Agent);
    expect(errors).toBe(undici.errors);
    expect(redirectInterceptor).toBe(undici.interceptors.redirect);
  });

  test("request asks the dispatcher as undici's request does: method, path and query", async () => {
    const agent = new Agent();
    try {
      const answer = await request(`${base}/answer?q=1`, { method: "POST", body: "x", dispatcher: agent });
      expect(answer.statusCode).toBe(200);
      expect(await answer.body.text()).toBe("POST /answer?q=1");
      const redirecting = agent.compose(redirectInterceptor({ maxRedirections: 2 }));
      const moved = await request(`${base}/moved`, { method: "GET", dispatcher: redirecting });
      expect(await moved.body.text()).toBe("GET /answer?from=moved");
    } finally {
      await agent.close();
    }
  });

  test("request refuses what undici's refuses: a URL that is not http or https", async () => {
    const agent = new Agent();
    try {
      expect(() => request("ftp://example.com/a.png", { method: "GET", dispatcher: agent })).toThrow(
        errors.InvalidArgumentError,
      );
      expect(() => undici.request("ftp://example.com/a.png", { dispatcher: agent })).toThrow(
        errors.InvalidArgumentError,
      );
    } finally {
      await agent.close();
    }
  });
});
