/** The per-source token bucket of live OCSP signing (src/repo/live-limit.ts), on an injected clock. */
import { describe, expect, it } from "vitest";
import { LiveSigningLimit, sourceKey } from "../../src/repo/live-limit.ts";

describe("LiveSigningLimit", () => {
  it("allows a burst, then perSecond, per source", () => {
    let now = 0;
    const limit = new LiveSigningLimit({ perSecond: 2, burst: 3, nowMs: () => now });
    expect([1, 2, 3, 4].map(() => limit.take("192.0.2.1"))).toEqual([true, true, true, false]);
    expect(limit.take("192.0.2.2")).toBe(true);
    now = 499;
    expect(limit.take("192.0.2.1")).toBe(false);
    now = 500;
    expect(limit.take("192.0.2.1")).toBe(true);
    expect(limit.take("192.0.2.1")).toBe(false);
    now = 60_000;
    expect([1, 2, 3, 4].map(() => limit.take("192.0.2.1"))).toEqual([true, true, true, false]);
  });

  it("sweeps idle sources when full, keeping busy ones", () => {
    let now = 0;
    const limit = new LiveSigningLimit({ perSecond: 1, burst: 1, maxSources: 2, nowMs: () => now });
    expect(limit.take("192.0.2.1")).toBe(true);
    now = 5_000;
    expect(limit.take("192.0.2.2")).toBe(true);
    expect(limit.take("192.0.2.3")).toBe(true); // sweeps .1 (idle), keeps .2
    expect(limit.take("192.0.2.2")).toBe(false);
  });
});

describe("sourceKey", () => {
  it("IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64", () => {
    expect(sourceKey("192.0.2.7")).toBe("192.0.2.7");
    expect(sourceKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(sourceKey("2001:db8:1:2::99")).toBe("2001:db8:1:2::/64");
    expect(sourceKey("2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(sourceKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(sourceKey("::1")).toBe("0:0:0:0::/64");
    expect(sourceKey(undefined)).toBe("?");
  });
});
