/**
 * The in-process job loop of the embedded default (DESIGN §9: "jobs: in-process timers"), used by
 * the workers that pull pipeline rows — the IA's revocation worker, the expiry-notice run. Runs
 * `run` now, then `intervalMs` after each run ends (never two runs at once); a run's rejection goes
 * to `onError` and the loop goes on. `stop()` ends the loop and resolves once a run in progress
 * has finished.
 */
export function startPollLoop(run: () => Promise<void>, intervalMs: number, onError?: (e: unknown) => void): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = run().catch((e: unknown) => onError?.(e));
    void running.then(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
