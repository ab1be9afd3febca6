/**
 * PIN lock detection at the token flag (issue 13 §2): SoftHSM keeps no retry counter and never sets
 * CKF_USER_PIN_LOCKED, so the detection is tested on flag values (PKCS#11 v2.40 §3.2 CK_TOKEN_INFO).
 */
import { describe, expect, it } from "vitest";
import { CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, CKF_SO_PIN_LOCKED, pinStateFromFlags, showsPinLocked } from "../../src/hsm/cards.ts";

// A SoftHSM card's usual flags: RNG, LOGIN_REQUIRED, USER_PIN_INITIALIZED, RESTORE_KEY_NOT_NEEDED, TOKEN_INITIALIZED.
const SOFTHSM_FLAGS = 0x1 | 0x4 | 0x8 | 0x20 | 0x400;

describe("card PIN state from CK_TOKEN_INFO flags", () => {
  it("uses the PKCS#11 flag values", () => {
    expect([CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, CKF_SO_PIN_LOCKED]).toEqual([0x10000, 0x20000, 0x40000, 0x400000]);
  });
  it("reads a usable card as not locked", () => {
    expect(pinStateFromFlags(SOFTHSM_FLAGS)).toMatchObject({ userPinLocked: false, userPinFinalTry: false, userPinCountLow: false, soPinLocked: false });
    expect(showsPinLocked("active", pinStateFromFlags(SOFTHSM_FLAGS))).toBe(false);
  });
  it("reads CKF_USER_PIN_LOCKED as locked, whatever the lifecycle says", () => {
    const s = pinStateFromFlags(SOFTHSM_FLAGS | CKF_USER_PIN_LOCKED | CKF_USER_PIN_COUNT_LOW);
    expect(s).toMatchObject({ userPinLocked: true, userPinCountLow: true, soPinLocked: false });
    expect(showsPinLocked("active", s)).toBe(true);
  });
  it("reads the warnings before the lock and the SO PIN lock", () => {
    expect(pinStateFromFlags(SOFTHSM_FLAGS | CKF_USER_PIN_FINAL_TRY)).toMatchObject({ userPinLocked: false, userPinFinalTry: true });
    expect(pinStateFromFlags(CKF_SO_PIN_LOCKED).soPinLocked).toBe(true);
  });
  it("shows a card reported locked (no reader, or a reader that reports it) as locked", () => {
    expect(showsPinLocked("pin_locked", null)).toBe(true);
    expect(showsPinLocked("active", null)).toBe(false);
  });
});
