import { isIPv4 } from "node:net";
import os from "node:os";
import { describe, expect, test } from "vitest";
import {
  checkMediaUrl,
  evaluateMediaRules,
  factsNeededBy,
  formatInputIssue,
  isLoopbackHost,
  loadModelRegistry,
  mediaRulesOf,
  requireModel,
  type MediaValidation,
} from "../src/models/index.js";

const registry = loadModelRegistry({ cwd: os.tmpdir() });
const hailuoRules =
  mediaRulesOf(requireModel(registry, "minimax/Hailuo Video 01 Live")).get("image_url") ?? [];
const alephRules = mediaRulesOf(requireModel(registry, "runwayml/runway-aleph/video-to-video"));
const videoRules = alephRules.get("video_url") ?? [];

const URL_ = "https://cdn.example.com/media";
const PIXELS = "The uploaded image width and height must both exceed 300 pixels.";
const ASPECT = "The aspect ratio range should be 2:5 to 5:2.";
const SIZE = "File size must be less than 16 MB.";

function image(width: number, height: number) {
  return evaluateMediaRules("image_url", hailuoRules, { url: URL_, width, height });
}

describe("mediaRulesOf", () => {
  test("finds the rules of each field that has them, and only those fields", () => {
    expect([...alephRules.keys()]).toEqual(["video_url", "image_url"]);
    expect(hailuoRules.map((rule) => rule.validation_rule)).toEqual([
      "width_pixels>",
      "height_pixels>",
      "width/height>",
      "width/height<",
    ]);
  });

  test("says which facts a probe must measure", () => {
    expect(factsNeededBy(videoRules)).toEqual({ size: true, dimensions: false });
    expect(factsNeededBy(hailuoRules)).toEqual({ size: false, dimensions: true });
  });
});

describe("pixel rules (Hailuo image_url)", () => {
  test("passes a 1280×720 image", () => {
    expect(image(1280, 720)).toEqual([]);
  });

  test("fails an image exactly 300 px wide, since the rule is strictly greater", () => {
    expect(image(300, 720)).toEqual([
      { field: "image_url", kind: "media", message: PIXELS, detail: "300×720 px" },
    ]);
    expect(image(301, 720)).toEqual([]);
  });

  test("reports a 200×200 image once, though both the width and the height rule fail", () => {
    expect(image(200, 200)).toEqual([
      { field: "image_url", kind: "media", message: PIXELS, detail: "200×200 px" },
    ]);
  });

  test("fails an aspect ratio of exactly 2:5 or 5:2, and passes just inside", () => {
    expect(image(400, 1000)).toEqual([
      { field: "image_url", kind: "media", message: ASPECT, detail: "400×1000 px" },
    ]);
    expect(image(1000, 400)).toEqual([
      { field: "image_url", kind: "media", message: ASPECT, detail: "1000×400 px" },
    ]);
    expect(image(401, 1000)).toEqual([]);
    expect(image(999, 400)).toEqual([]);
  });

  test("reports both messages when the size and the aspect ratio are wrong", () => {
    expect(image(100, 400).map((issue) => issue.message)).toEqual([PIXELS, ASPECT]);
  });
});

describe("size rule (Aleph video_url, < 16 MB)", () => {
  const size = (sizeBytes: number) => evaluateMediaRules("video_url", videoRules, { url: URL_, sizeBytes });

  test("reads MB as 1,000,000 bytes: 15,999,999 passes, 16,000,000 fails", () => {
    expect(size(15_999_999)).toEqual([]);
    expect(size(16_000_000)).toEqual([
      { field: "video_url", kind: "media", message: SIZE, detail: "16000000 bytes" },
    ]);
  });

  test("fails a file under 16 MiB but over 16 MB", () => {
    expect(size(16 * 1024 * 1024 - 1)).toHaveLength(1);
  });
});

describe("facts that could not be measured", () => {
  test("gives a media_unknown issue saying what could not be measured", () => {
    expect(evaluateMediaRules("video_url", videoRules, { url: URL_ })).toEqual([
      {
        field: "video_url",
        kind: "media_unknown",
        message:
          "input.video_url: could not measure the file size (the server sent no Content-Length or " +
          `Content-Range) of ${URL_}, which its rules need`,
      },
    ]);
  });

  test("reports unknown dimensions once for the four pixel rules, never as a pass", () => {
    const issues = evaluateMediaRules("image_url", hailuoRules, { url: URL_, sizeBytes: 10 });
    expect(issues.map((issue) => issue.kind)).toEqual(["media_unknown"]);
    expect(issues[0]?.message).toContain("could not measure the pixel dimensions");
  });

  test("does not divide by a zero height", () => {
    const rules: MediaValidation[] = [
      { validation_rule: "width/height<", validation_value: 2.5, validation_error: ASPECT },
    ];
    expect(evaluateMediaRules("image_url", rules, { url: URL_, width: 10, height: 0 })[0]?.kind).toBe(
      "media_unknown",
    );
  });
});

describe("checkMediaUrl", () => {
  test("accepts https anywhere and plain http on loopback only", () => {
    for (const url of [
      "https://cdn.example.com/a.png",
      "http://127.0.0.1:8787/a.png",
      "http://127.8.9.10/a.png",
      "http://localhost:3000/a.png",
      "http://[::1]:8787/a.png",
    ]) {
      expect(checkMediaUrl(url), url).toBeUndefined();
    }
  });

  test("refuses plain http off loopback, other schemes and non-URLs", () => {
    expect(checkMediaUrl("http://cdn.example.com/a.png")).toMatch(/plain http; media inputs must be https/);
    expect(checkMediaUrl("http://128.0.0.1/a.png")).toMatch(/plain http/);
    expect(checkMediaUrl("http://localhost.example.com/a.png")).toMatch(/plain http/);
    expect(checkMediaUrl("ftp://cdn.example.com/a.png")).toMatch(/is not an https URL/);
    expect(checkMediaUrl("file:///tmp/a.png")).toMatch(/is not an https URL/);
    expect(checkMediaUrl("./a.png")).toBe('"./a.png" is not a URL; media inputs must be public https URLs');
  });
});

describe("isLoopbackHost", () => {
  // It tells an IPv4 address by node:net's pattern without loading node:net (a CLI start
  // cost): the same verdict as node:net's own isIPv4 on each of these.
  test("127.0.0.0/8 as node:net reads an address, localhost and ::1", () => {
    const hosts = [
      "127.0.0.1",
      "127.255.255.255",
      "127.8.9.10",
      "127.0.0.256",
      "127.0.0.01",
      "127.0.0",
      "127.0.0.1.",
      "127.0.0.1.5",
      "127.1",
      "0127.0.0.1",
      "127.0.0.-1",
      "127.0.0.1x",
      "127.00.0.1",
      " 127.0.0.1",
      "127.0.0.1\n",
      "128.0.0.1",
      "1.127.0.0",
      "127.example.com",
      "127.0.0.1.nip.io",
      "localhost",
      "LOCALHOST",
      "[::1]",
      "::1",
      "[::ffff:127.0.0.1]",
      "localhost.example.com",
      "",
    ];
    for (const host of hosts) {
      const expected =
        host === "localhost" || host === "LOCALHOST" || host === "[::1]" || host === "::1"
          ? true
          : isIPv4(host) && host.startsWith("127.");
      expect({ host, loopback: isLoopbackHost(host) }).toEqual({ host, loopback: expected });
    }
    expect(hosts.filter((host) => isLoopbackHost(host))).toEqual([
      "127.0.0.1",
      "127.255.255.255",
      "127.8.9.10",
      "localhost",
      "LOCALHOST",
      "[::1]",
      "::1",
    ]);
  });
});

describe("formatInputIssue", () => {
  test("names the field and the measurement for a media issue in the schema's words", () => {
    const [issue] = image(200, 200);
    expect(issue && formatInputIssue(issue)).toBe(`input.image_url: ${PIXELS} (measured: 200×200 px)`);
  });

  test("leaves a message that already names its field alone", () => {
    expect(formatInputIssue({ field: "prompt", kind: "required", message: "input.prompt is required" })).toBe(
      "input.prompt is required",
    );
  });
});
