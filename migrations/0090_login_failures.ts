import type { Knex } from "knex";

/**
 * Sign-in throttling (issue 10 §9, src/operators/login-throttle.ts): failed sign-ins counted per
 * (user name, source address) and per source (user name "*"), with the time until which the next
 * attempt is delayed. The hard 15-minute account lock is retired: locks set by earlier versions
 * are lifted here (operators.locked_until stays, always null from now on).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("login_failures", (t) => {
    t.text("username").notNullable();
    t.text("source").notNullable();
    t.integer("failures").notNullable();
    t.timestamp("last_failure_at", { useTz: true }).notNullable();
    t.timestamp("delayed_until", { useTz: true });
    t.primary(["username", "source"]);
    t.index(["last_failure_at"]);
  });
  await db("operators").whereNotNull("locked_until").update({ locked_until: null });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
