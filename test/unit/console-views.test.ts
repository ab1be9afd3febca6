import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/web/i18n.ts";
import { VIEWS_DIR } from "../../src/web/console/router.ts";
import { createViewRenderer } from "../../src/web/views.ts";

describe("console views and messages", () => {
  const catalog = loadCatalog(path.join(VIEWS_DIR, "locales"));
  const views = createViewRenderer({ viewsDir: VIEWS_DIR, catalog, cache: true, staticUrl: (f) => `/lra/static/${f}?v=1` });
  const page = { lang: "ja" as const, base: "/lra", console: "lra", consoleTitle: "地域受付審査局 コンソール", title: "ログイン", csrfToken: "tok", flash: [], nav: [], issues: [], values: {} };

  it("escapes data by default", () => {
    const html = views.render("auth/login", { ...page, username: '"><script>alert(1)</script>', next: "/lra/" });
    expect(html).not.toContain("<script>alert(1)");
    expect(html).toContain("&lt;script&gt;");
    // No inline script (CSP script-src 'self'): only <script src="/…"> files from views/static.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc="\/)/i);
    expect(html).toContain('name="_csrf" value="tok"');
  });

  it("has every common key in both languages, falls back to Japanese, merges per-console files", () => {
    expect(Object.keys(catalog.messages.en).sort()).toEqual(Object.keys(catalog.messages.ja).sort());
    expect(catalog.t("en", "login.heading")).toBe("Sign in");
    expect(catalog.t("ja", "role.ra_approver")).toBe("登録局 承認者");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-locales-"));
    try {
      fs.writeFileSync(path.join(dir, "ja.json"), JSON.stringify({ a: "共通", b: "こんにちは {name} さん" }));
      fs.writeFileSync(path.join(dir, "en.json"), JSON.stringify({ a: "common" }));
      fs.writeFileSync(path.join(dir, "lra.ja.json"), JSON.stringify({ a: "上書き" }));
      const c = loadCatalog(dir);
      expect(c.t("ja", "a")).toBe("上書き");
      expect(c.t("en", "a")).toBe("common");
      expect(c.t("en", "b", { name: "山田" })).toBe("こんにちは 山田 さん");
      expect(c.t("en", "missing.key")).toBe("missing.key");
      fs.writeFileSync(path.join(dir, "en.json"), JSON.stringify({ a: 1 }));
      expect(() => loadCatalog(dir)).toThrow(/not a string/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("shows field issues in the page language", () => {
    const issues = [{ field: "nameKanji", message: "is required", messageJa: "必須項目です。" }];
    const ja = views.render("errors/error", { ...page, status: 400, heading: "x", message: "y", issues });
    expect(ja).toContain("必須項目です。");
    const en = views.render("errors/error", { ...page, lang: "en", status: 400, heading: "x", message: "y", issues });
    expect(en).toContain("is required");
  });
});
