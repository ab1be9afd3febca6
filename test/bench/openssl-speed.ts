/**
 * The machine's speed at the moment of a bench, as OpenSSL measures it (`openssl speed -mr
 * rsa2048`, one process): RSA-2048 private-key signatures per second. CPU figures of this shared
 * machine drift by ±20 % between runs; a cost expressed in these signatures, measured in the same
 * run, compares across runs and machines.
 */
import { execFileSync } from "node:child_process";

/**
 * RSA-2048 signatures per second of `openssl speed -seconds <seconds> -mr rsa2048`.
 * @throws when openssl is missing or its machine-readable line (+F2:…) is not in the output.
 */
export function opensslRsa2048SignsPerSecond(seconds = 2): number {
  const out = execFileSync("openssl", ["speed", "-seconds", String(seconds), "-mr", "rsa2048"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  // +F2:<index>:<bits>:<signs/s>:<verifies/s>
  const line = out.split("\n").find((l) => l.startsWith("+F2:") && l.split(":")[2] === "2048");
  if (!line) throw new Error(`openssl speed printed no rsa2048 line:\n${out}`);
  return Number(line.split(":")[3]);
}
