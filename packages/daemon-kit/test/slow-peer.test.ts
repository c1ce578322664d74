/**
 * SlowPeerGuard over a real Unix socket whose peer does not read (or reads a little, then stops).
 * The guard's deadline is a `setTimeout`; only that is faked, so the sockets, the kernel buffers and
 * libuv run for real and "stallMs later" is exact rather than a race against the machine's load.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { OVERFLOW_FACTOR, SlowPeerGuard } from "../src/slow-peer.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const STALL_MS = 10_000;

let dir: string;
let server: Server;
const open: Socket[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "daemon-kit-slow-"));
});
afterEach(async () => {
  vi.useRealTimers();
  for (const s of open.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

/** A connected pair: `sock` is the daemon's side, `peer` the client, which reads nothing. */
async function pair(): Promise<{ sock: Socket; peer: Socket }> {
  const path = join(dir, "s.sock");
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((s) => resolve(s));
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  const peer = connect(path);
  peer.pause(); // never read (until a test says otherwise)
  peer.on("error", () => {});
  const sock = await accepted;
  sock.on("error", () => {});
  open.push(sock, peer);
  return { sock, peer };
}

/** Lets libuv move bytes between the socket and the kernel: real I/O turns, no timers. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error(`never happened: ${what}`);
}

function guarded(sock: Socket, maxQueueBytes = MiB) {
  const events: string[] = [];
  const guard = new SlowPeerGuard(sock, {
    maxQueueBytes,
    stallMs: STALL_MS,
    pause: () => events.push("pause"),
    resume: () => events.push("resume"),
    onPause: () => events.push("onPause"),
    onDisconnect: (reason) => events.push(`disconnect:${reason}`),
  });
  return { guard, events };
}

/**
 * Queues `bytes` towards the peer in 16 KiB writes (as a daemon writes replies; `writableLength`
 * counts a write until all of it reached the kernel) and lets the kernel take what it will.
 */
async function fill(sock: Socket, bytes: number): Promise<void> {
  for (let n = 0; n < bytes; n += 16 * KiB) sock.write(Buffer.alloc(Math.min(16 * KiB, bytes - n), 0x61));
  await turns();
}

describe("SlowPeerGuard", () => {
  it("pauses at the bound, and disconnects a peer that reads nothing when stallMs is up", async () => {
    const { sock } = await pair();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { guard, events } = guarded(sock);
    await fill(sock, 2 * MiB);
    guard.check();
    expect(guard.paused).toBe(true);
    expect(events).toEqual(["onPause", "pause"]);
    await vi.advanceTimersByTimeAsync(STALL_MS - 1);
    expect(sock.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["onPause", "pause", "disconnect:stall"]);
    expect(sock.destroyed).toBe(true);
  });

  it("disconnects a peer that never reads when output held outside the socket made the queue", async () => {
    // The daemon holds replies of its own (gathered for one write) and counts them in `extra`. The
    // peer reads nothing, so nothing shrinks: the guard must not mistake "held bytes not counted
    // now" for progress. (Before the fix it re-armed here and waited another stallMs.)
    const { sock } = await pair();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { guard, events } = guarded(sock);
    await fill(sock, 1.25 * MiB);
    guard.check(512 * KiB);
    expect(guard.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(STALL_MS);
    expect(events).toContain("disconnect:stall");
    expect(sock.destroyed).toBe(true);
  });

  it("disconnects a peer that reads a little but never drains its backlog", async () => {
    // A kernel buffer that takes a few more bytes now and then (a reader that trickles) is not a
    // reader that drains: stallMs after the pause the peer is gone, not re-armed on each bit of
    // progress. (Before the fix: any shrinking re-armed the deadline, so it was never reached.)
    const { sock, peer } = await pair();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { guard, events } = guarded(sock);
    await fill(sock, 3 * MiB);
    guard.check();
    expect(guard.paused).toBe(true);
    const before = sock.writableLength;
    let read = 0;
    peer.on("data", (d: Buffer) => {
      read += d.length;
      if (read >= 256 * KiB) peer.pause();
    });
    peer.resume();
    await until(() => read >= 256 * KiB && sock.writableLength < before, "the peer read a little");
    await turns();
    expect(sock.writableLength).toBeLessThan(before);
    expect(sock.writableLength).toBeGreaterThan(MiB / 2);
    await vi.advanceTimersByTimeAsync(STALL_MS);
    expect(events).toEqual(["onPause", "pause", "disconnect:stall"]);
    expect(sock.destroyed).toBe(true);
  });

  it("resumes a peer that drains its queue, and keeps it", async () => {
    const { sock, peer } = await pair();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { guard, events } = guarded(sock);
    await fill(sock, 2 * MiB);
    guard.check();
    expect(guard.paused).toBe(true);
    peer.resume();
    await until(() => !guard.paused, "resumed on drain");
    expect(events).toEqual(["onPause", "pause", "resume"]);
    await vi.advanceTimersByTimeAsync(3 * STALL_MS);
    expect(sock.destroyed).toBe(false);
    expect(events).toEqual(["onPause", "pause", "resume"]);
  });

  it("resumes, at the deadline, a peer whose queue got under the low-water mark though not empty", async () => {
    // The queue here is output the daemon holds outside the socket (`extra`): the socket itself is
    // empty, so no 'drain' event comes; the deadline measures what is still queued.
    const { sock } = await pair();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { guard, events } = guarded(sock);
    guard.check(MiB + 200 * KiB);
    expect(guard.paused).toBe(true);
    guard.check(300 * KiB); // some of it went out and was read; less than half the bound is left
    expect(guard.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(STALL_MS);
    expect(events).toEqual(["onPause", "pause", "resume"]);
    expect(guard.paused).toBe(false);
    expect(sock.destroyed).toBe(false);
    // paused again later: a new deadline, and this time the queue stays above the mark
    guard.check(MiB);
    guard.check(600 * KiB);
    await vi.advanceTimersByTimeAsync(STALL_MS);
    expect(events).toEqual(["onPause", "pause", "resume", "onPause", "pause", "disconnect:stall"]);
  });

  it(`disconnects at once when the queue reaches ${OVERFLOW_FACTOR} times the bound`, async () => {
    const { sock } = await pair();
    const { guard, events } = guarded(sock, 256 * KiB);
    await fill(sock, 2 * MiB);
    guard.check();
    expect(events).toEqual(["disconnect:overflow"]);
    expect(sock.destroyed).toBe(true);
  });

  it("does nothing below the bound, nor after the socket closed", async () => {
    const { sock } = await pair();
    const { guard, events } = guarded(sock);
    await fill(sock, 64 * KiB);
    guard.check(100);
    expect(guard.paused).toBe(false);
    sock.destroy();
    await turns();
    guard.check(8 * MiB);
    expect(events).toEqual([]);
  });
});
