/** The simulated JPKI CA of `hpki pobox demo` (src/cli/demo-jpki.ts), for tests. */
export { JPKI_ROOT_SUBJECT, simulatedJpkiCa, type JpkiSim, type JpkiUser } from "../../src/cli/demo-jpki.ts";
