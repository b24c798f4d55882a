/** A fixed one-second window: simple, exact to test, and what "N requests per second" promises. */
export class RateLimiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;

  /** Counts a call; returns the seconds to wait when it is over `perSecond`, else undefined. */
  take(now: number, perSecond: number): number | undefined {
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.used = 0;
    }
    this.used++;
    if (this.used <= perSecond) return undefined;
    return Math.max(1, Math.ceil((this.windowStart + 1_000 - now) / 1_000));
  }

  reset(): void {
    this.windowStart = Number.NEGATIVE_INFINITY;
    this.used = 0;
  }
}
