/**
 * RunGraph, the pure bookkeeping of which steps may start: plan order for the first ones, a
 * step ready once all it depends on succeeded, everything downstream of a failure blocked.
 */
import { describe, expect, test } from "vitest";
import { RunGraph } from "../src/engine/run-graph.js";

const step = (address: string, ...dependsOn: string[]) => ({ address, dependsOn });

describe("RunGraph", () => {
  test("hands over the steps that wait for nothing, in plan order, once", () => {
    const graph = new RunGraph([step("a"), step("b", "a"), step("c"), step("d", "outside/x")]);
    // A dependency outside the run (narrowed by --only or retry) already succeeded.
    expect(graph.takeInitiallyReady()).toEqual(["a", "c", "d"]);
    expect(graph.takeInitiallyReady()).toEqual([]);
  });

  test("a step is ready when the last of its dependencies succeeds", () => {
    const graph = new RunGraph([step("still"), step("clip"), step("edit", "still", "clip")]);
    expect(graph.succeeded("still")).toEqual([]);
    expect(graph.succeeded("clip")).toEqual(["edit"]);
    expect(graph.succeeded("edit")).toEqual([]);
  });

  test("a failure blocks everything downstream, and a blocked step never becomes ready", () => {
    const graph = new RunGraph([
      step("still"),
      step("other"),
      step("clip", "still"),
      step("restyle", "clip"),
      step("frame", "restyle", "other"),
    ]);
    expect(graph.failed("still").sort()).toEqual(["clip", "frame", "restyle"]);
    expect(graph.succeeded("other")).toEqual([]);
  });

  test("blocks a step reached by two paths once", () => {
    const graph = new RunGraph([step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")]);
    expect(graph.failed("a").sort()).toEqual(["b", "c", "d"]);
  });
});
