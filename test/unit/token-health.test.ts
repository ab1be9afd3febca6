/** TokenHealth: ok → degraded → ok, one event per transition, reports for /healthz. */
import { describe, expect, it } from "vitest";
import { TokenHealth, type TokenTransition } from "../../src/hsm/health.ts";

describe("TokenHealth", () => {
  it("emits lost once for many failures and restored once on the next success", () => {
    const h = new TokenHealth("hpki-ca");
    const seen: TokenTransition[] = [];
    h.onTransition((t) => seen.push(t));
    h.onTransition(() => {
      throw new Error("a failing listener is ignored");
    });
    h.succeeded();
    expect(seen).toEqual([]);
    expect(h.report()).toMatchObject({ token: "hpki-ca", state: "ok" });
    h.failed("gone");
    h.failed("still gone");
    expect(h.degraded).toBe(true);
    expect(h.report()).toMatchObject({ state: "degraded", lastError: "still gone" });
    h.succeeded();
    h.succeeded();
    expect(seen.map((t) => [t.event, t.error])).toEqual([["lost", "gone"], ["restored", "still gone"]]);
    expect(seen[1].downMs).toBeGreaterThanOrEqual(0);
    expect(h.report()).toMatchObject({ state: "ok", lastError: "still gone" });
  });
});
