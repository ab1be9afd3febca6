/**
 * Waiting for a condition instead of sleeping a fixed time (busy 2-core machine): polls `cond`
 * every `intervalMs` until it holds; fails only after a generous `timeoutMs` (default 2 minutes),
 * naming `what`.
 */
export async function waitFor(cond: () => Promise<boolean> | boolean, what = "condition", o: { timeoutMs?: number; intervalMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 100));
  }
}
