/**
 * Which steps may start: a step starts when every step it depends on has succeeded (or was
 * reused); when one of them ends otherwise, the step and everything downstream of it is
 * blocked. Pure bookkeeping over addresses; the executor decides what starting means.
 */
export class RunGraph {
  /** Steps waiting for others: how many of their dependencies have not succeeded yet. */
  readonly #remaining = new Map<string, number>();
  readonly #dependents = new Map<string, string[]>();
  /** Settled steps that other steps depend on or wait for; independent steps need no record. */
  readonly #settled = new Set<string>();
  #initiallyReady: string[] = [];

  constructor(steps: readonly { address: string; dependsOn: readonly string[] }[] = []) {
    this.add(steps);
  }

  /** More steps of the run; a step comes with the steps it depends on (a job instance is never split). */
  add(steps: readonly { address: string; dependsOn: readonly string[] }[]): void {
    const known = new Set(steps.map((s) => s.address));
    for (const step of steps) {
      // A dependency outside this run (narrowed by --only or retry) counts as satisfied:
      // the planner only leaves one out when it already succeeded.
      const inRun = step.dependsOn.filter((d) => known.has(d));
      if (inRun.length === 0) {
        this.#initiallyReady.push(step.address);
        continue;
      }
      this.#remaining.set(step.address, inRun.length);
      for (const dependency of inRun) {
        const list = this.#dependents.get(dependency);
        if (list) list.push(step.address);
        else this.#dependents.set(dependency, [step.address]);
      }
    }
  }

  /** Steps added with nothing to wait for, in the order added. Each is handed over once: the graph keeps no copy. */
  takeInitiallyReady(): string[] {
    const ready = this.#initiallyReady;
    this.#initiallyReady = [];
    return ready;
  }

  /** Records that `address` succeeded; returns the steps that became ready because of it. */
  succeeded(address: string): string[] {
    this.#settle(address);
    const ready: string[] = [];
    for (const dependent of this.#dependents.get(address) ?? []) {
      const left = (this.#remaining.get(dependent) ?? 0) - 1;
      this.#remaining.set(dependent, left);
      if (left === 0 && !this.#settled.has(dependent)) ready.push(dependent);
    }
    return ready;
  }

  /** Records that `address` ended without success; returns every step downstream, now blocked. */
  failed(address: string): string[] {
    this.#settle(address);
    const blocked: string[] = [];
    const stack = [...(this.#dependents.get(address) ?? [])];
    while (stack.length > 0) {
      const next = stack.pop() as string;
      if (this.#settled.has(next)) continue;
      this.#settled.add(next);
      blocked.push(next);
      stack.push(...(this.#dependents.get(next) ?? []));
    }
    return blocked;
  }

  #settle(address: string): void {
    if (this.#dependents.has(address) || this.#remaining.has(address)) this.#settled.add(address);
  }
}
