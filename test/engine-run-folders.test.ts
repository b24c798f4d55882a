import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  inRunFolder,
  intoRunFolder,
  latestPathOf,
  runFolder,
  stableText,
} from "../src/engine/run-folders.js";

// A folder name with characters a regular expression would read: `+`, `(`, `$`, `.`.
const outputs = path.join(path.sep, "studio", "out (v2)+$1.x", "shot28");
const own = runFolder(outputs, "20260302-020000-9f3c");
const older = runFolder(outputs, "20260301-020000-ab12");

describe("run folders", () => {
  it("moves a path under the outputs folder into the run's folder, and leaves others alone", () => {
    expect(intoRunFolder(outputs, outputs, own)).toBe(own);
    expect(intoRunFolder(path.join(outputs, "sub", "poster.jpg"), outputs, own)).toBe(
      path.join(own, "sub", "poster.jpg"),
    );
    const outside = path.join(path.sep, "studio", "tools");
    expect(intoRunFolder(outside, outputs, own)).toBe(outside);
    expect(intoRunFolder(path.join(older, "a.mp4"), outputs, own)).toBe(path.join(older, "a.mp4"));
  });

  it("points text at another run's file of the instance to this run's copy, and reads any run's folder as the instance's for fingerprints", () => {
    const arg = `--in=${path.join(older, "restyle.mp4")}`;
    expect(inRunFolder(arg, outputs, own)).toBe(`--in=${path.join(own, "restyle.mp4")}`);
    expect(stableText(arg, outputs)).toBe(`--in=${path.join(outputs, "restyle.mp4")}`);
    expect(stableText(path.join(own, "restyle.mp4"), outputs)).toBe(stableText(arg.slice(5), outputs));
    // Another instance's run folder is not this instance's.
    const other = runFolder(path.join(path.sep, "studio", "out (v2)+$1.x", "shot29"), "20260301-020000-ab12");
    expect(inRunFolder(path.join(other, "a.mp4"), outputs, own)).toBe(path.join(other, "a.mp4"));
  });

  it("maps a run's file to its place in the latest view", () => {
    expect(latestPathOf(path.join(own, "animate.mp4"), outputs)).toBe(path.join(outputs, "animate.mp4"));
    expect(latestPathOf(path.join(own, "sub", "x.png"), outputs)).toBe(path.join(outputs, "sub", "x.png"));
    expect(latestPathOf(path.join(outputs, ".runs", "animate.latest.json"), outputs)).toBeUndefined();
    expect(latestPathOf(path.join(outputs, "animate.mp4"), outputs)).toBeUndefined();
  });
});
