/**
 * Serialises key ceremonies: "find the key, else generate it" must not interleave, or two runs
 * could each create a key under one label (store/advisory-lock.ts: a promise chain in-process, a
 * Postgres advisory lock across processes).
 */
import { advisoryLock } from "../store/advisory-lock.ts";

const CEREMONY_LOCK_KEY = 0x4850_4b43; // "HPKC"

/** Runs `fn` while holding the ceremony lock; returns its result. */
export const withCeremonyLock = advisoryLock(CEREMONY_LOCK_KEY);
