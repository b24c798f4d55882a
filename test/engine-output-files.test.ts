/**
 * Local names of output files: whatever the API's answer holds, a name is one safe path
 * segment, and no final path leaves its step's folder.
 */
import path from "node:path";
import { describe, expect, test } from "vitest";
import { filesByName, outputFilesOf, outputPath, safeSegment } from "../src/engine/output-files.js";

const URL = "https://files.example/out/video.mp4";

describe("outputFilesOf", () => {
  test("names outputs by the step (SPEC §5) when they do not collide", () => {
    const files = outputFilesOf("animate", { video: URL, images: [URL.replace(".mp4", ".png")] });
    expect(files.map((file) => file.fileName)).toEqual(["animate.mp4", "animate-1.png"]);
  });

  test("keys from the answer that would climb, be absolute or be empty become safe segments", () => {
    const output: Record<string, unknown> = {
      video: URL,
      "../../../../victim/app": "https://host.example/x/app.py",
      "/etc/cron.d/job": URL,
      "C:\\Windows\\evil": URL,
      "..": URL,
      "": URL,
      "a/b": URL,
      a_b: URL,
    };
    Object.defineProperty(output, "__proto__", { value: URL, enumerable: true });
    const names = outputFilesOf("animate", output).map((file) => file.fileName);
    expect(names).toEqual([
      "animate-video.mp4",
      "animate.py",
      "animate-etc_cron.d_job.mp4",
      "animate-C_Windows_evil.mp4",
      "animate-output.mp4",
      "animate-output-2.mp4",
      "animate-a_b.mp4",
      "animate-a_b-2.mp4",
      "animate-proto.mp4",
    ]);
    for (const name of names) expect(path.basename(name)).toBe(name);
  });

  test("only a short alphanumeric extension of the URL's path reaches the name", () => {
    const files = outputFilesOf("s", {
      video: "https://h.example/a/b.mp4/..%2F..%2Fx",
      image: "https://h.example/a/evil.p%2Fng",
    });
    expect(files.map((file) => file.fileName)).toEqual(["s.mp4", "s.png"]);
  });
});

describe("safeSegment", () => {
  test("keeps plain names and reduces anything else", () => {
    expect(safeSegment("video_2", "x")).toBe("video_2");
    expect(safeSegment("../..", "x")).toBe("x");
    expect(safeSegment("Ｖｉｄｅｏ", "x")).toBe("Video");
    expect(safeSegment("a\u0000b", "x")).toBe("a_b");
    expect(safeSegment("k".repeat(300), "x")).toHaveLength(64);
  });
});

describe("outputPath", () => {
  test("accepts a direct child of the folder and refuses anything else", () => {
    expect(outputPath("/work/out", "animate.mp4")).toBe("/work/out/animate.mp4");
    for (const name of ["../x.mp4", "a/b.mp4", "/tmp/x.mp4", "..", ".", ""]) {
      expect(() => outputPath("/work/out", name)).toThrow(/outside \/work\/out/);
    }
  });
});

describe("filesByName", () => {
  test("a key named __proto__ stays an own field", () => {
    const files = filesByName([{ name: "__proto__", index: undefined, path: "/o/a.mp4" }]);
    expect(Object.hasOwn(files, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(files)).toBe(Object.prototype);
  });
});
