/**
 * Run inside a network namespace by batch-socket.netns.test.ts: sends N datagrams in one turn
 * through a rate-limited interface with a small socket buffer, so the kernel refuses part of the
 * batch (EAGAIN) and the socket must hold the rest until it is writable. Prints its counters as JSON
 * once every datagram left (or after 10 s).
 * Usage: batch-full.mts FROM_ADDR TO_ADDR N
 */
import { BatchSocket } from "../src/index.ts";

const [from = "", to = "", nArg = "0"] = process.argv.slice(2);
const n = Number(nArg);
const errors: string[] = [];
const s = BatchSocket.open({
  family: 4,
  address: from,
  port: 0,
  recvBufferBytes: 1 << 20,
  sendBufferBytes: 16_384,
  maxQueued: n,
  onDatagram: () => {},
  onSendError: (e) => errors.push(e),
});
for (let i = 0; i < n; i++) s.send(Buffer.alloc(1200, i & 0xff), 9, to);
const t0 = Date.now();
const timer = setInterval(() => {
  // the queue is empty once a flush took everything: no more send calls come
  const done = Date.now() - t0 > 10_000;
  if (!done && s.stats.txBatches === last) {
    finish();
    return;
  }
  last = s.stats.txBatches;
}, 300);
let last = -1;
function finish(): void {
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ ...s.stats, errors }));
  s.close();
}
