/**
 * ReadyLanes (src/engine/ready-lanes.ts): which ready step starts next. Each lane holds at
 * most its capacity of active steps, lanes take turns, remote lanes share one window of API
 * steps that local lanes do not count against, and a stopped run drains what never started.
 */
import { describe, expect, test } from "vitest";
import { ReadyLanes } from "../src/engine/ready-lanes.js";

type Capacities = Record<string, { capacity: number; remote: boolean }>;

function lanesOf(remoteWindow: number, capacities: Capacities): ReadyLanes {
  return new ReadyLanes(remoteWindow, (lane) => {
    const found = capacities[lane];
    if (!found) throw new Error(`no capacity for lane ${lane}`);
    return found;
  });
}

/** Takes until nothing may start; the addresses in the order taken. */
function takeAll(lanes: ReadyLanes): string[] {
  const taken: string[] = [];
  for (let next = lanes.take(); next !== undefined; next = lanes.take()) taken.push(next.address);
  return taken;
}

describe("ReadyLanes", () => {
  test("an empty set of lanes has nothing to start", () => {
    const lanes = lanesOf(4, {});
    expect(lanes.take()).toBeUndefined();
    expect(lanes.waiting).toBe(0);
    expect(lanes.drain()).toEqual([]);
  });

  test("a lane starts at most its capacity; a finished step lets the next one start, in the order added", () => {
    const lanes = lanesOf(100, { hailuo: { capacity: 2, remote: true } });
    for (const address of ["a", "b", "c", "d"]) lanes.add("hailuo", address);
    expect(lanes.waiting).toBe(4);

    expect(takeAll(lanes)).toEqual(["a", "b"]);
    expect(lanes.waiting).toBe(2);

    lanes.finished("hailuo");
    expect(lanes.take()).toEqual({ lane: "hailuo", address: "c" });
    expect(lanes.take()).toBeUndefined();
    lanes.finished("hailuo");
    lanes.finished("hailuo");
    expect(takeAll(lanes)).toEqual(["d"]);
    expect(lanes.waiting).toBe(0);
  });

  test("a lane at its capacity does not keep the other lanes from starting", () => {
    const lanes = lanesOf(100, {
      aleph: { capacity: 1, remote: true },
      hailuo: { capacity: 3, remote: true },
    });
    for (const address of ["a1", "a2", "a3"]) lanes.add("aleph", address);
    for (const address of ["h1", "h2", "h3"]) lanes.add("hailuo", address);
    expect(takeAll(lanes).sort()).toEqual(["a1", "h1", "h2", "h3"]);
    expect(lanes.waiting).toBe(2);
  });

  test("lanes take turns: a lane added to first does not start all of its steps before the others", () => {
    const lanes = lanesOf(100, {
      a: { capacity: 10, remote: true },
      b: { capacity: 10, remote: true },
      c: { capacity: 10, remote: false },
    });
    for (let i = 1; i <= 3; i++) lanes.add("a", `a${i}`);
    for (let i = 1; i <= 3; i++) lanes.add("b", `b${i}`);
    lanes.add("c", "c1");
    expect(takeAll(lanes)).toEqual(["a1", "b1", "c1", "a2", "b2", "a3", "b3"]);
  });

  test("the turn goes on from the lane after the last one served, not from the first lane", () => {
    const lanes = lanesOf(100, { a: { capacity: 10, remote: true }, b: { capacity: 10, remote: true } });
    lanes.add("a", "a1");
    lanes.add("b", "b1");
    expect(lanes.take()?.address).toBe("a1");
    lanes.add("a", "a2");
    // b's turn: a, just served, waits.
    expect(lanes.take()?.address).toBe("b1");
    expect(lanes.take()?.address).toBe("a2");
  });

  test("remote lanes share one window of API steps; local lanes do not count against it", () => {
    const lanes = lanesOf(3, {
      hailuo: { capacity: 10, remote: true },
      aleph: { capacity: 10, remote: true },
      run: { capacity: 2, remote: false },
    });
    for (let i = 1; i <= 4; i++) lanes.add("hailuo", `h${i}`);
    for (let i = 1; i <= 4; i++) lanes.add("aleph", `a${i}`);
    for (let i = 1; i <= 3; i++) lanes.add("run", `r${i}`);

    const first = takeAll(lanes);
    const remote = first.filter((address) => !address.startsWith("r"));
    const local = first.filter((address) => address.startsWith("r"));
    expect(remote).toHaveLength(3);
    expect(local).toEqual(["r1", "r2"]);

    // A local step ending frees no window slot.
    lanes.finished("run");
    expect(takeAll(lanes)).toEqual(["r3"]);

    // A remote step ending frees one, whichever remote lane takes it.
    lanes.finished("hailuo");
    expect(takeAll(lanes)).toHaveLength(1);
    expect(takeAll(lanes)).toEqual([]);
  });

  test("a remote lane's own capacity still holds inside the window", () => {
    const lanes = lanesOf(10, { hailuo: { capacity: 2, remote: true } });
    for (let i = 1; i <= 5; i++) lanes.add("hailuo", `h${i}`);
    expect(takeAll(lanes)).toEqual(["h1", "h2"]);
  });

  test("finished() on a lane never seen is ignored", () => {
    const lanes = lanesOf(1, { hailuo: { capacity: 1, remote: true } });
    lanes.add("hailuo", "h1");
    lanes.add("hailuo", "h2");
    expect(lanes.take()?.address).toBe("h1");
    lanes.finished("unknown-lane");
    expect(lanes.take()).toBeUndefined();
  });

  test("drain takes every waiting step whatever the capacities, lane by lane, and leaves none", () => {
    const lanes = lanesOf(1, {
      hailuo: { capacity: 1, remote: true },
      run: { capacity: 1, remote: false },
    });
    for (const address of ["h1", "h2", "h3"]) lanes.add("hailuo", address);
    for (const address of ["r1", "r2"]) lanes.add("run", address);
    expect(takeAll(lanes)).toEqual(["h1", "r1"]);

    expect(lanes.drain()).toEqual(["h2", "h3", "r2"]);
    expect(lanes.waiting).toBe(0);
    expect(lanes.drain()).toEqual([]);
    // The active ones still end normally; nothing is left to start.
    lanes.finished("hailuo");
    lanes.finished("run");
    expect(lanes.take()).toBeUndefined();
  });

  test("asks each lane's capacity once, when the lane is first used", () => {
    const asked: string[] = [];
    const lanes = new ReadyLanes(10, (lane) => {
      asked.push(lane);
      return { capacity: 5, remote: true };
    });
    lanes.add("a", "a1");
    lanes.add("a", "a2");
    lanes.add("b", "b1");
    takeAll(lanes);
    expect(asked).toEqual(["a", "b"]);
  });

  test("keeps the order of a long lane through its compaction (thousands added while others are taken)", () => {
    const lanes = lanesOf(1_000_000, { big: { capacity: 1_000_000, remote: true } });
    const taken: string[] = [];
    let added = 0;
    // Add two, take one, then take the rest: the queue compacts (past 1,024 taken) with thousands left.
    while (added < 6_000) {
      lanes.add("big", `s${added++}`);
      lanes.add("big", `s${added++}`);
      taken.push(lanes.take()!.address);
    }
    taken.push(...takeAll(lanes));
    expect(taken).toHaveLength(6_000);
    expect(taken).toEqual(Array.from({ length: 6_000 }, (_, i) => `s${i}`));
    expect(lanes.waiting).toBe(0);
  });
});
