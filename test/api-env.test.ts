/** The client as the environment configures it (SPEC §3): which variables, and what a missing token says. */
import { describe, expect, test } from "vitest";
import { createClientFromEnv, readApiToken } from "../src/api/env.js";
import { UsageError } from "../src/errors.js";
import { fakeClock, json, startTestServer, TOKEN } from "./api-helpers.js";

describe("readApiToken", () => {
  test("reads RUNCOMFY_API_TOKEN first, then RunComfy's own name YOUR_API_TOKEN", () => {
    expect(readApiToken({ RUNCOMFY_API_TOKEN: "a", YOUR_API_TOKEN: "b" })).toBe("a");
    expect(readApiToken({ YOUR_API_TOKEN: "b" })).toBe("b");
  });

  test("treats a blank variable as unset and trims the token", () => {
    expect(readApiToken({ RUNCOMFY_API_TOKEN: "  ", YOUR_API_TOKEN: " b\n" })).toBe("b");
    expect(readApiToken({})).toBeUndefined();
  });
});

describe("createClientFromEnv", () => {
  test("says which variable to set when there is no token", () => {
    let error: unknown;
    try {
      createClientFromEnv({ env: {} });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe("no RunComfy API token: RUNCOMFY_API_TOKEN is not set");
    expect((error as UsageError).hint).toContain("export RUNCOMFY_API_TOKEN=");
  });

  test("uses RUNCOMFY_BASE_URL, defaulting to RunComfy's API", () => {
    expect(createClientFromEnv({ env: { RUNCOMFY_API_TOKEN: TOKEN } }).baseUrl).toBe(
      "https://model-api.runcomfy.net",
    );
    const client = createClientFromEnv({
      env: { RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: "http://127.0.0.1:9999/" },
    });
    expect(client.baseUrl).toBe("http://127.0.0.1:9999");
  });

  test("refuses a plain-http RUNCOMFY_BASE_URL off loopback", () => {
    expect(() =>
      createClientFromEnv({
        env: { RUNCOMFY_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: "http://api.example.com" },
      }),
    ).toThrow(UsageError);
  });

  test("sends the token from the environment as a Bearer header", async () => {
    const server = await startTestServer((_request, response) =>
      json(response, 200, { request_id: "r1", status: "in_queue" }),
    );
    try {
      const client = createClientFromEnv({
        env: { YOUR_API_TOKEN: TOKEN, RUNCOMFY_BASE_URL: server.url },
        clock: fakeClock(),
      });
      expect((await client.status("r1")).status).toBe("in_queue");
      expect(server.received[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await server.close();
    }
  });
});
