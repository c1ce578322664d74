/**
 * The named I/O shells: the only files under `packages/<pkg>/src` that may import `node:*`, read the
 * wall or process clock, arm real timers or use `Math.random`. Everything else is sans-IO. Patterns
 * are repository-relative, `/`-separated; `**` matches any number of path segments, `*` anything
 * within one segment. Add a file here only when it is a shell by design, and say why.
 */
export const SHELLS: readonly { readonly pattern: string; readonly why: string }[] = [
  { pattern: "packages/node-host/src/**", why: "the UDP Host, discovery sockets: the process's I/O" },
  {
    pattern: "packages/daemon-kit/src/**",
    why: "the daemons' local-socket shell: Unix/TCP listeners, control socket, metrics HTTP, pino logger, stall timers",
  },
  { pattern: "packages/vip/src/linux*.ts", why: "the Linux address/ARP driver (ip, arping)" },
  { pattern: "packages/primitives/src/system-clock.ts", why: "the process clock (performance.now)" },
  {
    pattern: "packages/wire/src/auth.ts",
    why: "HMAC-SHA-256 via node:crypto (the `@spines-ts/wire/auth` subpath)",
  },
  { pattern: "packages/membership/src/udp.ts", why: "UdpMember: membership over a UDP host" },
  { pattern: "packages/client/src/client.ts", why: "the client library: its socket to the daemon" },
  { pattern: "packages/client/src/net.ts", why: "the client library: net-style stream sockets" },
  { pattern: "packages/client/src/dgram.ts", why: "the client library: dgram-style datagram sockets" },
];
