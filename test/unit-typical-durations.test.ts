/**
 * TypicalDurations (src/engine/typical-durations.ts): each model's typical request duration,
 * a moving average of what the server measured, seeded from earlier runs, and told to the
 * views only when it is first known or moved by a tenth.
 */
import { describe, expect, test } from "vitest";
import { TypicalDurations } from "../src/engine/typical-durations.js";

function withReports(alpha?: number) {
  const reports: [string, number][] = [];
  const typical = new TypicalDurations(alpha, (model, ms) => reports.push([model, ms]));
  return { typical, reports };
}

describe("TypicalDurations", () => {
  test("unknown until a request of the model finished; the first one is taken as it is", () => {
    const typical = new TypicalDurations();
    expect(typical.get("hailuo")).toBeUndefined();
    typical.observe("hailuo", 40_000);
    expect(typical.get("hailuo")).toBe(40_000);
    expect(typical.get("aleph")).toBeUndefined();
  });

  test("later requests move it by alpha (0.3 by default) of their difference: recent ones count more", () => {
    const typical = new TypicalDurations();
    typical.observe("hailuo", 10_000);
    typical.observe("hailuo", 20_000);
    expect(typical.get("hailuo")).toBe(13_000);
    typical.observe("hailuo", 20_000);
    expect(typical.get("hailuo")).toBe(15_100);
    // One outlier does not dominate.
    typical.observe("hailuo", 1_000_000);
    expect(typical.get("hailuo")).toBe(310_570);
  });

  test("a custom alpha is used, and the value read is rounded to whole milliseconds", () => {
    const typical = new TypicalDurations(0.5);
    typical.observe("m", 1_000);
    typical.observe("m", 1_001);
    expect(typical.get("m")).toBe(1_001); // 1000.5 rounded
    typical.observe("m", 1_000);
    expect(typical.get("m")).toBe(1_000); // 1000.25
  });

  test("models are learned apart", () => {
    const typical = new TypicalDurations();
    typical.observe("hailuo", 40_000);
    typical.observe("aleph", 90_000);
    typical.observe("aleph", 100_000);
    expect(typical.get("hailuo")).toBe(40_000);
    expect(typical.get("aleph")).toBe(93_000);
  });

  test.each([
    ["unreported", undefined],
    ["negative", -5],
    ["not a number", Number.NaN],
    ["infinite", Number.POSITIVE_INFINITY],
  ])("a duration that is %s is ignored", (_what, duration) => {
    const { typical, reports } = withReports();
    typical.observe("m", 2_000);
    typical.observe("m", duration);
    expect(typical.get("m")).toBe(2_000);
    expect(reports).toEqual([["m", 2_000]]);
  });

  test("a zero duration counts (a request that finished at once)", () => {
    const typical = new TypicalDurations();
    typical.observe("m", 1_000);
    typical.observe("m", 0);
    expect(typical.get("m")).toBe(700);
  });

  test("a seed from earlier runs starts the model, but never overrides what this run has seen", () => {
    const typical = new TypicalDurations();
    typical.seed("hailuo", { ms: 30_000 });
    expect(typical.get("hailuo")).toBe(30_000);
    typical.seed("hailuo", { ms: 99_000 });
    expect(typical.get("hailuo")).toBe(30_000);

    typical.observe("aleph", 50_000);
    typical.seed("aleph", { ms: 10_000 });
    expect(typical.get("aleph")).toBe(50_000);

    typical.seed("new", undefined);
    expect(typical.get("new")).toBeUndefined();
  });

  test("a seeded value is averaged with the first requests like one observed", () => {
    const typical = new TypicalDurations();
    typical.seed("hailuo", { ms: 10_000 });
    typical.observe("hailuo", 20_000);
    expect(typical.get("hailuo")).toBe(13_000);
  });

  test("the spread: unknown from one duration, then how far each falls from the average before it (RFC 6298)", () => {
    const typical = new TypicalDurations();
    typical.observe("hailuo", 2_000);
    expect(typical.spread("hailuo")).toBeUndefined();
    typical.observe("hailuo", 2_200); // 200 from 2,000; the average moves to 2,060
    expect(typical.spread("hailuo")).toBe(200);
    typical.observe("hailuo", 2_060); // 0 from 2,060: the spread moves a quarter of the way
    expect(typical.spread("hailuo")).toBe(150);
    expect(typical.spread("aleph")).toBeUndefined();
    // Each request's guide reads it as it is now.
    expect(typical.guide("hailuo").spreadMs?.()).toBe(150);
  });

  test("durations that never vary have a spread of 0; a seed counts as the average the first one falls from", () => {
    const typical = new TypicalDurations();
    for (let i = 0; i < 5; i++) typical.observe("hailuo", 2_000);
    expect(typical.spread("hailuo")).toBe(0);
    typical.seed("aleph", { ms: 60_000 });
    typical.observe("aleph", 64_000);
    expect(typical.spread("aleph")).toBe(4_000);
  });

  test("a seed's spread (earlier runs') is the model's until this run's durations move it", () => {
    const typical = new TypicalDurations();
    typical.seed("hailuo", { ms: 2_000, spreadMs: 200 });
    expect(typical.get("hailuo")).toBe(2_000);
    expect(typical.spread("hailuo")).toBe(200);
    expect(typical.guide("hailuo").spreadMs?.()).toBe(200);
    typical.observe("hailuo", 2_000);
    expect(typical.spread("hailuo")).toBe(150);
    // A seed never overrides what this run has seen.
    typical.seed("hailuo", { ms: 9_000, spreadMs: 9_000 });
    expect(typical.spread("hailuo")).toBe(150);
  });

  test("a scout's look is no duration: its replacement by the result leaves the spread unknown", () => {
    const typical = new TypicalDurations();
    const scout = typical.guide("hailuo");
    expect(scout.guessing()).toBe(true);
    scout.finished(3_500);
    typical.observe("hailuo", 2_100);
    expect(typical.spread("hailuo")).toBeUndefined();
    typical.observe("hailuo", 2_000);
    expect(typical.spread("hailuo")).toBe(100);
  });

  test("tells the views when a model's duration is first known, then only when it moved by a tenth or more", () => {
    const { typical, reports } = withReports();
    typical.observe("hailuo", 10_000);
    expect(reports).toEqual([["hailuo", 10_000]]);
    // 10,000 → 10,300: 3 %, not told.
    typical.observe("hailuo", 11_000);
    expect(reports).toHaveLength(1);
    // Small moves add up: 10,300 → 10,810 → 11,167 (11.7 % from the 10,000 told).
    typical.observe("hailuo", 12_000);
    expect(reports).toHaveLength(1);
    typical.observe("hailuo", 12_000);
    expect(reports).toEqual([
      ["hailuo", 10_000],
      ["hailuo", 11_167],
    ]);
    // Downwards too, measured from the last value told.
    typical.observe("hailuo", 5_000);
    expect(reports.at(-1)).toEqual(["hailuo", 9_317]);
  });

  test("each model's reports are its own; a seed is told like a first observation", () => {
    const { typical, reports } = withReports();
    typical.seed("aleph", { ms: 60_000 });
    typical.observe("hailuo", 1_000);
    typical.observe("aleph", 61_000);
    expect(reports).toEqual([
      ["aleph", 60_000],
      ["hailuo", 1_000],
    ]);
  });

  test("from zero, a move of a tenth of a millisecond is told (the tenth is of at least 1 ms)", () => {
    const { typical, reports } = withReports(1);
    typical.observe("m", 0);
    typical.observe("m", 0.05);
    expect(reports).toEqual([["m", 0]]);
    typical.observe("m", 0.6);
    expect(reports).toEqual([
      ["m", 0],
      ["m", 1],
    ]);
  });
});

describe("TypicalDurations.guide: who guesses while a model's duration is unknown", () => {
  test("the first request to ask guesses; the others wait for what it learns", () => {
    const typical = new TypicalDurations();
    const first = typical.guide("hailuo");
    const second = typical.guide("hailuo");
    expect(first.guessing()).toBe(true);
    expect(second.guessing()).toBe(false);
    // Another model has a scout of its own.
    expect(typical.guide("aleph").guessing()).toBe(true);
  });

  test("learning the first duration wakes the waits planned without it, and only once", () => {
    const typical = new TypicalDurations();
    const waiting = typical.guide("hailuo");
    const changed = waiting.changed();
    expect(changed.aborted).toBe(false);
    typical.observe("hailuo", 2_000);
    expect(changed.aborted).toBe(true);
    expect(waiting.typicalMs()).toBe(2_000);
    const later = waiting.changed();
    typical.observe("hailuo", 2_500);
    expect(later.aborted).toBe(false);
  });

  test("the scout seen finished gives the others its elapsed time at once, until its result gives the exact duration", () => {
    const { typical, reports } = withReports();
    const scout = typical.guide("hailuo");
    const other = typical.guide("hailuo");
    expect(scout.guessing()).toBe(true);
    expect(other.guessing()).toBe(false);
    const changed = other.changed();
    other.finished(2_600); // not the scout: its long wait says nothing of the duration
    expect(changed.aborted).toBe(false);
    expect(other.typicalMs()).toBeUndefined();

    scout.finished(2_004);
    expect(changed.aborted).toBe(true);
    expect(other.typicalMs()).toBe(2_004);
    expect(other.provisional?.()).toBe(true);
    // A view hears only the measured duration.
    expect(reports).toEqual([]);

    // The result's duration replaces the look's, not averaged with it, and wakes the waits planned on it.
    const replan = other.changed();
    typical.observe("hailuo", 2_000);
    expect(replan.aborted).toBe(true);
    expect(other.typicalMs()).toBe(2_000);
    expect(other.provisional?.()).toBe(false);
    expect(reports).toEqual([["hailuo", 2_000]]);
    // Known: nobody's look is taken for it any more.
    scout.finished(9_000);
    expect(other.typicalMs()).toBe(2_000);
  });

  test("a result without the server's times keeps the scout's look as the duration", () => {
    const typical = new TypicalDurations();
    const scout = typical.guide("hailuo");
    expect(scout.guessing()).toBe(true);
    scout.finished(2_004);
    typical.observe("hailuo", undefined);
    expect(scout.typicalMs()).toBe(2_004);
    expect(scout.provisional?.()).toBe(false);
  });

  test("a scout whose watch ends without a duration hands over: a waiting request guesses next", () => {
    const typical = new TypicalDurations();
    const scout = typical.guide("hailuo");
    const other = typical.guide("hailuo");
    expect(scout.guessing()).toBe(true);
    expect(other.guessing()).toBe(false);
    const changed = other.changed();
    other.done(); // not the scout: nothing changes
    expect(changed.aborted).toBe(false);
    scout.done();
    expect(changed.aborted).toBe(true);
    expect(other.guessing()).toBe(true);
  });
});
