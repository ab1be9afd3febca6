/**
 * `hpki db status|start|stop|backup`: the PostgreSQL cluster hpki manages under $HPKI_HOME/pg
 * (src/store/managed-pg.ts). Any hpki process that needs the database starts it; it stays up as a
 * server afterwards (other processes use it) until `hpki db stop`. With DATABASE_URL set the
 * database is external: start/stop are refused (its operator runs it), status and backup use it.
 */
import type { Command } from "commander";
import pg from "pg";
import { loadConfig, type Config } from "../config.ts";
import { databaseUrlFor } from "../store/db.ts";
import { backupDatabase, clusterPaths, ensureManagedCluster, managedClusterStatus, stopManagedCluster } from "../store/managed-pg.ts";
import { runCommand } from "./run.ts";

function refuseExternal(cfg: Config, what: string): void {
  if (cfg.databaseUrl) {
    throw Object.assign(new Error(`DATABASE_URL is set: the database is external and its operator ${what}s it, not hpki`), {
      messageJa: `DATABASE_URL が設定されています。外部のデータベースは hpki ではなく、その管理者が操作します`,
    });
  }
}

/** Human-readable bytes (MiB with one decimal). */
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function registerDbCommands(program: Command): void {
  const db = program.command("db").description("the database: the PostgreSQL cluster hpki manages in $HPKI_HOME/pg (or DATABASE_URL)");

  db.command("status")
    .description("whether the managed cluster runs, where, its size and version")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) => {
      await runCommand(o, async () => {
        const cfg = loadConfig();
        if (cfg.databaseUrl) {
          const client = new pg.Client({ connectionString: cfg.databaseUrl });
          let version: string | null = null;
          let running = false;
          try {
            await client.connect();
            version = String((await client.query("SHOW server_version")).rows[0].server_version);
            running = true;
          } catch {
            // unreachable: reported as not running
          } finally {
            await client.end().catch(() => undefined);
          }
          const host = new URL(cfg.databaseUrl).host;
          return {
            json: { managed: false, running, host, version },
            text: `database: external (DATABASE_URL, ${host}), ${running ? `reachable, PostgreSQL ${version}` : "not reachable"}\n`
              + `データベース: 外部（DATABASE_URL、${host}）、${running ? `接続可、PostgreSQL ${version}` : "接続できません"}`,
          };
        }
        const s = managedClusterStatus(cfg);
        const state = !s.initialised ? ["not created yet (created on first use)", "未作成（初回使用時に作成します）"]
          : s.running ? [`running (pid ${s.pid})`, `稼働中（pid ${s.pid}）`] : ["stopped", "停止中"];
        return {
          json: s,
          text: [
            `database: managed PostgreSQL ${s.version ?? ""} — ${state[0]}`,
            `データベース: 管理下の PostgreSQL ${s.version ?? ""} — ${state[1]}`,
            `  data:   ${s.dataDir} (${mib(s.dataBytes)}, OS user ${s.owner || "-"})`,
            `  socket: ${s.socketDir}`,
            `  url:    ${s.url}`,
          ].join("\n"),
        };
      });
    });

  db.command("start")
    .description("create (first time) and start the managed cluster; a no-op when it runs")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) => {
      await runCommand(o, async () => {
        const cfg = loadConfig();
        refuseExternal(cfg, "start");
        const url = await ensureManagedCluster(cfg);
        return { json: { running: true, url }, text: `database: running at ${clusterPaths(cfg).socketDir}\nデータベース: 稼働中` };
      });
    });

  db.command("stop")
    .description("stop the managed cluster cleanly (fast shutdown: sessions ended, checkpoint written)")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) => {
      await runCommand(o, async () => {
        const cfg = loadConfig();
        refuseExternal(cfg, "stop");
        const stopped = await stopManagedCluster(cfg);
        return {
          json: { stopped, wasRunning: stopped },
          text: stopped ? "database: stopped\nデータベース: 停止しました" : "database: was not running\nデータベース: 稼働していませんでした",
        };
      });
    });

  db.command("backup")
    .description("pg_dump the database (custom format, restore with pg_restore) into <file>, mode 0600")
    .argument("<file>", "output file")
    .option("--json", "print one JSON object")
    .action(async (file: string, o: { json?: boolean }) => {
      await runCommand(o, async () => {
        const cfg = loadConfig();
        const url = await databaseUrlFor(cfg);
        const r = await backupDatabase(url, file, cfg.databaseUrl ? undefined : clusterPaths(cfg).dataDir);
        return { json: r, text: `database: backup written to ${r.file} (${mib(r.bytes)}; pg_restore format)\nデータベース: バックアップを書き出しました` };
      });
    });
}
