/**
 * One loaded PKCS#11 library per process: initialisation with OS locking, re-initialisation with a
 * generation counter, token lookup by label and in-process token initialisation.
 */
import graphene from "graphene-pk11";
import pkcs11 from "pkcs11js";
import { HsmError, pkcs11ErrorName, toHsmError } from "./errors.ts";

const modules = new Map<string, Pkcs11Module>();

/** CKF_TOKEN_INITIALIZED (PKCS#11 v2.40 §3.2, CK_TOKEN_INFO flags). */
const TOKEN_INITIALIZED = 0x400;
/** Token labels are 32 blank-padded bytes (CK_TOKEN_INFO.label). */
export const MAX_TOKEN_LABEL = 32;

/**
 * A loaded and initialised PKCS#11 module.
 *
 * Concurrency: graphene's asynchronous calls (C_Sign, C_GenerateKeyPair with a callback) run on
 * libuv worker threads, so the module is initialised with CKF_OS_LOCKING_OK (v2.40 §5.4; without it
 * two parallel signs crash SoftHSM). C_Finalize must not race such calls (v2.40 §5.4: behaviour is
 * undefined while other threads are in Cryptoki), so asynchronous work is wrapped in {@link track}
 * and re-initialisation waits until none is in flight ({@link exclusive}).
 */
export class Pkcs11Module {
  /** Filesystem path of the PKCS#11 shared library. */
  readonly path: string;
  /** The graphene module; prefer the methods here to calling initialize/finalize on it. */
  readonly graphene: graphene.Module;
  private gen = 0;
  private initialized = false;
  /** Date.now() of the last (queued or run) re-initialisation, for {@link reinitializeIfDue}. */
  private lastReinitAt = -Infinity;
  /** Holders that will {@link release} the module (every {@link open} counts one). */
  private users = 0;
  private active = 0;
  private exclusiveQueue: (() => void)[] = [];
  private waitingTracks: (() => void)[] = [];

  private constructor(path: string) {
    this.path = path;
    this.graphene = graphene.Module.load(path);
    this.init();
  }

  /**
   * Loads the library at `modulePath` and calls C_Initialize with CKF_OS_LOCKING_OK (v2.40 §5.4).
   * Cached: a second call with the same path returns the same instance (a library can be
   * initialised only once per process), and each call counts one holder for {@link release}.
   * For SoftHSM2, SOFTHSM2_CONF must be set before this.
   * @throws Error when the library cannot be loaded; HsmError when C_Initialize fails.
   */
  static open(modulePath: string): Pkcs11Module {
    let mod = modules.get(modulePath);
    if (!mod) {
      mod = new Pkcs11Module(modulePath);
      modules.set(modulePath, mod);
    } else if (!mod.initialized) {
      mod.init();
    }
    mod.users++;
    return mod;
  }

  /**
   * Gives back one {@link open}: when no other holder is left (a role that shares the process with
   * others — `hpki serve --role all`, tests — keeps it open for them), waits for in-flight tracked
   * calls and finalises the module as {@link close} does. Holders that never release keep it open.
   */
  async release(): Promise<void> {
    if (this.users > 0) this.users--;
    if (this.users === 0) await this.exclusive(() => this.close());
  }

  /** Increments on every (re-)initialisation; a session opened under an older generation is dead. */
  get generation(): number {
    return this.gen;
  }

  /** Raw pkcs11js binding, for calls graphene does not wrap. */
  get lib(): pkcs11.PKCS11 {
    return this.graphene.lib;
  }

  private init(): void {
    try {
      this.graphene.initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (pkcs11ErrorName(err) !== "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
        throw toHsmError(err, `C_Initialize of ${this.path}`);
      }
    }
    this.initialized = true;
  }

  private finalizeQuietly(): void {
    try {
      this.graphene.finalize();
    } catch (err) {
      if (pkcs11ErrorName(err) !== "CKR_CRYPTOKI_NOT_INITIALIZED") throw toHsmError(err, "C_Finalize");
    }
    this.initialized = false;
  }

  private reinitNow(): void {
    this.finalizeQuietly();
    // Bump before C_Initialize: even if it fails, every existing session handle is already dead.
    this.gen++;
    this.init();
  }

  /**
   * C_Finalize (ignoring CKR_CRYPTOKI_NOT_INITIALIZED) then C_Initialize, and bumps
   * {@link generation}. Runs at once when no tracked asynchronous call is in flight; otherwise it
   * is queued, new tracked calls wait, and it runs as soon as the in-flight ones finish — await
   * {@link whenReady} to know it happened. All session and object handles become invalid.
   * @throws HsmError when run at once and C_Initialize fails (a queued failure surfaces as
   *   CKR_CRYPTOKI_NOT_INITIALIZED on the next call, which pools heal).
   */
  reinitialize(): void {
    this.lastReinitAt = Date.now();
    if (this.active === 0 && this.exclusiveQueue.length === 0) {
      this.reinitNow();
      return;
    }
    this.exclusive(() => this.reinitNow()).catch(() => {
      /* surfaces as CKR_CRYPTOKI_NOT_INITIALIZED on the next call */
    });
  }

  /**
   * Re-initialises (as {@link reinitialize}) unless one was asked for less than `minIntervalMs` ago
   * (default 1,000 ms), by anyone in this process. For a token that vanished: SoftHSM2 reads its
   * token directory at C_Initialize, so a token directory moved back is seen only after one; the
   * rate limit keeps requests arriving while the token is away from re-initialising per request
   * (every re-initialisation kills every session of every token, cards included).
   * @returns true when a re-initialisation was run or queued now; false when throttled.
   */
  reinitializeIfDue(minIntervalMs = 1_000): boolean {
    if (Date.now() - this.lastReinitAt < minIntervalMs) return false;
    this.reinitialize();
    return true;
  }

  /** Resolves once every queued re-initialisation / exclusive task has run. Never rejects. */
  whenReady(): Promise<void> {
    return this.exclusive(() => undefined);
  }

  /**
   * Runs `fn` (synchronous) while no {@link track}ed call is in flight, holding new ones back: for
   * maintenance such as re-initialisation, C_Logout (SoftHSM 2.6.1 deadlocks when C_Logout races a
   * C_Sign on another thread) or simulating an HSM hiccup in tests. Never await it (or
   * {@link whenReady}) from inside a tracked function: it would wait for itself.
   */
  exclusive<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.exclusiveQueue.push(() => {
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      });
      this.drain();
    });
  }

  /**
   * Runs `fn` as one in-flight unit of PKCS#11 work (may span several native calls, synchronous or
   * asynchronous); waits first if a re-initialisation is queued. Every asynchronous native call
   * must go through here so C_Finalize never races a worker thread.
   */
  async track<T>(fn: () => T | Promise<T>): Promise<T> {
    while (this.exclusiveQueue.length > 0) {
      await new Promise<void>((r) => this.waitingTracks.push(r));
    }
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.drain();
    }
  }

  private drain(): void {
    while (this.active === 0 && this.exclusiveQueue.length > 0) this.exclusiveQueue.shift()!();
    if (this.exclusiveQueue.length === 0 && this.waitingTracks.length > 0) {
      const waiting = this.waitingTracks;
      this.waitingTracks = [];
      for (const wake of waiting) wake();
    }
  }

  /** Initialised tokens' slots with their (unpadded) labels, in the module's current order. */
  private tokenSlots(): { slot: graphene.Slot; label: string; flags: number }[] {
    const out: { slot: graphene.Slot; label: string; flags: number }[] = [];
    const slots = this.graphene.getSlots(true);
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      try {
        const token = slot.getToken();
        out.push({ slot, label: token.label.trim(), flags: token.flags });
      } catch {
        // A reader whose card vanished between C_GetSlotList and C_GetTokenInfo: skip it.
      }
    }
    return out;
  }

  /**
   * The slot holding the initialised token labelled `label` (exact match after trimming the blank
   * padding), or null. Always resolve by label: slot order/IDs change as tokens come and go.
   */
  findSlotByTokenLabel(label: string): graphene.Slot | null {
    const hit = this.tokenSlots().find((t) => t.label === label && t.flags & TOKEN_INITIALIZED);
    return hit ? hit.slot : null;
  }

  /** Labels of all initialised tokens (v2.40 §5.5 C_GetSlotList + C_GetTokenInfo). */
  listTokenLabels(): string[] {
    return this.tokenSlots()
      .filter((t) => t.flags & TOKEN_INITIALIZED)
      .map((t) => t.label);
  }

  /**
   * Initialises a token on a free (present, uninitialised) slot: C_InitToken (v2.40 §5.6) called
   * directly — graphene's Slot.initToken throws after succeeding — then an SO session sets the user
   * PIN with C_InitPIN. `label` ≤ 32 bytes UTF-8 and must not already exist.
   * @throws HsmError "TOKEN_EXISTS", "NO_FREE_SLOT", or a CKR_ code (e.g. CKR_PIN_LEN_RANGE).
   */
  initToken(label: string, soPin: string, userPin: string): void {
    if (Buffer.byteLength(label) > MAX_TOKEN_LABEL) {
      throw new HsmError(`token label "${label}" is longer than ${MAX_TOKEN_LABEL} bytes`, "CKR_ARGUMENTS_BAD");
    }
    if (this.findSlotByTokenLabel(label)) throw new HsmError(`token "${label}" already exists`, "TOKEN_EXISTS");
    const free = this.tokenSlots().find((t) => !(t.flags & TOKEN_INITIALIZED));
    if (!free) throw new HsmError("no free (uninitialised) token slot", "NO_FREE_SLOT");
    try {
      this.lib.C_InitToken(free.slot.handle, soPin, label + " ".repeat(MAX_TOKEN_LABEL - Buffer.byteLength(label)));
      const session = free.slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
      try {
        session.login(soPin, graphene.UserType.SO);
        session.initPin(userPin);
        session.logout();
      } finally {
        session.close();
      }
    } catch (err) {
      throw toHsmError(err, `initialising token "${label}"`);
    }
  }

  /**
   * C_Finalize; sessions and handles die. The instance stays cached and a later {@link open} of the
   * same path re-initialises it (a shared library cannot be unloaded safely from Node).
   */
  close(): void {
    if (this.initialized) this.finalizeQuietly();
    this.gen++;
  }
}
