/** `ADDR:PORT` parsing (IPv6 as `[ADDR]:PORT`), and the loopback test the metrics listener needs. */
import { isIP } from "node:net";
import { SpinesError } from "@spines-ts/primitives";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export class AddressSyntaxError extends SpinesError {
  constructor(message: string) {
    super("ERR_ADDRESS_SYNTAX", message);
    this.name = "AddressSyntaxError";
  }
}

/** Parses `ADDR:PORT`, `[ADDR]:PORT`, or `ADDR` (with `defaultPort`). `localhost` means 127.0.0.1. */
export function parseHostPort(text: string, defaultPort?: number): HostPort {
  const s = text.trim();
  let host: string;
  let portText: string | undefined;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) throw new AddressSyntaxError(`missing "]" in ${JSON.stringify(text)}`);
    host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":"))
        throw new AddressSyntaxError(`expected ":port" after "]" in ${JSON.stringify(text)}`);
      portText = rest.slice(1);
    }
  } else {
    const colons = s.split(":").length - 1;
    if (colons === 1) {
      const i = s.indexOf(":");
      host = s.slice(0, i);
      portText = s.slice(i + 1);
    } else if (colons === 0) {
      host = s;
    } else {
      throw new AddressSyntaxError(
        `IPv6 addresses need brackets: "[${s}]:port", got ${JSON.stringify(text)}`,
      );
    }
  }
  if (host === "localhost") host = "127.0.0.1";
  if (isIP(host) === 0)
    throw new AddressSyntaxError(`${JSON.stringify(host)} is not an IPv4 or IPv6 address`);
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new AddressSyntaxError(`missing ":port" in ${JSON.stringify(text)}`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) throw new AddressSyntaxError(`bad port ${JSON.stringify(portText)}`);
    port = Number(portText);
    if (port > 65535) throw new AddressSyntaxError(`port ${port} is above 65535`);
  }
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function isLoopback(address: string): boolean {
  return address === "::1" || /^127\./.test(address);
}
