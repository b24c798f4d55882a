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
  test("steps added slice by slice: each slice's ready steps are handed over, later slices' chains work alike", () => {
    const graph = new RunGraph([step("a/still"), step("a/clip", "a/still")]);
    expect(graph.takeInitiallyReady()).toEqual(["a/still"]);
    graph.add([step("b/still"), step("b/clip", "b/still")]);
    expect(graph.takeInitiallyReady()).toEqual(["b/still"]);
    expect(graph.succeeded("b/still")).toEqual(["b/clip"]);
    expect(graph.failed("a/still")).toEqual(["a/clip"]);
    // A failure in one slice blocks nothing of another.
    expect(graph.succeeded("b/clip")).toEqual([]);
  });

  test("a step that waits for one failed and one succeeded dependency is blocked, whichever ends first", () => {
    const first = new RunGraph([step("x"), step("y"), step("z", "x", "y")]);
    expect(first.succeeded("x")).toEqual([]);
    expect(first.failed("y")).toEqual(["z"]);
    const second = new RunGraph([step("x"), step("y"), step("z", "x", "y")]);
    expect(second.failed("y")).toEqual(["z"]);
    expect(second.succeeded("x")).toEqual([]);
  });
  test("a blocked step stays blocked even if the step that blocked it is later told to have succeeded", () => {
    // The executor reports each ending once; should a crash handler report a second one,
    // a step already blocked (and cancelled in the store) must not start.
    const graph = new RunGraph([step("x"), step("z", "x")]);
    expect(graph.failed("x")).toEqual(["z"]);
    expect(graph.succeeded("x")).toEqual([]);
  });
});
