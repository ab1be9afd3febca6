/**
 * IssuanceJobRunner on a real IA context (SoftHSM, database of the run): one job at a time even
 * when two starts arrive in the same tick, idle() waits for the running job, the job's input is
 * validated with Japanese messages, and worker errors get a Japanese explanation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explainIssuanceFailureJa, IssuanceJobRunner, parseJobStart } from "../../src/ia/issuance-jobs.ts";
import { ConflictError, ValidationError } from "../../src/pipeline/errors.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { createTestOperator } from "../helpers/operators.ts";

let t: TestIa;

beforeAll(async () => {
  t = await openTestIa("ia-jobs");
});
afterAll(async () => t?.cleanup());

describe("IssuanceJobRunner", () => {
  it("runs one job at a time, even for two starts in the same tick, and forgets nothing it ran", async () => {
    const op = (await createTestOperator(t.ctx.db, "ia_operator")).operator;
    const runner = new IssuanceJobRunner(t.ctx, { keep: 2 });
    const results = await Promise.allSettled([runner.start(op, 5), runner.start(op, 5)]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const refused = (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused.messageJa).toContain("実行中");
    await runner.idle();
    const job = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<IssuanceJobRunner["start"]>>>).value;
    expect(runner.get(job.id)).toMatchObject({ state: "finished", done: 0, total: 0, issued: [], failed: [], error: null });
    expect(runner.current()).toBeNull();
    // Finished jobs beyond `keep` are forgotten, oldest first.
    const more = [];
    for (let i = 0; i < 3; i++) {
      more.push(await runner.start(op, 1));
      await runner.idle();
    }
    expect(runner.recent().map((j) => j.id)).toEqual([more[2].id, more[1].id]);
  });

  it("validates the limit", () => {
    expect(parseJobStart({})).toEqual({ limit: 50 });
    expect(parseJobStart({ limit: "" })).toEqual({ limit: 50 });
    expect(parseJobStart({ limit: "7" })).toEqual({ limit: 7 });
    for (const limit of [0, 501, 2.5, "many"]) {
      const e = (() => {
        try {
          parseJobStart({ limit });
        } catch (x) {
          return x;
        }
      })() as ValidationError;
      expect(e, String(limit)).toBeInstanceOf(ValidationError);
      expect(e.issues[0].field).toBe("limit");
      expect(e.issues[0].messageJa).toMatch(/[ぁ-んァ-ン一-龯]/);
    }
  });

  it("explains worker errors in Japanese", () => {
    expect(explainIssuanceFailureJa("invalid subject: hcRole: unknown hcRole \"Wizard\"; name.latin: is required and must not be empty"))
      .toMatch(/資格（hcRole）、氏名（ローマ字）/);
    expect(explainIssuanceFailureJa('card "card-0011": PIN incorrect (CKR_PIN_INCORRECT)')).toContain("カード");
    expect(explainIssuanceFailureJa('CA key "demo-sign" of demo-sign-ca is not in the HSM')).toContain("HSM");
    expect(explainIssuanceFailureJa("something else entirely")).toContain("再発行");
  });
});
