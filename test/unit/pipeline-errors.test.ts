import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, jaMessage, parseInput, validationErrorFromZod } from "../../src/pipeline/errors.ts";

describe("pipeline errors", () => {
  it("carry status, code and both languages", () => {
    expect(new ForbiddenError()).toMatchObject({ status: 403, code: "forbidden", messageJa: expect.stringContaining("権限") });
    expect(new NotFoundError()).toMatchObject({ status: 404 });
    expect(new ConflictError("already approved by another officer", "他の担当者が既に承認しています。")).toMatchObject({ status: 409, message: "already approved by another officer" });
    const v = new ValidationError([{ field: "a", message: "bad", messageJa: "不正" }]);
    expect(v).toMatchObject({ status: 400, message: "invalid input: a: bad", issues: [{ field: "a" }] });
  });

  it("map zod issues to fields with Japanese messages", () => {
    const schema = z.strictObject({
      name: z.string().min(1).max(3),
      email: z.email(),
      kind: z.enum(["a", "b"]),
      code: z.string().regex(/^\d+$/, jaMessage("digits only", "数字で入力してください。")),
      nested: z.object({ n: z.number().int().min(2) }),
      agreed: z.boolean().refine((b) => b, { message: "must agree", params: { messageJa: "同意が必要です。" } }),
    });
    const e = validationErrorFromZod(schema.safeParse({ name: "abcd", email: "x", kind: "c", code: "1a", nested: { n: 1 }, agreed: false, extra: 1 }).error!);
    const byField = Object.fromEntries(e.issues.map((i) => [i.field, i.messageJa]));
    expect(byField).toMatchObject({
      name: "3文字以内で入力してください。",
      email: "メールアドレスの形式が正しくありません。",
      kind: "選択肢の中から選んでください。",
      code: "数字で入力してください。",
      "nested.n": "2以上の値を入力してください。",
      agreed: "同意が必要です。",
      "(form)": "不明な項目があります: extra",
    });
    expect(() => parseInput(z.object({ a: z.string() }), {})).toThrow(ValidationError);
    try {
      parseInput(z.object({ a: z.string() }), {});
    } catch (err) {
      expect((err as ValidationError).issues).toEqual([{ field: "a", message: "is required", messageJa: "必須項目です。" }]);
    }
  });
});
