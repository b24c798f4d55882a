/**
 * Barriers for tests of asynchronous code: a promise the test settles when it decides, and a
 * way to let every pending promise callback run. Tests order events with these, never with
 * a duration.
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/**
 * Resolves after every promise callback queued so far (and those they queue) has run: one
 * turn of the event loop, no timer. What could start has started when it resolves.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
