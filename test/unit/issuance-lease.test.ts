/** Lease settings from the environment and the fault hook's production guard (issue 10 §2, §1). */
import { describe, expect, it } from "vitest";
import { faultPoint } from "../../src/ia/fault-hook.ts";
import { issuanceRequestKey } from "../../src/ia/card-personalisation.ts";
import { ISSUANCE_HEARTBEAT_MS, ISSUANCE_LEASE_MS, leaseSettingsFromEnv } from "../../src/pipeline/issuance-lease.ts";

describe("leaseSettingsFromEnv", () => {
  it("defaults to a 30 s lease renewed every 10 s", () => {
    expect(leaseSettingsFromEnv({})).toEqual({ leaseMs: ISSUANCE_LEASE_MS, heartbeatMs: ISSUANCE_HEARTBEAT_MS });
    expect(ISSUANCE_LEASE_MS).toBe(30_000);
  });
  it("takes seconds (fractions allowed) and defaults the heartbeat to at most a third of the lease", () => {
    expect(leaseSettingsFromEnv({ HPKI_IA_LEASE_SECONDS: "2" })).toEqual({ leaseMs: 2000, heartbeatMs: 2000 / 3 });
    expect(leaseSettingsFromEnv({ HPKI_IA_LEASE_SECONDS: "2", HPKI_IA_HEARTBEAT_SECONDS: "0.5" })).toEqual({ leaseMs: 2000, heartbeatMs: 500 });
  });
  it("refuses nonsense with a bilingual message", () => {
    expect(() => leaseSettingsFromEnv({ HPKI_IA_LEASE_SECONDS: "soon" })).toThrow(/positive number of seconds.*正の秒数/);
    expect(() => leaseSettingsFromEnv({ HPKI_IA_LEASE_SECONDS: "-1" })).toThrow(/HPKI_IA_LEASE_SECONDS/);
    expect(() => leaseSettingsFromEnv({ HPKI_IA_LEASE_SECONDS: "5", HPKI_IA_HEARTBEAT_SECONDS: "5" })).toThrow(/shorter than.*リース期間/);
  });
});

describe("faultPoint", () => {
  it("is ignored in production and for other points", async () => {
    await faultPoint("after-keygen", { NODE_ENV: "production", HPKI_FAULT: "after-keygen" });
    await faultPoint("after-keygen", { HPKI_FAULT: "after-sign" });
    await faultPoint("after-keygen", { HPKI_FAULT: "after-keygen:2", NODE_ENV: "production" });
    expect(process.exitCode ?? 0).toBe(0); // still alive
  });
});

describe("issuanceRequestKey", () => {
  it("keeps ir:<id>:<profile> on the first card and marks later cards", () => {
    expect(issuanceRequestKey(7, "sign", 0)).toBe("ir:7:sign");
    expect(issuanceRequestKey(7, "auth-person", 2)).toBe("ir:7:auth-person:g2");
  });
});
