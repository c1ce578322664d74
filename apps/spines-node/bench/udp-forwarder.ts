/**
 * The baseline of the throughput benchmark: the smallest useful Node UDP forwarder. It receives on
 * `listenPort` and sends every datagram on to `nextPort`, unchanged. A chain of these is the
 * practical ceiling for a Node overlay hop. Usage: tsx udp-forwarder.ts LISTEN_PORT NEXT_PORT
 */
import { createSocket } from "node:dgram";

const listenPort = Number(process.argv[2]);
const nextPort = Number(process.argv[3]);
const sock = createSocket({ type: "udp4", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
sock.on("message", (msg) => sock.send(msg, nextPort, "127.0.0.1"));
sock.bind(listenPort, "127.0.0.1", () => process.stdout.write("ready\n"));
process.on("SIGTERM", () => process.exit(0));
