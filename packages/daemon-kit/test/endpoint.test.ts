import { describe, expect, it } from "vitest";
import { AddressSyntaxError, formatHostPort, isLoopback, parseHostPort } from "../src/endpoint.ts";

describe("parseHostPort", () => {
  it("parses IPv4, bracketed IPv6, localhost and a default port", () => {
    expect(parseHostPort("10.0.0.1:8100")).toEqual({ host: "10.0.0.1", port: 8100 });
    expect(parseHostPort(" [fe80::1]:9 ")).toEqual({ host: "fe80::1", port: 9 });
    expect(parseHostPort("[::1]", 4803)).toEqual({ host: "::1", port: 4803 });
    expect(parseHostPort("localhost:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseHostPort("192.168.1.2", 7)).toEqual({ host: "192.168.1.2", port: 7 });
  });

  it.each([
    ["::1:80", /need brackets/],
    ["[::1", /missing "]"/],
    ["[::1]80", /expected ":port"/],
    ["example.com:80", /not an IPv4 or IPv6/],
    ["10.0.0.1", /missing ":port"/],
    ["10.0.0.1:http", /bad port/],
    ["10.0.0.1:65536", /above 65535/],
    ["10.0.0.1:-1", /bad port/],
  ])("rejects %s with a typed error", (text, message) => {
    let err: unknown;
    try {
      parseHostPort(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AddressSyntaxError);
    expect((err as AddressSyntaxError).code).toBe("ERR_ADDRESS_SYNTAX");
    expect((err as Error).message).toMatch(message);
  });

  it("formats back what it parses", () => {
    for (const t of ["10.0.0.1:8100", "[fe80::1]:9", "[::]:0"])
      expect(formatHostPort(parseHostPort(t))).toBe(t);
  });

  it("knows loopback addresses", () => {
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("127.3.2.1")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    expect(isLoopback("10.0.0.1")).toBe(false);
    expect(isLoopback("::")).toBe(false);
  });
});
