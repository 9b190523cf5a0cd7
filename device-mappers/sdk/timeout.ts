export class TimeoutError extends Error {}

/**
 * Resolves as `work` does, or rejects with TimeoutError after `ms`. A device that stops
 * answering must not freeze its worker; if the work completes after all, `late` gets its
 * result (to close a connection nobody holds anymore).
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string, late?: (result: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new TimeoutError(`${what} took longer than ${ms} ms`));
    }, ms);
    work.then(
      (result) => {
        clearTimeout(timer);
        if (timedOut) late?.(result);
        else resolve(result);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string') return err.message;
  return String(err);
}
