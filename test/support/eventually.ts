/**
 * The one polling helper of the tests: waits until `check` holds, for tests that wait on
 * something observable (a message, a state, a metric) rather than sleeping a fixed time.
 */

export interface EventuallyOptions {
  /** Give up after this long; 5 s by default. */
  readonly timeoutMs?: number;
  /** Check again after this pause; 10 ms by default. */
  readonly everyMs?: number;
}

/**
 * Resolves once `check` returns (or resolves to) true. A check that throws or rejects counts
 * as false; the timeout error names `what` and the timeout, and the last error thrown, if
 * the last check threw.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  options: EventuallyOptions = {},
): Promise<void> {
  const { timeoutMs = 5000, everyMs = 10 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      if (await check()) return;
    } catch (err) {
      failure = err;
    }
    if (Date.now() > deadline) {
      const cause =
        failure === undefined
          ? ''
          : ` (the check threw: ${failure instanceof Error ? failure.message : JSON.stringify(failure)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
