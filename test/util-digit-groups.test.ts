/**
 * groupDigits (src/util/digit-groups.ts) writes counts and dollars as `toLocaleString("en-US")`
 * does, without loading ICU's number formats at startup.
 */
import { expect, test } from "vitest";
import { groupDigits } from "../src/util/digit-groups.js";

test("groups thousands exactly as toLocaleString('en-US') does, for integers of every length", () => {
  const values = [0, 1, 9, 10, 99, 100, 999, 1_000, 1_001, 9_999, 10_000, 100_000, 999_999, 1_000_000];
  for (let power = 0; power <= 15; power++) values.push(10 ** power - 1, 10 ** power, 7 * 10 ** power + 3);
  for (const value of [...values, ...values.filter((v) => v !== 0).map((v) => -v)]) {
    expect(groupDigits(value)).toBe(value.toLocaleString("en-US"));
  }
});
