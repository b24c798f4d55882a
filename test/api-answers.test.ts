/** How the API's answers are read (src/api/answers.ts): status spellings, results, cancel outcomes, catalog paging. */
import { describe, expect, test } from "vitest";
import {
  catalogEntries,
  nextCatalogPage,
  serverDurationMs,
  toCancelOutcome,
  toRequestResult,
  toRequestStatus,
} from "../src/api/answers.js";

describe("toRequestStatus", () => {
  test.each([
    ["in_queue", "in_queue"],
    ["in_progress", "in_progress"],
    ["completed", "completed"],
    ["succeeded", "completed"],
    ["failed", "failed"],
    ["cancelled", "cancelled"],
    ["canceled", "cancelled"],
    ["COMPLETED", "completed"],
    ["done", "unknown"],
    ["", "unknown"],
  ])("reads /status %j as %s", (raw, status) => {
    expect(toRequestStatus({ request_id: "r1", status: raw }, "r1")).toEqual({
      requestId: "r1",
      status,
      raw,
    });
  });

  test("keeps the queue position, and the id asked for when the answer has none", () => {
    expect(toRequestStatus({ status: "in_queue", queue_position: 3 }, "r9")).toEqual({
      requestId: "r9",
      status: "in_queue",
      queuePosition: 3,
      raw: "in_queue",
    });
    expect(toRequestStatus("not an object", "r9").status).toBe("unknown");
  });
});

describe("toRequestResult", () => {
  test("keeps the output only of a succeeded request", () => {
    expect(toRequestResult({ status: "succeeded", output: { video: "v" } }, "r").output).toEqual({
      video: "v",
    });
    expect(toRequestResult({ status: "failed", output: { video: "v" } }, "r").output).toBeUndefined();
  });

  test("reads the error as a string or as {message}", () => {
    expect(toRequestResult({ status: "failed", error: "boom" }, "r").error).toBe("boom");
    expect(toRequestResult({ status: "failed", error: { message: "bang" } }, "r").error).toBe("bang");
  });

  test("never reads an unknown word as success", () => {
    expect(toRequestResult({ status: "ok", output: { video: "v" } }, "r")).toEqual({
      requestId: "r",
      status: "unknown",
    });
  });

  test("measures the server's duration from created_at and finished_at", () => {
    const result = toRequestResult(
      {
        status: "succeeded",
        created_at: "2025-01-01T00:00:00.000Z",
        finished_at: "2025-01-01T00:00:02.500Z",
      },
      "r",
    );
    expect(serverDurationMs(result)).toBe(2_500);
    expect(serverDurationMs(toRequestResult({ status: "in_progress" }, "r"))).toBeUndefined();
  });
});

describe("toCancelOutcome", () => {
  test("says cancelled only when the API says so", () => {
    expect(toCancelOutcome({ status: "cancelled", outcome: "cancelled" }, "r").outcome).toBe("cancelled");
    expect(toCancelOutcome({ status: "in_progress", outcome: "not_cancellable" }, "r").outcome).toBe(
      "not_cancellable",
    );
    expect(toCancelOutcome({}, "r").outcome).toBe("not_cancellable");
  });
});

describe("catalog paging", () => {
  const current = new URL("https://api.example/v1/models?include_schema=true");

  test("follows next_page given as a URL or as a page number", () => {
    expect(nextCatalogPage({ next_page: "/v1/models?page=2" }, current, 1)?.href).toBe(
      "https://api.example/v1/models?page=2",
    );
    expect(nextCatalogPage({ next_page: 2 }, current, 1)?.href).toBe(
      "https://api.example/v1/models?include_schema=true&page=2",
    );
  });

  test("follows next_cursor or cursor", () => {
    expect(nextCatalogPage({ next_cursor: "abc" }, current, 1)?.searchParams.get("cursor")).toBe("abc");
    expect(nextCatalogPage({ cursor: "def" }, current, 1)?.searchParams.get("cursor")).toBe("def");
  });

  test("follows page/total_pages until the last page", () => {
    expect(nextCatalogPage({ page: 1, total_pages: 3 }, current, 1)?.searchParams.get("page")).toBe("2");
    expect(nextCatalogPage({ page: 3, total_pages: 3 }, current, 1)).toBeUndefined();
  });

  test("follows offset/limit/total until every entry was seen", () => {
    const next = nextCatalogPage({ total: 5, offset: 0, limit: 2 }, current, 2);
    expect(next?.searchParams.get("offset")).toBe("2");
    expect(next?.searchParams.get("limit")).toBe("2");
    expect(nextCatalogPage({ total: 5, offset: 4, limit: 2 }, current, 1)).toBeUndefined();
  });

  test("stops when a page has no paging fields or no entries", () => {
    expect(nextCatalogPage({ models: [] }, current, 0)).toBeUndefined();
    expect(nextCatalogPage({ next_cursor: "x" }, current, 0)).toBeUndefined();
    expect(nextCatalogPage({}, current, 3)).toBeUndefined();
  });

  test("takes entries with a model_id from models, data or items", () => {
    const entry = { model_id: "a/b", input_schema: { type: "object", properties: {} } };
    expect(catalogEntries({ models: [entry, { name: "no id" }, 7] })).toEqual([entry]);
    expect(catalogEntries({ data: [entry] })).toEqual([entry]);
    expect(catalogEntries([entry])).toEqual([entry]);
    expect(catalogEntries({ models: "nope" })).toEqual([]);
  });
});
