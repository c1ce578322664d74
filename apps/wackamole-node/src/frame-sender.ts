/**
 * Gratuitous ARP / unsolicited NA without a process start on the fail-over's path.
 *
 * `arping` started per announcement costs a fork and an exec (plus its own netlink queries) each
 * time: 10–15 ms on an idle machine and 20–80 ms measured in the fail-over lab at load 2–4, between
 * the address going up and the first client reaching it. So per interface and frame kind one
 * `socat` runs all along, reading whole frames from a FIFO and sending each with one `sendto` on an
 * AF_PACKET socket (protocol 0: it receives nothing, so it adds no per-packet cost on the
 * interface). The frames are the ones the commands would have sent (`@spines-ts/vip/linux`
 * `announcementFrame`); the daemon writes each with one `write` of at most a pipe buffer (atomic),
 * and socat reads frame-sized blocks, so frames never split.
 *
 * The senders are started from the command shell (a start from the daemon blocks its thread until
 * the exec) when the daemon learns its interfaces, with the interface's index and hardware address
 * read by `ip -j link show`. A sender that is not ready, is gone (its socat exited, the interface was
 * recreated), or whose FIFO is full sends nothing: the caller runs the command instead (arping /
 * na6) and the sender is started again. Without `socat` on the PATH every announcement is a command,
 * as before.
 */
import { accessSync, closeSync, constants, openSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
import {
  type Announcement,
  type AnnouncementKind,
  announcementFrame,
  FRAME_BYTES,
  parseMac,
} from "@spines-ts/vip/linux";
import type { CommandShell } from "./command-shell.ts";

/** Frames written with one `write` at most (one pipe buffer: writes of this size are atomic). */
const MAX_WRITE = 4096;

type Family = "arp" | "na";

const familyOf = (k: AnnouncementKind): Family => (k === "na" ? "na" : "arp");

interface Sender {
  readonly iface: string;
  readonly family: Family;
  state: "starting" | "ready" | "gone";
  fd: number | undefined;
  mac: Uint8Array | undefined;
  /** The FIFO the socat job reads. */
  readonly fifo: string;
}

/** The first directory of PATH holding an executable `name`, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const f = join(dir, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The sockaddr_ll (after its family) socat's SOCKET-SENDTO takes, as `x<hex>`. */
export function sockaddrLl(protocol: number, ifindex: number): string {
  const b = Buffer.alloc(18);
  b.writeUInt16BE(protocol, 0);
  if (endianness() === "LE")
    b.writeInt32LE(ifindex, 2); // sll_ifindex is in host order
  else b.writeInt32BE(ifindex, 2);
  const hatype = endianness() === "LE" ? b.writeUInt16LE.bind(b) : b.writeUInt16BE.bind(b);
  hatype(1, 6); // ARPHRD_ETHER, host order
  b[8] = 0; // PACKET_HOST
  b[9] = 6; // halen
  b.fill(0xff, 10, 16);
  return `x${b.toString("hex")}`;
}

export interface FrameSenderStats {
  /** Frames written to a sender. */
  frames: number;
  /** Announcements that went to a command instead (no sender ready, FIFO full, sender gone). */
  fallbacks: number;
  /** Sender (re)starts. */
  starts: number;
}

export class FrameSenders {
  readonly stats: FrameSenderStats = { frames: 0, fallbacks: 0, starts: 0 };
  /** socat's path, or undefined (then every announcement is a command). */
  readonly socat: string | undefined;
  readonly #shell: CommandShell;
  readonly #dir: string;
  readonly #senders = new Map<string, Sender>();
  #closed = false;
  #n = 0;

  /** `socat`: its path; null: none (every announcement is a command). */
  constructor(shell: CommandShell, socat: string | null = findOnPath("socat") ?? null) {
    this.#shell = shell;
    this.#dir = shell.dir;
    this.socat = socat ?? undefined;
  }

  /** Starts the senders for these interfaces (IPv4: ARP, IPv6: NA) unless they run. */
  prepare(ifaces: readonly { iface: string; family: 4 | 6 }[]): void {
    for (const { iface, family } of ifaces) this.#ensure(iface, family === 4 ? "arp" : "na");
  }

  /** The interfaces and families whose sender runs now ("4:eth0", "6:eth0"), for status. */
  running(): string[] {
    const out: string[] = [];
    for (const x of this.#senders.values())
      if (x.state === "ready") out.push(`${x.family === "arp" ? 4 : 6}:${x.iface}`);
    return out.sort();
  }

  /**
   * True when a frame of this kind on this interface would be sent now. When not, the caller runs
   * the command (counted as a fallback) and a sender is started for the next time.
   */
  ready(a: Announcement): boolean {
    const s = this.#ensure(a.iface, familyOf(a.kind));
    const ok = s?.state === "ready" && s.fd !== undefined && s.mac !== undefined;
    if (!ok) this.stats.fallbacks++;
    return ok;
  }

  /**
   * Sends the frames of `list` (grouped per sender, at most a pipe buffer per write); returns the
   * announcements it could not send, for the caller to run as commands.
   */
  send(list: readonly Announcement[]): Announcement[] {
    const rest: Announcement[] = [];
    const per = new Map<Sender, Announcement[]>();
    for (const a of list) {
      const s = this.#ensure(a.iface, familyOf(a.kind));
      if (s === undefined || s.state !== "ready" || s.fd === undefined || s.mac === undefined) {
        rest.push(a);
        continue;
      }
      const l = per.get(s) ?? [];
      l.push(a);
      per.set(s, l);
    }
    for (const [s, l] of per) {
      const size = FRAME_BYTES[l[0]?.kind ?? "arp-request"];
      const perWrite = Math.max(1, Math.floor(MAX_WRITE / size));
      for (let i = 0; i < l.length; i += perWrite) {
        const chunk = l.slice(i, i + perWrite);
        if (s.state !== "ready" || s.fd === undefined || s.mac === undefined) {
          rest.push(...chunk);
          continue;
        }
        const buf = Buffer.alloc(chunk.length * size);
        for (const [k, a] of chunk.entries()) buf.set(announcementFrame(a, s.mac), k * size);
        try {
          // non-blocking: a full FIFO (EAGAIN) or a reader gone (EPIPE) throws; ≤ PIPE_BUF is atomic
          const n = writeSync(s.fd, buf);
          if (n !== buf.length) throw new Error("short write");
          this.stats.frames += chunk.length;
        } catch (e) {
          rest.push(...chunk);
          if ((e as NodeJS.ErrnoException).code !== "EAGAIN") this.#drop(s);
        }
      }
    }
    this.stats.fallbacks += rest.length;
    return rest;
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#senders.values()) this.#drop(s);
    this.#senders.clear();
  }

  #drop(s: Sender): void {
    const wasStarting = s.state === "starting";
    s.state = "gone";
    if (s.fd === undefined && wasStarting) {
      // a socat waiting in open() for a writer would wait for ever: let it open, see EOF, exit
      try {
        closeSync(openSync(s.fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // no reader yet (it will not find the FIFO once the directory is gone) or no FIFO
      }
    }
    if (s.fd !== undefined) {
      try {
        closeSync(s.fd); // socat sees EOF and exits
      } catch {
        // already closed
      }
      s.fd = undefined;
    }
    if (this.#senders.get(`${s.family}:${s.iface}`) === s) this.#senders.delete(`${s.family}:${s.iface}`);
  }

  #ensure(iface: string, family: Family): Sender | undefined {
    // names go into a shell command: only what Linux interface names are made of
    if (this.socat === undefined || this.#closed || !/^[A-Za-z0-9_.@:-]{1,15}$/.test(iface)) return undefined;
    const key = `${family}:${iface}`;
    const known = this.#senders.get(key);
    if (known !== undefined) return known;
    const s: Sender = {
      iface,
      family,
      state: "starting",
      fd: undefined,
      mac: undefined,
      fifo: join(this.#dir, `frames-${family}-${++this.#n}.fifo`),
    };
    this.#senders.set(key, s);
    this.stats.starts++;
    void this.#start(s);
    return s;
  }

  async #start(s: Sender): Promise<void> {
    const link = await this.#shell.run(`ip -j link show dev '${s.iface}'`, 5000);
    let ifindex: number | undefined;
    try {
      const j = JSON.parse(link.stdout) as { ifindex?: number; address?: string }[];
      ifindex = j[0]?.ifindex;
      s.mac = parseMac(j[0]?.address ?? "");
    } catch {
      // below
    }
    if (link.code !== 0 || ifindex === undefined || s.mac === undefined || s.state !== "starting") {
      // no such interface yet (or not Ethernet): forget it, the next announcement tries again
      this.#drop(s);
      return;
    }
    const proto = s.family === "arp" ? 0x0806 : 0x86dd;
    const size = FRAME_BYTES[s.family === "arp" ? "arp-request" : "na"];
    // The job ends when socat does (the daemon closed the FIFO, or a send failed): then the sender
    // is gone and the next announcement starts another.
    const job = this.#shell.run(
      `rm -f '${s.fifo}' && mkfifo -m 600 '${s.fifo}' && exec '${this.socat}' -u -b ${size} ` +
        `OPEN:'${s.fifo}',rdonly SOCKET-SENDTO:17:3:0:${sockaddrLl(proto, ifindex)}`,
      0,
    );
    void job.then(() => this.#drop(s));
    // The FIFO exists once mkfifo ran; it opens for writing once socat has it open for reading.
    for (let i = 0; i < 1000 && s.state === "starting"; i++) {
      try {
        s.fd = openSync(s.fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        s.state = "ready";
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENXIO") break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (s.state === "starting") this.#drop(s);
  }
}
