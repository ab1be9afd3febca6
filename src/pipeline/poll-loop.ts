/**
 * The in-process job loop of the embedded default (DESIGN §9: "jobs: in-process timers"), used by
 * the workers that pull pipeline rows — the IA's revocation worker, the expiry-notice run. Runs
 * `run` now, then `intervalMs` after each run ends (never two runs at once); a run's rejection goes
 * to `onError` and the loop goes on. `wake()` starts the next run at once (or right after the
 * run in progress) instead of waiting for the interval. `stop()` ends the loop and resolves once a
 * run in progress has finished.
 */
export function startPollLoop(run: () => Promise<void>, intervalMs: number, onError?: (e: unknown) => void): { stop(): Promise<void>; wake(): void } {
  let stopped = false;
  let busy = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    timer = undefined;
    busy = true;
    running = run().catch((e: unknown) => onError?.(e));
    void running.then(() => {
      busy = false;
      if (stopped) return;
      const now = again;
      again = false;
      timer = setTimeout(tick, now ? 0 : intervalMs);
    });
  };
  tick();
  return {
    wake() {
      if (stopped) return;
      if (busy) {
        again = true;
        return;
      }
      if (timer) clearTimeout(timer);
      tick();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
