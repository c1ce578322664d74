/**
 * @packageDocumentation
 * The `Host` compliance suite (after libp2p's interface-compliance-tests): the behaviour the
 * protocol drivers rely on, checked against every `Host` implementation — the simulator's (virtual
 * time) and node-host's `UdpHost` (real time) — so a driver proven in netsim meets the same host in
 * a daemon.
 *
 * ```ts
 * import { hostComplianceSuite } from "@spines-ts/host-compliance";
 * hostComplianceSuite("my host", async () => makeTwoConnectedHosts());
 * ```
 *
 * Each case is also exported (`hostComplianceCases`) so a test can run one against a deliberately
 * broken host and expect it to fail: a case that cannot fail proves nothing.
 */
export {
  type ComplianceCase,
  type HostPair,
  type HostPairFactory,
  hostComplianceCases,
  hostComplianceSuite,
  runComplianceCase,
} from "./suite.ts";
