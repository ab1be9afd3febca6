import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real PostgreSQL for every test: DATABASE_URL, else a throwaway cluster for the run.
    globalSetup: ["test/global-setup.ts"],
    // PKCS#11 is a native addon holding process-wide state: one fork per file keeps modules apart.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
